import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { CiEdgeError, type ErrorCode } from '../../src/errors.js';
import { createLogger, silentLogger } from '../../src/log.js';
import type { Route, Snapshot } from '../../src/registry/types.js';
import { answerFor } from '../../src/ssh-gateway/answers.js';
import { parseAuthorizedKeys } from '../../src/ssh-gateway/auth.js';
import { loadHostKeys } from '../../src/ssh-gateway/host-keys.js';
import { parseTunnelCommand, resolveTarget } from '../../src/ssh-gateway/target.js';
import { TunnelLimits } from '../../src/ssh-gateway/tunnel.js';
import { masterRoute, testRegistry } from '../helpers/registry.js';
import { keygen, startTestSshGateway } from '../helpers/sshd.js';

const naming = { sshDomain: 'ci.example.com', domains: ['pse.example.com'] };
const ep = { host: '10.0.0.5', port: 31022 };
function snapshot(...routes: Route[]): Snapshot {
  return { version: 1, routes: new Map(routes.map((r) => [r.name, r])), status: { ready: true, stale: false, syncedAt: null, marathonLeader: null, lastError: null } };
}
const route = (...a: Parameters<typeof masterRoute>): Route => ({ ...masterRoute(...a), changedAt: '' });
const snap = snapshot(
  route('master1', { ssh: [ep] }, { servicePorts: { ssh: 10022 } }),
  route('master2', {}),
  route('master4', { ssh: [ep] }, { state: 'gone' }),
  route('cjoc', { ssh: [ep] }, { kind: 'service' }),
);

function codeOf(fn: () => unknown): ErrorCode | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof CiEdgeError) return err.code;
    throw err;
  }
}

t.test('resolveTarget: only masters with healthy ssh endpoints, table', async (t) => {
  const table: [string, number | undefined, ErrorCode | 'ok'][] = [
    ['master1', undefined, 'ok'],
    ['master1.ci.example.com', undefined, 'ok'],
    ['master1.pse.example.com.', undefined, 'ok'],
    ['master1', 22, 'ok'],
    ['master1', 31022, 'ok'], // the endpoint's own port
    ['master1', 10022, 'ok'], // the Marathon service port
    ['master1', 8080, 'E_SSH_FORBIDDEN_PORT'],
    ['master1.other.example.com', undefined, 'E_SSH_FORBIDDEN_TARGET'],
    ['10.0.0.5', undefined, 'E_SSH_FORBIDDEN_TARGET'],
    ['[::1]', undefined, 'E_SSH_FORBIDDEN_TARGET'],
    ['1234', undefined, 'E_SSH_FORBIDDEN_TARGET'],
    ['cjoc', undefined, 'E_SSH_FORBIDDEN_TARGET'],
    ['cjoc', 22, 'E_SSH_FORBIDDEN_TARGET'],
    ['nosuch', undefined, 'E_NO_ROUTE'],
    ['master4', undefined, 'E_NO_ROUTE'],
    ['master2', undefined, 'E_NO_HEALTHY_ENDPOINT'],
  ];
  for (const [target, port, want] of table) t.equal(codeOf(() => resolveTarget(target, snap, naming, port)), want, `${target}:${port ?? '-'}`);
  t.same(resolveTarget('master1', snap, naming).endpoints, [ep]);
});

t.test('parseTunnelCommand', async (t) => {
  t.equal(parseTunnelCommand('tunnel master1', naming), 'master1');
  t.equal(parseTunnelCommand('  tunnel   master1.ci.example.com \n', naming), 'master1.ci.example.com');
  for (const bad of ['', 'tunnel', 'tunnel a b', 'TUNNEL master1', 'ls master1', 'tunnel\tmaster1 ;rm']) {
    t.equal(codeOf(() => parseTunnelCommand(bad, naming)), 'E_SSH_USAGE', JSON.stringify(bad));
  }
});

t.test('resolveTarget before the first sync: "starting", not "no master named"', async (t) => {
  const loading: Snapshot = { ...snapshot(), status: { ready: false, stale: false, syncedAt: null, marathonLeader: null, lastError: null } };
  t.equal(codeOf(() => resolveTarget('master9', loading, naming)), 'E_ROUTES_LOADING');
  t.same(answerFor(new CiEdgeError('E_ROUTES_LOADING', ['master9'])), {
    line: 'ci-edge: ci-edge is starting: the route table is not loaded yet (looking for "master9")',
    status: 1,
    openFailure: 2,
    reason: 'E_ROUTES_LOADING',
  });
});

