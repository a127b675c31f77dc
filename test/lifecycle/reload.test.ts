import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import t from 'tap';
import { createLogger } from '../../src/log.js';
import { gatewayFromFile, get, load, nameBackend } from './harness.js';

const route = (name: string, port: number) => ({ name, kind: 'master', endpoints: { http: [`127.0.0.1:${port}`] } });

const base = (routes: unknown[], extra: Record<string, unknown> = {}) => ({
  domains: ['localhost'],
  routes,
  http: { listen: '127.0.0.1:0' },
  admin: { listen: '127.0.0.1:0' },
  shutdown: { grace: '5s' },
  ...extra,
});

const names = async (adminPort: number) => {
  const r = await get(adminPort, '/routes', 'admin');
  return (JSON.parse(r.body) as { routes: { name: string; endpoints: { http: { port: number }[] } }[] }).routes.map(
    (x) => `${x.name}:${x.endpoints.http.map((e) => e.port).join(',')}`,
  );
};

t.test('reload applies file routes through the registry; listeners keep their sockets', async (t) => {
  const a = await nameBackend(t, 'A');
  const b = await nameBackend(t, 'B');
  const g = await gatewayFromFile(t, base([route('master1', a.port)]));
  const admin = g.port('admin.admin');
  const http = g.port('http.http');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const before = await get(http, '/', 'master1.localhost', agent);
  t.same([before.status, before.body], [200, 'A']);
  const socket = [...Object.values(agent.freeSockets)].flat()[0];

  g.write(base([route('master1', b.port), route('master2', a.port)]));
  const r = await g.gw.reload();
  t.same(r, { ok: true, changed: ['routes'], restartRequired: [] });
  t.same(await names(admin), [`master1:${b.port}`, `master2:${a.port}`]);
  const after = await get(http, '/', 'master1.localhost', agent);
  t.same([after.status, after.body], [200, 'B']);
  t.equal([...Object.values(agent.freeSockets)].flat()[0], socket, 'the same keep-alive connection served both');
  t.same([g.port('admin.admin'), g.port('http.http')], [admin, http]);
});

t.test('a bad file is refused with the reason and the old routes still serve', async (t) => {
  const a = await nameBackend(t, 'A');
  const g = await gatewayFromFile(t, base([route('master1', a.port)]));
  const admin = g.port('admin.admin');
  const http = g.port('http.http');

  g.write(base([{ name: 'Bad Name', endpoints: { http: ['127.0.0.1:1'] } }]));
  const res = await fetch(`http://127.0.0.1:${admin}/reload`, { method: 'POST' });
  t.equal(res.status, 400);
  t.same(await res.json(), {
    ok: false,
    error: 'invalid configuration: routes[0].name: expected a DNS label (lower-case letters, digits, "-"), got "Bad Name"',
  });

  g.write('routes: [ {name: master1\n');
  const yaml = await g.gw.reload();
  t.equal(yaml.ok, false);
  t.match(yaml, { error: /is not valid YAML/ });

  t.same(await names(admin), [`master1:${a.port}`]);
  const still = await get(http, '/', 'master1.localhost');
  t.same([still.status, still.body], [200, 'A']);
  t.equal(g.gw.config().routes[0]?.name, 'master1', 'the running configuration stays');
});

t.test('a front door whose section changed is restarted; the others are left alone', async (t) => {
  const a = await nameBackend(t, 'A');
  const g = await gatewayFromFile(t, base([route('master1', a.port)], { demo: { backends: [{ name: 'd1', listen: '127.0.0.1:0' }] } }));
  const admin = g.port('admin.admin');
  const http = g.port('http.http');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  await get(admin, '/health', 'admin', agent);
  const adminSocket = [...Object.values(agent.freeSockets)].flat()[0];

  g.write(base([route('master1', a.port)], { demo: { backends: [{ name: 'd1', listen: '127.0.0.1:0' }, { name: 'd2', listen: '127.0.0.1:0' }] } }));
  const r = await g.gw.reload();
  t.same(r, { ok: true, changed: ['demo'], restartRequired: [] });
  const d2 = await get(g.port('demo.d2'), '/', 'x', undefined);
  t.match(d2.body, /Jenkins master <code>d2<\/code> answered/);
  t.same([g.port('admin.admin'), g.port('http.http')], [admin, http]);
  const health = await get(admin, '/health', 'admin', agent);
  t.equal(health.status, 200);
  t.equal([...Object.values(agent.freeSockets)].flat()[0], adminSocket, 'admin kept its connection');

  g.write(base([route('master1', a.port)]));
  t.same(await g.gw.reload(), { ok: true, changed: ['demo'], restartRequired: [] });
  t.same(Object.keys(g.gw.addresses()).sort(), ['admin.admin', 'http.http'], 'demo stopped');
});

