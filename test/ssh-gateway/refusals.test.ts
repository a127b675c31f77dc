/**
 * Never an open proxy (issue #4): what the gateway refuses, the exact line and exit status the real
 * OpenSSH client shows, and proof that no connection was attempted. Named so security reviews find it.
 */
import { createServer, type AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { masterRoute, testRegistry } from '../helpers/registry.js';
import { baseSshOptions, keygen, proxyCommand, runSsh, startSshd, startTestSshGateway, type TestGateway } from '../helpers/sshd.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A TCP listener that only counts connections: any connection to it would be the open-proxy bug. */
async function countingServer(t: Test) {
  let connections = 0;
  const srv = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  return { port: (srv.address() as AddressInfo).port, count: () => connections };
}

async function setup(t: Test) {
  const trap = await countingServer(t);
  const ep = [{ host: '127.0.0.1', port: trap.port }];
  const { registry } = await testRegistry([
    masterRoute('master1', { ssh: ep }),
    masterRoute('master2', {}), // no healthy task yet: state "starting"
    masterRoute('master3', { http: ep }), // running, but without an ssh port
    masterRoute('mesos', { ssh: ep }, { kind: 'service', app: null }),
  ]);
  t.teardown(() => registry.close());
  const gw = await startTestSshGateway(registry);
  t.teardown(() => gw.close());
  const dir = mkdtempSync(join(tmpdir(), 'ci-edge-refusals-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const id = keygen(join(dir, 'id')).path;
  return { trap, gw, id };
}

function direct(gw: TestGateway, id: string, ...rest: string[]) {
  return runSsh([...baseSshOptions(id), '-p', String(gw.port), ...rest]);
}

async function refusedCount(gw: TestGateway, reason: string): Promise<number> {
  return (await gw.metrics.sshTunnelsRefused.get()).values.find((v) => v.labels['reason'] === reason)?.value ?? 0;
}

t.test('exec "tunnel <host>" refusals: exact stderr line, exit status 1, no connection attempted', async (t) => {
  const { trap, gw, id } = await setup(t);
  const cases: [string, string][] = [
    ['foo', 'ci-edge: no master named "foo"'],
    ['foo.ci.example.com', 'ci-edge: no master named "foo"'],
    ['10.0.0.1', 'ci-edge: 10.0.0.1 is not a master; only masters can be reached'],
    ['127.0.0.1', 'ci-edge: 127.0.0.1 is not a master; only masters can be reached'],
    ['www.example.org', 'ci-edge: www.example.org is not a master; only masters can be reached'],
    ['master1.evil.example.org', 'ci-edge: master1.evil.example.org is not a master; only masters can be reached'],
    ['mesos', 'ci-edge: mesos is not a master; only masters can be reached'],
    ['master2', 'ci-edge: master2 is starting'],
    ['master3', 'ci-edge: master3 is not serving SSH (no healthy ssh port)'],
  ];
  for (const [target, line] of cases) {
    const r = await direct(gw, id, '127.0.0.1', 'tunnel', target);
    t.equal(r.stderr, `${line}\n`, target);
    t.equal(r.code, 1, `${target}: exit status`);
    t.equal(r.stdout.length, 0);
  }
  t.equal(trap.count(), 0, 'no connection was attempted');
  t.equal(await refusedCount(gw, 'E_SSH_FORBIDDEN_TARGET'), 5);
  t.equal(await refusedCount(gw, 'E_NO_ROUTE'), 2);
  t.equal(await refusedCount(gw, 'E_NO_HEALTHY_ENDPOINT'), 2);
});

t.test('a terminal escape in the target is not echoed to the user', async (t) => {
  const { gw, id } = await setup(t);
  const r = await direct(gw, id, '127.0.0.1', 'tunnel', 'a\x1b[2Jb');
  t.equal(r.stderr, 'ci-edge: a?[2Jb is not a master; only masters can be reached\n');
  t.equal(r.code, 1);
});

t.test('anything but "tunnel <host>": usage line and exit status 2', async (t) => {
  const { trap, gw, id } = await setup(t);
  const usage = 'ci-edge: usage: tunnel <master>[.ci.example.com]\n';
  const cases: [string, string[]][] = [
    ['another command', ['127.0.0.1', 'ls', '-la']],
    ['tunnel without host', ['127.0.0.1', 'tunnel']],
    ['tunnel with two hosts', ['127.0.0.1', 'tunnel', 'master1', 'master2']],
    ['shell', ['-T', '127.0.0.1']],
    ['shell with a terminal', ['-tt', '127.0.0.1']],
    ['subsystem', ['-s', '127.0.0.1', 'sftp']],
  ];
  for (const [what, args] of cases) {
    const r = await direct(gw, id, ...args);
    t.equal(r.stderr.replace(/\r/g, ''), usage, what);
    t.equal(r.code, 2, `${what}: exit status`);
  }
  t.equal(trap.count(), 0);
  t.equal(await refusedCount(gw, 'E_SSH_USAGE'), cases.length);
});

t.test('direct-tcpip (ssh -W / -J) refusals carry the reason, no connection attempted', async (t) => {
  const { trap, gw, id } = await setup(t);
  const cases: [string, string][] = [
    ['foo:22', 'administratively prohibited: ci-edge: no master named "foo"'],
    [`127.0.0.1:${trap.port}`, 'administratively prohibited: ci-edge: 127.0.0.1 is not a master; only masters can be reached'],
    ['mesos:22', 'administratively prohibited: ci-edge: mesos is not a master; only masters can be reached'],
    ['master1:8080', 'administratively prohibited: ci-edge: master1: only its SSH server can be reached (port 22), not port 8080'],
    ['master2:22', 'connect failed: ci-edge: master2 is starting'],
  ];
  for (const [target, reason] of cases) {
    // The default LogLevel (INFO) is what shows users "channel 0: open failed: …".
    const r = await runSsh([...baseSshOptions(id, 'INFO'), '-p', String(gw.port), '-W', target, '127.0.0.1']);
    t.match(r.stderr, `open failed: ${reason}`, target);
    t.not(r.code, 0);
  }
  t.equal(trap.count(), 0, 'no connection was attempted');
});

t.test('remote forwarding (ssh -R) is refused', async (t) => {
  const { gw, id } = await setup(t);
  const r = await direct(gw, id, '-o', 'ExitOnForwardFailure=yes', '-R', '0:127.0.0.1:22', '127.0.0.1', 'tunnel', 'master1');
  t.match(r.stderr, /remote port forwarding failed/i);
  t.equal(r.code, 255);
});

t.test('through ProxyCommand the user sees the reason next to ssh’s own message', async (t) => {
  const sshd = await startSshd();
  t.teardown(() => sshd.close());
  const { gw } = await setup(t);
  const id = sshd.identity.path;
  const r = await runSsh([...baseSshOptions(id), '-o', `ProxyCommand=${proxyCommand(gw.port, id)}`, `${sshd.user}@nosuch`, 'true']);
  t.match(r.stderr, 'ci-edge: no master named "nosuch"');
  t.equal(r.code, 255, 'the inner ssh found no server');
});
