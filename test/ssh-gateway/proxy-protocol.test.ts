/**
 * `ssh.proxyProtocol`: the gateway behind a TCP balancer that sends a PROXY header (a Classic ELB in TCP mode,
 * HAProxy `send-proxy`). Real OpenSSH clients connect through a balancer written here that adds the header.
 */
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import t, { type Test } from 'tap';
import { captureLog, eventually } from '../jnlp-discovery/fixtures.js';
import { masterRoute, testRegistry } from '../helpers/registry.js';
import { baseSshOptions, holdTunnel, runSsh, startSshd, startTestSshGateway } from '../helpers/sshd.js';

/** A balancer on 127.0.0.1 that tells the gateway every connection came from `client` (PROXY v1). */
async function balancer(t: Test, gwPort: number, client: string): Promise<number> {
  const server: Server = createServer((downstream) => {
    const upstream = connect(gwPort, '127.0.0.1', () => {
      upstream.write(`PROXY TCP4 ${client} 127.0.0.1 ${downstream.remotePort} 22\r\n`);
      downstream.pipe(upstream).pipe(downstream);
    });
    upstream.on('error', () => downstream.destroy());
    downstream.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((r) => server.close(r)));
  return (server.address() as AddressInfo).port;
}

t.test('behind a balancer the PROXY header names the client: limits count it, logs name it; no header, no session', async (t) => {
  const sshd = await startSshd();
  t.teardown(() => sshd.close());
  const { registry } = await testRegistry([masterRoute('master1', { ssh: [{ host: '127.0.0.1', port: sshd.port }] })]);
  t.teardown(() => registry.close());
  const { log, lines } = captureLog();
  const gw = await startTestSshGateway(registry, { proxyProtocol: true, limits: { maxTunnelsPerClient: 1 } }, log);
  t.teardown(() => gw.close());
  const [alice, bob] = [await balancer(t, gw.port, '203.0.113.1'), await balancer(t, gw.port, '203.0.113.2')];
  const id = sshd.identity.path;

  // Alice holds one tunnel: her second is over the per-client limit, Bob (same balancer address) is not.
  const held = await holdTunnel(t, id, alice);
  const second = await runSsh([...baseSshOptions(id), '-p', String(alice), '127.0.0.1', 'tunnel', 'master1']);
  t.equal(second.stderr, 'ci-edge: too many tunnels: 1 open from 203.0.113.1\n');
  t.equal(second.code, 1);
  const other = await runSsh([...baseSshOptions(id), '-p', String(bob), '127.0.0.1', 'tunnel', 'master1'], { input: '' });
  t.match(other.stdout.toString(), /^SSH-2\.0-OpenSSH/, 'another client behind the same balancer gets its tunnel');
  t.match(await eventually(() => lines().find((l) => l['msg'] === 'ssh tunnel' && String(l['client']).startsWith('203.0.113.2')), "Bob's tunnel line"), { route: 'master1' });
  await held.release();

  // Straight to the gateway, without a header: the spec forbids guessing, so no session.
  const direct = await runSsh([...baseSshOptions(id), '-p', String(gw.port), '127.0.0.1', 'tunnel', 'master1']);
  t.equal(direct.code, 255, 'ssh fails to connect');
  t.match(await eventually(() => lines().find((l) => String(l['msg']).startsWith('ssh connection refused')), 'the refusal'), { reason: 'no PROXY protocol header' });

  // A client reset in the middle of the header costs that connection only.
  const reset = connect(gw.port, '127.0.0.1');
  await new Promise((r) => reset.once('connect', r));
  reset.write('PROXY TCP4 203.0');
  await new Promise((r) => setTimeout(r, 50));
  reset.resetAndDestroy();
  await eventually(() => lines().some((l) => String(l['reason']).startsWith('client error ECONNRESET')), 'the reset refusal');
  const after = await runSsh([...baseSshOptions(id), '-p', String(bob), '127.0.0.1', 'tunnel', 'master1'], { input: '' });
  t.match(after.stdout.toString(), /^SSH-2\.0-OpenSSH/, 'the gateway carries on');
});