t.test('a new admin address is bound before the old one closes, so POST /reload gets its answer', async (t) => {
  const g = await gatewayFromFile(t, base([], { http: undefined, domains: [] }));
  const old = g.port('admin.admin');
  g.write(base([], { http: undefined, domains: [], admin: { listen: '127.0.0.2:0' } }));
  const res = await fetch(`http://127.0.0.1:${old}/reload`, { method: 'POST', headers: { connection: 'close' } });
  t.equal(res.status, 200);
  t.same(await res.json(), { ok: true, changed: ['admin'], restartRequired: [] });
  const moved = g.gw.addresses()['admin.admin']!;
  t.equal(moved.address, '127.0.0.2');
  const health = await fetch(`http://127.0.0.2:${moved.port}/health`);
  t.same(await health.json(), { status: 'ok' });

  // Only the throttle changes: nothing is rebound.
  g.write(base([], { http: undefined, domains: [], admin: { listen: '127.0.0.2:0', eventsThrottle: '1s' } }));
  t.same(await g.gw.reload(), { ok: true, changed: ['admin'], restartRequired: [] });
  t.equal(g.gw.addresses()['admin.admin']!.port, moved.port);
});

t.test('log.level is applied by a reload, to loggers made before it; log.pretty is reported as needing a restart', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const log = createLogger({ level: 'info', destination });
  const component = log.child({ component: 'made-before-the-reload' });
  const g = await gatewayFromFile(t, base([], { http: undefined, domains: [] }), log);
  component.debug('before');
  g.write(base([], { http: undefined, domains: [], log: { level: 'debug' } }));
  t.same(await g.gw.reload(), { ok: true, changed: ['log'], restartRequired: [] });
  component.debug('after');
  t.same(lines.filter((l) => l['component'] === 'made-before-the-reload').map((l) => l['msg']), ['after'], 'debug lines from the reload on');
  t.ok(lines.some((l) => l['msg'] === 'log level changed by reload' && l['level'] === 40));
  g.write(base([], { http: undefined, domains: [], log: { level: 'debug', pretty: true } }));
  t.same(await g.gw.reload(), { ok: true, changed: ['log'], restartRequired: ['log'] });
});

t.test('reload under load: 8 keep-alive clients through the router, 5 reloads, 0 failed requests', async (t) => {
  const a = await nameBackend(t, 'A');
  const b = await nameBackend(t, 'B');
  const routesFor = (i: number) => [route('master1', i % 2 === 0 ? a.port : b.port), route('master2', a.port), route(`extra${i}`, b.port)];
  const g = await gatewayFromFile(t, base(routesFor(0), { demo: { backends: [{ name: 'd0', listen: '127.0.0.1:0' }] } }));
  const http = g.port('http.http');
  const hosts = ['master1.localhost', 'master2.localhost'];
  let n = 0;
  const reloads: unknown[] = [];
  const reloader = (async () => {
    for (let i = 1; i <= 5; i++) {
      await new Promise((r) => setTimeout(r, 400));
      // Routes change every time; the demo section too, so a front door restarts while requests flow.
      g.write(base(routesFor(i), { demo: { backends: [{ name: `d${i}`, listen: '127.0.0.1:0' }] }, admin: { listen: '127.0.0.1:0', eventsThrottle: `${i * 10}ms` } }));
      reloads.push(await g.gw.reload());
    }
  })();
  const result = await load(
    { workers: 8, durationMs: 3000, maxRequests: 200_000 },
    (agent) => get(http, '/', hosts[n++ % 2]!, agent),
    (r) => r.status === 200 && (r.body === 'A' || r.body === 'B'),
  );
  await reloader;
  t.same(reloads, Array.from({ length: 5 }, () => ({ ok: true, changed: ['routes', 'admin', 'demo'], restartRequired: [] })));
  t.same(result.errors, []);
  t.equal(result.failed, 0);
  t.ok(result.ok > 0, `${result.ok} requests answered`);
  t.comment(`${result.ok} requests in 3 s with 5 reloads, 0 failed`);
});

