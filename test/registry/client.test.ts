import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { silentLogger } from '../../src/log.js';
import { decodeBody } from '../../src/registry/marathon/body.js';
import { MarathonClient } from '../../src/registry/marathon/client.js';
import { masterApp, startMarathonSim } from '../helpers/marathon-sim.js';
import { capturingLogger, httpOf, marathonConfig, startSource, waitFor } from './harness.js';

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
  const apps: unknown[] = [];
  t.same(await client.listApps((a) => apps.push(a)), { apps: 0, bytes: Buffer.byteLength(body) });
  t.same(apps, []);
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

/**
 * A Marathon whose /v2/apps body comes in 1 KiB pieces, or stops half way (cut or stalled); everything else is
 * passed through to the simulator behind it (leader, events).
 */
async function throttledMarathon(simUrl: string): Promise<{ url: string; mode: 'drip' | 'cut' | 'stall'; close(): Promise<void> }> {
  const state = { mode: 'drip' as 'drip' | 'cut' | 'stall' };
  const server = createServer((req, res) => {
    if (!req.url?.startsWith('/v2/apps?')) {
      const up = request(simUrl + req.url, { headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
      return;
    }
    const mode = state.mode;
    void fetch(simUrl + req.url).then(async (r) => {
      const body = Buffer.from(await r.arrayBuffer());
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      const stop = mode === 'drip' ? body.length : body.length >> 1;
      for (let i = 0; i < stop; i += 1024) {
        res.write(body.subarray(i, Math.min(stop, i + 1024)));
        await new Promise((r) => setTimeout(r, 1));
      }
      if (mode === 'drip') res.end();
      if (mode === 'cut') res.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return Object.assign(state, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  });
}

t.test('/v2/apps read as it arrives; a body cut or stalled half way keeps the last routes', async (t) => {
  const apps = Array.from({ length: 40 }, (_, i) => masterApp(`master${i}`, { host: '127.0.0.1', ports: { http: 9000 + i }, labels: { pad: 'x'.repeat(200) } }));
  const sim = await startMarathonSim({ apps });
  t.teardown(() => sim.close());
  const marathon = await throttledMarathon(sim.url);
  t.teardown(() => marathon.close());
  const h = await startSource(marathonConfig([marathon.url], { requestTimeout: 300 }));
  t.teardown(() => h.close());
  const good = await waitFor(h.registry, (s) => s.status.ready && s.routes.size === 40, 'first sync, body in 1 KiB pieces');
  t.same(httpOf(good.routes.get('master39')), ['127.0.0.1:9039']);

  for (const mode of ['cut', 'stall'] as const) {
    marathon.mode = mode;
    h.source.fullSync('test');
    const stale = await waitFor(h.registry, (s) => s.status.stale, `stale after a ${mode} body`);
    t.match(stale.status.lastError, mode === 'cut' ? /unreachable: .*after \d+ bytes/ : /unreachable: .*no byte for \d+ ms after \d+ bytes/, mode);
    t.equal(stale.routes.size, 40, `${mode}: every route kept`);
    t.equal(stale.routes.get('master1'), good.routes.get('master1'), `${mode}: the very same route object`);
    marathon.mode = 'drip';
    h.source.fullSync('test');
    await waitFor(h.registry, (s) => !s.status.stale, `recovered after ${mode}`);
  }
});
