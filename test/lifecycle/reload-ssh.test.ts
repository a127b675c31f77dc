import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { keygen } from '../helpers/sshd.js';
import { gatewayFromFile } from './harness.js';

t.test('a changed ssh section that keeps the address is applied in place: open connections stay', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ci-edge-reload-ssh-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const user = keygen(join(dir, 'user'));
  const authorized = join(dir, 'authorized_keys');
  writeFileSync(authorized, `${user.publicLine}\n`);
  const doc = (ssh: Record<string, unknown>) => ({
    domains: ['pse.example.com'],
    ssh: { listen: '127.0.0.1:0', hostKeys: [join(dir, 'host_key')], ...ssh },
    shutdown: { grace: '5s' },
  });
  const g = await gatewayFromFile(t, doc({}));
  const port = g.port('ssh.ssh');
  // A client connected before the reload: it has the banner and keeps its connection.
  const before = connect(port, '127.0.0.1');
  t.teardown(() => before.destroy());
  const banner = await new Promise<string>((resolve) => before.once('data', (d: Buffer) => resolve(d.toString())));
  t.match(banner, /^SSH-2\.0-ci-edge/);
  let closed = false;
  before.once('close', () => (closed = true));

  g.write(doc({ auth: 'keys', authorizedKeys: authorized, limits: { maxTunnelsPerClient: 3 } }));
  t.same(await g.gw.reload(), { ok: true, changed: ['ssh'], restartRequired: [] });
  t.equal(g.port('ssh.ssh'), port, 'same listener');
  t.equal(g.gw.config().ssh?.auth, 'keys');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(closed, false, 'the connection made before the reload is still open');

  // A bad authorized_keys path is refused and the running policy stays.
  g.write(doc({ auth: 'keys', authorizedKeys: join(dir, 'missing') }));
  const refused = await g.gw.reload();
  t.equal(refused.ok, false);
  t.equal(g.gw.config().ssh?.authorizedKeys, authorized, 'the previous configuration stays');
  t.equal(g.port('ssh.ssh'), port);
});
