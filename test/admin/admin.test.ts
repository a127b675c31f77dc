import t from 'tap';
import { masterRoute } from '../helpers/registry.js';
import { startAdmin } from './start-admin.js';

const ep = (port: number) => [{ host: '127.0.0.1', port }];

t.test('health, ready and routes keep their answers', async (t) => {
  let draining = false;
  const a = await startAdmin({ routes: [masterRoute('master1', { http: ep(8081) })], draining: () => draining });
  t.teardown(a.close);
  const health = await fetch(`${a.url}/health`);
  t.equal(health.status, 200);
  t.same(await health.json(), { status: 'ok' });
  const ready = await fetch(`${a.url}/ready`);
  t.equal(ready.status, 200);
  t.same(await ready.json(), { ready: true, stale: false });
  const one = await fetch(`${a.url}/routes/master1`);
  t.equal(one.status, 200);
  t.match(await one.json(), { name: 'master1', state: 'running', endpoints: { http: [{ host: '127.0.0.1', port: 8081 }] } });
  const missing = await fetch(`${a.url}/routes/nope`);
  t.equal(missing.status, 404);
  t.same(await missing.json(), { error: 'E_NO_ROUTE', message: 'no route named "nope"' });
  const all = (await (await fetch(`${a.url}/routes`)).json()) as { routes: { name: string }[] };
  t.same(all.routes.map((r) => r.name), ['master1']);
  draining = true;
  const drained = await fetch(`${a.url}/ready`);
  t.equal(drained.status, 503);
  t.same(await drained.json(), { ready: false, reason: 'draining' });
});

t.test('POST /reload answers 200 with what changed, 400 with the reason a file was refused', async (t) => {
  const answers = [
    { ok: true as const, changed: ['routes'], restartRequired: [] },
    { ok: false as const, error: 'invalid configuration: routes[0].name: is required' },
  ];
  let calls = 0;
  const a = await startAdmin({ reload: async () => answers[calls++]! });
  t.teardown(a.close);
  const ok = await fetch(`${a.url}/reload`, { method: 'POST' });
  t.equal(ok.status, 200);
  t.same(await ok.json(), { ok: true, changed: ['routes'], restartRequired: [] });
  const bad = await fetch(`${a.url}/reload`, { method: 'POST' });
  t.equal(bad.status, 400);
  t.same(await bad.json(), { ok: false, error: 'invalid configuration: routes[0].name: is required' });
  const wrongMethod = await fetch(`${a.url}/reload`);
  t.equal(wrongMethod.status, 404);
  t.equal(calls, 2);
});

t.test('GET / serves one self-contained page: no external script, style, font or image', async (t) => {
  const a = await startAdmin();
  t.teardown(a.close);
  const res = await fetch(`${a.url}/`);
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
  t.match(res.headers.get('content-security-policy'), /default-src 'none'/);
  t.match(res.headers.get('content-security-policy'), /connect-src 'self'/);
  const html = await res.text();
  t.notMatch(html, /https?:\/\//, 'no absolute URL anywhere in the page');
  t.notMatch(html, /<script[^>]+src=/i, 'no script file');
  t.notMatch(html, /<link[^>]+href=/i, 'no stylesheet or font file');
  t.notMatch(html, /@import|url\(/i, 'no CSS import or url()');
  t.match(html, /<input id="filter"/);
  t.match(html, /new EventSource\("events"\)/);
});
