/**
 * A reload that changes `marathon` or `services` swaps the registry's sources in place (gateway.ts swapSources,
 * Registry.swap): new Marathon URLs or credentials without a restart, so agent and SSH connections live on.
 */
import { Agent } from 'node:http';
import t from 'tap';
import { masterApp, startMarathonSim } from '../helpers/marathon-sim.js';
import { refusingPort } from '../helpers/backends.js';
import { gatewayFromFile, get, nameBackend } from './harness.js';

const doc = (marathon: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}) => ({
  domains: ['localhost'],
  http: { listen: '127.0.0.1:0' },
  admin: { listen: '127.0.0.1:0' },
  shutdown: { grace: '5s' },
  ...(marathon ? { marathon: { resyncInterval: '60s', requestTimeout: '1s', reconnectBackoff: { min: '20ms', max: '200ms' }, ...marathon } } : {}),
  ...extra,
});

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('new Marathon URLs by reload: routes follow the new Marathon, the old stream closes, connections carry on', async (t) => {
  const [a, b] = [await nameBackend(t, 'A'), await nameBackend(t, 'B')];
  const simA = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: a.port } })] });
  const simB = await startMarathonSim({ apps: [masterApp('master2', { host: '127.0.0.1', ports: { http: b.port } })] });
  t.teardown(() => Promise.all([simA.close(), simB.close()]));
  const g = await gatewayFromFile(t, doc({ urls: [simA.url] }));
  const http = g.port('http.http');
  await until(() => g.gw.registry.current().status.ready && simA.streams === 1, 'first sync and stream on A');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  t.same((await get(http, '/', 'master1.localhost', agent)).body, 'A');
  const socket = Object.values(agent.freeSockets).flat()[0];

  g.write(doc({ urls: [simB.url] }));
  t.same(await g.gw.reload(), { ok: true, changed: ['marathon'], restartRequired: [] });
  await until(() => g.gw.registry.current().routes.has('master2'), 'master2 from the new Marathon');
  t.same([...g.gw.registry.current().routes.keys()], ['master2'], "the old Marathon's routes went with its first sync");
  t.same((await get(http, '/', 'master2.localhost', agent)).body, 'B');
  t.equal(Object.values(agent.freeSockets).flat()[0], socket, 'the same client connection, the same listener');
  t.equal(g.port('http.http'), http);
  await until(() => simA.streams === 0 && simB.streams === 1, 'the event stream moved from A to B');
  const before = simA.requests.length;
  await new Promise((r) => setTimeout(r, 200));
  t.equal(simA.requests.length, before, 'nothing asks the old Marathon any more');
});

t.test('a reload to a Marathon that does not answer keeps the routes (stale) and /ready stays 200', async (t) => {
  const a = await nameBackend(t, 'A');
  const sim = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: a.port } })] });
  t.teardown(() => sim.close());
  const g = await gatewayFromFile(t, doc({ urls: [sim.url] }));
  await until(() => g.gw.registry.current().status.ready, 'first sync');
  const route = g.gw.registry.current().routes.get('master1');
  const dead = `http://127.0.0.1:${await refusingPort()}`;
  g.write(doc({ urls: [dead] }));
  t.same(await g.gw.reload(), { ok: true, changed: ['marathon'], restartRequired: [] });
  await until(() => g.gw.registry.current().status.stale, 'stale after the new Marathon failed');
  const snap = g.gw.registry.current();
  t.equal(snap.routes.get('master1'), route, 'the very same route, kept');
  t.match(snap.status.lastError, new RegExp(`unreachable: ${dead}/v2/leader`));
  t.equal((await get(g.port('admin.admin'), '/ready', 'admin')).status, 200, 'still ready');
  t.same((await get(g.port('http.http'), '/', 'master1.localhost')).body, 'A', 'still served');

  // Back to a working Marathon: fresh again.
  g.write(doc({ urls: [sim.url] }));
  t.same((await g.gw.reload()).ok, true);
  await until(() => !g.gw.registry.current().status.stale, 'fresh again');
});

t.test('removing the marathon section removes its routes; adding one later adds them, /ready never drops', async (t) => {
  const a = await nameBackend(t, 'A');
  const sim = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: a.port } })] });
  t.teardown(() => sim.close());
  const file = { routes: [{ name: 'static1', kind: 'master', endpoints: { http: [`127.0.0.1:${a.port}`] } }] };
  const g = await gatewayFromFile(t, doc({ urls: [sim.url] }, file));
  await until(() => g.gw.registry.current().routes.has('master1'), 'first sync');
  g.write(doc(undefined, file));
  t.same(await g.gw.reload(), { ok: true, changed: ['marathon'], restartRequired: [] });
  t.same([...g.gw.registry.current().routes.keys()], ['static1'], "Marathon's routes removed, the file's kept");
  await until(() => sim.streams === 0, 'stream closed');

  const hung = await startMarathonSim({ apps: [masterApp('master9', { host: '127.0.0.1', ports: { http: a.port } })] });
  t.teardown(() => hung.close());
  hung.setMode('hang');
  g.write(doc({ urls: [hung.url] }, file));
  t.same(await g.gw.reload(), { ok: true, changed: ['marathon'], restartRequired: [] });
  const status = g.gw.registry.current().status;
  t.same([status.ready, (await get(g.port('admin.admin'), '/ready', 'admin')).status], [true, 200], 'a source added by reload does not gate readiness');
  hung.setMode('ok');
  await until(() => g.gw.registry.current().routes.has('master9'), 'the added Marathon synced', 8_000);
  t.same([...g.gw.registry.current().routes.keys()].sort(), ['master9', 'static1']);
});

t.test('a changed services section is swapped too: a service route follows its new upstreams', async (t) => {
  const [a, b] = [await nameBackend(t, 'A'), await nameBackend(t, 'B')];
  const g = await gatewayFromFile(t, doc(undefined, { services: { elasticsearch: { upstreams: [`http://127.0.0.1:${a.port}`] } } }));
  const http = g.port('http.http');
  await until(() => g.gw.registry.current().routes.has('elasticsearch'), 'service route');
  t.same((await get(http, '/', 'elasticsearch.localhost')).body, 'A');
  g.write(doc(undefined, { services: { elasticsearch: { upstreams: [`http://127.0.0.1:${b.port}`] } } }));
  t.same(await g.gw.reload(), { ok: true, changed: ['services'], restartRequired: [] });
  await until(async () => (await get(http, '/', 'elasticsearch.localhost')).body === 'B', 'the new upstream answers');
  t.equal(g.port('http.http'), http);
});