t.test('a changed http section on the same address is applied in place: open connections carry on', async (t) => {
  const a = await nameBackend(t, 'A');
  const doc = (idle: string, domains: string[]) => ({ ...base([route('master1', a.port)], { http: { listen: '127.0.0.1:0', timeouts: { idle } } }), domains });
  const g = await gatewayFromFile(t, doc('60s', ['localhost']));
  const http = g.port('http.http');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  t.same((await get(http, '/', 'master1.localhost', agent)).body, 'A');
  const socket = [...Object.values(agent.freeSockets)].flat()[0];
  g.write(doc('90s', ['localhost', 'pse.example.com']));
  t.same(await g.gw.reload(), { ok: true, changed: ['domains', 'http'], restartRequired: [] });
  t.equal(g.port('http.http'), http, 'same listener');
  t.equal(g.gw.config().http?.timeouts.idle, 90_000);
  t.same((await get(http, '/', 'master1.pse.example.com', agent)).body, 'A', 'the new domain routes');
  t.equal([...Object.values(agent.freeSockets)].flat()[0], socket, 'on the same keep-alive connection');
});

t.test('http.trustedProxies is applied by a reload, on the fast lane and on Node\'s path', async (t) => {
  const a = await nameBackend(t, 'A');
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const doc = (trustedProxies: string[]) => base([route('master1', a.port)], { http: { listen: '127.0.0.1:0', trustedProxies } });
  const g = await gatewayFromFile(t, doc([]), createLogger({ level: 'info', destination }));
  const http = g.port('http.http');
  // A GET takes the fast lane; a POST goes through node:http and http-proxy.
  const send = (method: string) =>
    new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: http, path: '/x', method, agent: false, headers: { host: 'master1.localhost', 'x-forwarded-for': '203.0.113.5' } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
  const clients = () => lines.filter((l) => l['msg'] === 'request').map((l) => `${String(l['method'])} ${String(l['client'])}`);
  await send('GET');
  await send('POST');
  g.write(doc(['127.0.0.0/8']));
  t.same(await g.gw.reload(), { ok: true, changed: ['http'], restartRequired: [] });
  await send('GET');
  await send('POST');
  t.same(clients(), ['GET 127.0.0.1', 'POST 127.0.0.1', 'GET 203.0.113.5', 'POST 203.0.113.5'], 'the header is believed from the reload on');
});

t.test('a change a listener cannot take in place (header size) on the same fixed port: the old one lets go, the new one binds it', async (t) => {
  const a = await nameBackend(t, 'A');
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const fixed = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const doc = (maxHeaderSize: number) => base([route('master1', a.port)], { http: { listen: `127.0.0.1:${fixed}`, maxHeaderSize } });
  const g = await gatewayFromFile(t, doc(16384));
  t.same((await get(fixed, '/', 'master1.localhost')).body, 'A');
  g.write(doc(32768));
  t.same(await g.gw.reload(), { ok: true, changed: ['http'], restartRequired: [] });
  t.equal(g.port('http.http'), fixed);
  t.equal(g.gw.config().http?.maxHeaderSize, 32768);
  t.same((await get(fixed, '/', 'master1.localhost')).body, 'A', 'the restarted router serves');
});

t.test('a new front door that cannot start fails the reload with the reason; the others keep running', async (t) => {
  const a = await nameBackend(t, 'A');
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => busy.close(() => r())));
  const port = (busy.address() as AddressInfo).port;
  const g = await gatewayFromFile(t, base([route('master1', a.port)]));
  g.write(base([route('master1', a.port)], { demo: { backends: [{ name: 'd1', listen: `127.0.0.1:${port}` }] } }));
  const r = await g.gw.reload();
  t.same(r, { ok: false, error: `cannot listen on 127.0.0.1:${port} (EADDRINUSE)` });
  t.equal(g.gw.config().demo, null, 'the running configuration stays');
  t.same((await get(g.port('http.http'), '/', 'master1.localhost')).body, 'A');
});