t.test('answerFor: the one mapping from error code to line, status and open-failure reason', async (t) => {
  const a = (code: ErrorCode, ...args: unknown[]) => answerFor(new CiEdgeError(code, args));
  t.same(a('E_SSH_USAGE', 'ci.example.com'), { line: 'ci-edge: usage: tunnel <master>[.ci.example.com]', status: 2, openFailure: 1, reason: 'E_SSH_USAGE' });
  t.same(a('E_NO_ROUTE', 'foo'), { line: 'ci-edge: no master named "foo"', status: 1, openFailure: 1, reason: 'E_NO_ROUTE' });
  t.same(a('E_NO_HEALTHY_ENDPOINT', 'master1', 'starting'), { line: 'ci-edge: master1 is starting', status: 1, openFailure: 2, reason: 'E_NO_HEALTHY_ENDPOINT' });
  t.same(a('E_UPSTREAM_REFUSED', 'master1'), { line: 'ci-edge: master1 refused the connection', status: 1, openFailure: 2, reason: 'E_UPSTREAM_REFUSED' });
  t.same(a('E_SSH_LIMIT', 'x'), { line: 'ci-edge: too many tunnels: x', status: 1, openFailure: 4, reason: 'E_SSH_LIMIT' });
  t.same(answerFor(new Error('boom')), { line: 'ci-edge: internal error', status: 1, openFailure: 2, reason: 'E_INTERNAL' });
});

t.test('TunnelLimits: total and per client, slots given back once', async (t) => {
  const l = new TunnelLimits(3, 2);
  const r1 = l.acquire('a');
  l.acquire('a');
  t.equal(codeOf(() => l.acquire('a')), 'E_SSH_LIMIT');
  l.acquire('b');
  t.equal(codeOf(() => l.acquire('c')), 'E_SSH_LIMIT');
  r1();
  r1();
  t.equal(l.open(), 2);
  t.equal(codeOf(() => l.acquire('c')), 'ok');
});

t.test('authorized_keys: options, comments and junk lines', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ci-edge-ak-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const k1 = keygen(join(dir, 'k1'));
  const k2 = keygen(join(dir, 'k2'));
  const skipped: number[] = [];
  const keys = parseAuthorizedKeys(`# comment\n\n${k1.publicLine}\nno-pty,command="x" ${k2.publicLine}\nssh-ed25519 notbase64!\ngarbage\n`, (line) => skipped.push(line));
  t.equal(keys.length, 2);
  t.same(skipped, [5, 6]);
  const blob = Buffer.from(k2.publicLine.split(' ')[1]!, 'base64');
  t.ok(keys[1]!.equals(blob));
});

t.test('host keys: generated 0600 ed25519, fingerprint logged as ssh-keygen prints it, then loaded as is', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ci-edge-hk-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'sub', 'ssh_host_ed25519_key');
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      lines.push(JSON.parse(c.toString()) as Record<string, unknown>);
      cb();
    },
  });
  const [key] = loadHostKeys([path], createLogger({ destination: sink }));
  t.equal(key!.generated, true);
  t.equal(key!.type, 'ssh-ed25519');
  t.equal(statSync(path).mode & 0o777, 0o600);
  const printed = execFileSync('ssh-keygen', ['-l', '-f', path]).toString().split(' ')[1];
  t.equal(key!.fingerprint, printed);
  t.match(lines.find((l) => l['msg'] === 'SSH host key generated'), { fingerprint: printed, path });
  const again = loadHostKeys([path], silentLogger());
  t.equal(again[0]!.generated, false);
  t.same(again[0]!.pem, readFileSync(path));
  t.equal(codeOf(() => loadHostKeys([`${path}.pub`], silentLogger())), 'E_SSH_HOST_KEY', 'a public key is not a host key');
});


t.test('an unknown cipher in ssh.ciphers is a configuration error naming the key', async (t) => {
  const { registry } = await testRegistry([]);
  t.teardown(() => registry.close());
  await t.rejects(startTestSshGateway(registry, { ciphers: ['rot13'] }), { code: 'E_CONFIG_INVALID', message: 'invalid configuration: ssh.ciphers: Unsupported algorithm: rot13' });
});

t.test('generated host keys always load: ssh2 drops a leading zero byte in 1 of 256 ed25519 keys', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ci-edge-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // 1000 keys: without the re-draw, a malformed one shows up with probability 1 - (255/256)^1000 = 98 %.
  const keys = loadHostKeys(Array.from({ length: 1000 }, (_, i) => join(dir, `k${i}`)), silentLogger());
  t.equal(keys.filter((k) => k.generated && k.type === 'ssh-ed25519').length, 1000);
});
