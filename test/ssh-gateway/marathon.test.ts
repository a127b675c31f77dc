/**
 * The whole path of issue #4: Marathon simulator → registry → startGateway → ssh gateway → real sshd.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseConfig } from '../../src/config/schema.js';
import { startGateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';
import { masterApp, startMarathonSim } from '../helpers/marathon-sim.js';
import { baseSshOptions, proxyCommand, runSsh, startSshd } from '../helpers/sshd.js';

t.test('a master registered in Marathon is reached through startGateway, and followed when its task moves', async (t) => {
  const sshd = await startSshd();
  t.teardown(() => sshd.close());
  const sim = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: 1, ssh: sshd.port } })] });
  t.teardown(() => sim.close());
  const dir = mkdtempSync(join(tmpdir(), 'ci-edge-ssh-marathon-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = parseConfig({
    domains: ['pse.example.com'],
    marathon: { urls: [sim.url] },
    ssh: { listen: '127.0.0.1:0', domain: 'ci.example.com', hostKeys: [join(dir, 'host_key')] },
  });
  const gateway = await startGateway(config, { log: silentLogger() });
  t.teardown(() => gateway.close(0));
  const sshPort = (port: number) => gateway.registry.current().routes.get('master1')?.endpoints.ssh[0]?.port === port;
  for (let i = 0; i < 200 && !sshPort(sshd.port); i++) await new Promise((r) => setTimeout(r, 25));
  t.ok(sshPort(sshd.port), 'master1 synced from Marathon');

  const gwPort = gateway.addresses()['ssh.ssh']!.port;
  const id = sshd.identity.path;
  const args = [...baseSshOptions(id), '-o', `ProxyCommand=${proxyCommand(gwPort, id)}`, `${sshd.user}@master1.ci.example.com`];
  const first = await runSsh([...args, 'echo from marathon; exit 5']);
  t.equal(first.stdout.toString(), 'from marathon\n');
  t.equal(first.code, 5);

  await sshd.stop();
  const moved = await startSshd({ dir: sshd.dir });
  t.teardown(() => moved.close());
  sim.moveTask('/masters/master1', { host: '127.0.0.1', ports: [1, moved.port] });
  for (let i = 0; i < 200 && !sshPort(moved.port); i++) await new Promise((r) => setTimeout(r, 25));
  t.ok(sshPort(moved.port), 'the status_update_event moved the endpoint');
  const second = await runSsh([...args, 'echo moved']);
  t.equal(second.stdout.toString(), 'moved\n');
  t.equal(second.code, 0);
});
