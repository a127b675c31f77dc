/**
 * Gateway authentication (`keys` policy), the tunnel limits, the handshake and idle timeouts, the host key.
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { masterRoute, testRegistry } from '../helpers/registry.js';
import { baseSshOptions, holdTunnel, keygen, proxyCommand, runSsh, SSH, startSshd, startTestSshGateway, waitForBanner } from '../helpers/sshd.js';

async function setup(t: Test, ssh: Record<string, unknown> = {}) {
  const sshd = await startSshd();
  t.teardown(() => sshd.close());
  const { registry } = await testRegistry([masterRoute('master1', { ssh: [{ host: '127.0.0.1', port: sshd.port }] })]);
  t.teardown(() => registry.close());
  const gw = await startTestSshGateway(registry, ssh);
  t.teardown(() => gw.close());
  return { sshd, gw };
}

t.test('auth "keys": the authorized key gets through, another key is refused', async (t) => {
  const sshd = await startSshd();
  t.teardown(() => sshd.close());
  const stranger = keygen(join(sshd.dir, 'stranger'));
  const authorized = join(sshd.dir, 'gateway_authorized_keys');
  writeFileSync(authorized, `# gateway users\nno-pty,from="127.0.0.1" ${sshd.identity.publicLine}\n`);
  const { registry } = await testRegistry([masterRoute('master1', { ssh: [{ host: '127.0.0.1', port: sshd.port }] })]);
  t.teardown(() => registry.close());
  const gw = await startTestSshGateway(registry, { auth: 'keys', authorizedKeys: authorized });
  t.teardown(() => gw.close());

  const ok = await runSsh([...baseSshOptions(sshd.identity.path), '-p', String(gw.port), '127.0.0.1', 'tunnel', 'master1'], { input: '' });
  t.match(ok.stdout.toString(), /^SSH-2\.0-OpenSSH/, "the right key reaches master1's sshd banner");
  t.equal(ok.code, 0);

  const no = await runSsh([...baseSshOptions(stranger.path), '-p', String(gw.port), '127.0.0.1', 'tunnel', 'master1']);
  t.match(no.stderr, 'Permission denied (publickey)');
  t.equal(no.code, 255);

  // And the whole way, the inner session authenticated by the master itself.
  const id = sshd.identity.path;
  const full = await runSsh([...baseSshOptions(id), '-o', `ProxyCommand=${proxyCommand(gw.port, id)}`, `${sshd.user}@master1`, 'echo keyed']);
  t.equal(full.stdout.toString(), 'keyed\n');
});

t.test('maxTunnelsPerClient: the second concurrent tunnel from one address is refused, exit 1', async (t) => {
  const { sshd, gw } = await setup(t, { limits: { maxTunnelsPerClient: 1 } });
  const id = sshd.identity.path;
  const held = await holdTunnel(t, id, gw.port);
  const second = await runSsh([...baseSshOptions(id), '-p', String(gw.port), '127.0.0.1', 'tunnel', 'master1']);
  t.equal(second.stderr, 'ci-edge: too many tunnels: 1 open from 127.0.0.1\n');
  t.equal(second.code, 1);
  await held.release();
  const third = await runSsh([...baseSshOptions(id), '-p', String(gw.port), '127.0.0.1', 'tunnel', 'master1'], { input: '' });
  t.match(third.stdout.toString(), /^SSH-2\.0-/, 'the slot is given back when the tunnel ends');
});

t.test('handshake timeout: a client that never speaks SSH is disconnected', async (t) => {
  const { gw } = await setup(t, { limits: { handshakeTimeout: '200ms' } });
  const closed = await new Promise<string>((resolve) => {
    const s = connect(gw.port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d.toString()));
    s.on('error', () => {});
    s.on('close', () => resolve(got));
    setTimeout(() => {
      s.destroy();
      resolve('still open');
    }, 10_000).unref();
  });
  t.match(closed, /^SSH-2\.0-ci-edge/, 'the gateway sent its banner, then hung up');
});

t.test('idle timeout: a tunnel with no bytes either way is closed, exit 1', async (t) => {
  const { sshd, gw } = await setup(t, { limits: { idleTimeout: '300ms' } });
  const id = sshd.identity.path;
  // The inner session is silent while the remote command sleeps (no ServerAlive), so the tunnel idles.
  const r = await runSsh([...baseSshOptions(id), '-o', `ProxyCommand=${proxyCommand(gw.port, id)}`, `${sshd.user}@master1`, 'sleep 5; echo late'], { timeoutMs: 15_000 });
  t.equal(r.stdout.toString(), '');
  t.equal(r.code, 255, 'the inner ssh lost its connection');
});

t.test('host key: generated once as ed25519 with mode 0600, fingerprint as ssh-keygen prints it, reused', async (t) => {
  const { gw } = await setup(t);
  const path = gw.config.ssh!.hostKeys[0]!;
  t.equal(statSync(path).mode & 0o777, 0o600);
  const before = readFileSync(path);
  const printed = execFileSync('ssh-keygen', ['-l', '-f', path]).toString().split(' ')[1];
  t.match(printed, /^SHA256:/);
  const banner = await waitForBanner(gw.port);
  t.equal(banner, 'SSH-2.0-ci-edge');
  const r = await runSsh([...baseSshOptions(keygen(join(gw.config.ssh!.hostKeys[0]!, '..', 'client')).path, 'DEBUG'), '-p', String(gw.port), '127.0.0.1', 'tunnel', 'nosuch']);
  t.match(r.stderr, `Server host key: ssh-ed25519 ${printed}`, 'the client sees the key the gateway wrote');
  t.same(readFileSync(path), before);
});

t.test('shutdown: open tunnels get until the deadline, then end with exit status 1', async (t) => {
  const { sshd, gw } = await setup(t);
  const id = sshd.identity.path;
  const holder = spawn(SSH, [...baseSshOptions(id), '-p', String(gw.port), '127.0.0.1', 'tunnel', 'master1'], { stdio: ['pipe', 'pipe', 'ignore'] });
  t.teardown(() => {
    holder.kill('SIGKILL');
  });
  const exited = new Promise<number | null>((resolve) => holder.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no banner through the tunnel')), 15_000);
    holder.stdout.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  await gw.frontDoor.close(Date.now() + 200);
  t.equal(await exited, 1, 'the cut tunnel reports exit status 1');
  t.equal((await gw.metrics.sshTunnelsOpen.get()).values[0]?.value, 0);
  const after = await runSsh([...baseSshOptions(id), '-p', String(gw.port), '127.0.0.1', 'tunnel', 'master1']);
  t.equal(after.code, 255, 'no longer listening');
});
