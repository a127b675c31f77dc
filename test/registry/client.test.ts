import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { silentLogger } from '../../src/log.js';
import { decodeBody, MarathonClient } from '../../src/registry/marathon/client.js';
import { masterApp, startMarathonSim } from '../helpers/marathon-sim.js';
import { capturingLogger, marathonConfig, startSource, waitFor } from './harness.js';

t.test('decodeBody: ASCII as is, UTF-8 decoded, a leading BOM dropped', async (t) => {
  t.equal(decodeBody(Buffer.from('{"apps":[]}')), '{"apps":[]}');
  t.equal(decodeBody(Buffer.from('{"owner":"Zoë Müller 🚀"}')), '{"owner":"Zoë Müller 🚀"}');
  t.equal(decodeBody(Buffer.from('\uFEFF{"apps":[]}')), '{"apps":[]}');
  t.equal(decodeBody(Buffer.alloc(0)), '');
});

t.test('a BOM-prefixed body parses, and bytes counts bytes', async (t) => {
  const body = '\uFEFF{"apps":[]}';
  const server = createServer((req, res) => {
    if (req.url === '/v2/leader') res.writeHead(200, { 'content-type': 'application/json' }).end('{"leader":"m1:8080"}');
    else res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const client = new MarathonClient({ urls: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`], auth: null, requestTimeout: 2_000, log: silentLogger() });
  t.teardown(() => client.close());
  t.same(await client.listApps(), { apps: [], bytes: Buffer.byteLength(body) });
  t.equal(await client.discoverLeader(), 'm1:8080');
});

t.test('non-ASCII labels survive a full sync unchanged; the sync line counts body bytes', async (t) => {
  const owner = 'Zoë Müller 🚀 — Zürich';
  const sim = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: 8081 }, labels: { owner } })] });
  t.teardown(() => sim.close());
  const { log, lines } = capturingLogger();
  const h = await startSource(marathonConfig([sim.url]), { log });
  t.teardown(() => h.close());
  const snap = await waitFor(h.registry, (s) => s.status.ready, 'first sync');
  t.same(snap.routes.get('master1')?.labels, { owner });
  const res = await fetch(`${sim.url}/v2/apps?embed=apps.tasks`);
  const bytes = (await res.arrayBuffer()).byteLength;
  t.equal(lines.find((l) => l['msg'] === 'marathon sync')?.['bytes'], bytes);
});
