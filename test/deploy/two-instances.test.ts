import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parseConfig } from '../../src/config/schema.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';
import { masterApp, serviceApp, startMarathonSim } from '../helpers/marathon-sim.js';
import { get } from '../lifecycle/harness.js';
import { effectiveDocument } from './app.js';

const execFileAsync = promisify(execFile);

/** A backend that answers its own name, standing in for a master's or CJOC's HTTP port. */
async function backend(t: Tap, name: string): Promise<number> {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(name));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return (server.address() as AddressInfo).port;
}
type Tap = { teardown(fn: () => unknown): void };

/**
 * The app's configuration as one instance of it runs, with what cannot exist on this machine rewritten:
 * every listener on 127.0.0.1:0, the simulator as Marathon (and as the `marathon` service), the Mesos
 * service dropped (no Mesos here), HTTPS dropped (its certificate is a Marathon secret), the host key file
 * shared by both instances as the secret volume shares it.
 */
function instanceConfig(marathonUrl: string, hostKey: string) {
  const doc = structuredClone(effectiveDocument()) as Record<string, Record<string, unknown>>;
  doc['marathon']!['urls'] = [marathonUrl];
  delete doc['services']!['mesos'];
  doc['services']!['marathon'] = { upstreams: [marathonUrl], leader: 'marathon' };
  doc['http'] = { listen: '127.0.0.1:0' };
  doc['ssh'] = { ...doc['ssh'], listen: '127.0.0.1:0', hostKeys: [hostKey] };
  doc['admin'] = { listen: '127.0.0.1:0' };
  return parseConfig(doc);
}

/** `/routes` without what differs between instances by nature: when each one saw the change. */
async function routeTable(gw: Gateway) {
  const port = gw.addresses()['admin.admin']!.port;
  const body = JSON.parse((await get(port, '/routes', 'admin')).body) as { ready: boolean; stale: boolean; marathonLeader: string; routes: Record<string, unknown>[] };
  return {
    ready: body.ready,
    stale: body.stale,
    marathonLeader: body.marathonLeader,
    routes: body.routes.map(({ changedAt: _changedAt, ...r }) => r),
  };
}

/**
 * The host key a listener presents, as OpenSSH prints its fingerprint. Plain `ssh-keyscan`, as a user fills
 * known_hosts with: it asks for every key type, and only ed25519 must answer. Run asynchronously: the SSH
 * server answering it lives in this very process.
 */
async function presentedFingerprint(port: number): Promise<string> {
  const { stdout } = await execFileAsync('ssh-keyscan', ['-T', '5', '-p', String(port), '127.0.0.1'], { encoding: 'utf8' });
  const keys = stdout.split('\n').filter((l) => l && !l.startsWith('#'));
  if (keys.length !== 1 || keys[0]!.split(/\s+/)[1] !== 'ssh-ed25519') throw new Error(`ssh-keyscan: expected one ssh-ed25519 key, got ${JSON.stringify(stdout)}`);
  const blob = keys[0]!.split(/\s+/)[2]!;
  return `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

function fileFingerprint(keyFile: string): string {
  return execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', keyFile], { encoding: 'utf8' }).split(' ')[1]!;
}

t.test('two instances started from the Marathon app configuration route identically and share one host key', async (t) => {
  const m1 = await backend(t, 'master1');
  const m2 = await backend(t, 'master2');
  const cjoc = await backend(t, 'cjoc');
  const sim = await startMarathonSim({
    apps: [
      masterApp('master1', { host: '127.0.0.1', ports: { http: m1, jnlp: 50001, ssh: 50022 } }),
      masterApp('master2', { host: '127.0.0.1', ports: { http: m2 } }),
      serviceApp('/cjoc', { host: '127.0.0.1', ports: [cjoc] }),
    ],
  });
  t.teardown(() => sim.close());
  const dir = mkdtempSync(join(tmpdir(), 'ci-edge-deploy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ci-edge shared host key', '-f', hostKey]);

  const config = instanceConfig(sim.url, hostKey);
  const instances: Gateway[] = [];
  for (let i = 0; i < 2; i++) {
    const gw = await startGateway(config, { log: silentLogger() });
    t.teardown(() => gw.close(0));
    instances.push(gw);
  }
  const [a, b] = instances as [Gateway, Gateway];

  // Both converge on the same table (the service source resolves the Marathon leader on its own clock).
  const complete = (r: Awaited<ReturnType<typeof routeTable>>) => r.ready && r.routes.length === 4;
  let ta = await routeTable(a);
  let tb = await routeTable(b);
  for (let i = 0; i < 100 && !(complete(ta) && complete(tb)); i++) {
    await new Promise((r) => setTimeout(r, 50));
    [ta, tb] = [await routeTable(a), await routeTable(b)];
  }
  t.same(ta.routes.map((r) => r['name']), ['cjoc', 'marathon', 'master1', 'master2']);
  t.same(tb, ta, 'identical /routes');
  t.equal(ta.marathonLeader, sim.hostPort);

  for (const [host, path, expect] of [
    ['master1.pse.example.com', '/', 'master1'],
    ['pse.example.com', '/master2/', 'master2'],
    ['cjoc.pse.example.com', '/', 'cjoc'],
  ] as const) {
    const ra = await get(a.addresses()['http.http']!.port, path, host);
    const rb = await get(b.addresses()['http.http']!.port, path, host);
    t.same([ra.status, ra.body], [200, expect], `instance A routes ${host}${path}`);
    t.same([rb.status, rb.body], [200, expect], `instance B routes ${host}${path}`);
  }

  const expected = fileFingerprint(hostKey);
  t.match(expected, /^SHA256:[A-Za-z0-9+/]{43}$/);
  t.equal(await presentedFingerprint(a.addresses()['ssh.ssh']!.port), expected, 'instance A presents the shared key');
  t.equal(await presentedFingerprint(b.addresses()['ssh.ssh']!.port), expected, 'instance B presents the shared key');
});
