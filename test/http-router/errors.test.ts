import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { refusingPort, startBackend } from '../helpers/backends.js';
import { masterRoute } from '../helpers/registry.js';
import { ask, domain, startRouter } from './setup.js';

const b1 = await startBackend('master1');
t.teardown(() => b1.close());
const json = { accept: 'application/json' };

/** The HTML page's <title> and <body>: the layout's CSS is not the point of these tests. */
function html(body: string) {
  return { title: /<title>(.*?)<\/title>/.exec(body)?.[1], body: /<body>(.*)<\/body>/s.exec(body)?.[1] };
}

t.test('404: no master of that name (path and domain routing), HTML and JSON', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint] })]);
  const h = await ask(r.port, '/nobody/job/x');
  t.equal(h.status, 404);
  t.equal(h.headers['content-type'], 'text/html; charset=utf-8');
  t.same(html(h.body), { title: 'Not found · ci-edge', body: '<h1>404 Not found</h1><p>no master named &quot;nobody&quot;</p><p><a href="/">All masters</a></p>' });
  const j = await ask(r.port, '/nobody/', { headers: json });
  t.equal(j.headers['content-type'], 'application/json; charset=utf-8');
  t.equal(j.body, '{"status":404,"error":"E_NO_ROUTE","message":"no master named \\"nobody\\"","index":"/"}');
  const d = await ask(r.port, '/', { host: `nobody.${domain}:8080`, headers: json });
  t.equal(d.body, '{"status":404,"error":"E_NO_ROUTE","message":"no master named \\"nobody\\"","index":"//pse.example.com:8080/"}');
  t.equal((await ask(r.port, '/nobody', { method: 'HEAD' })).body, '', 'HEAD: headers only');
  const log = r.accessLog();
  t.same(
    log.map((l) => [l['status'], l['bytes']]),
    [
      [404, Buffer.byteLength(h.body)],
      [404, Buffer.byteLength(j.body)],
      [404, Buffer.byteLength(d.body)],
      [404, 0],
    ],
    "the access log counts the page's bytes (none for HEAD)",
  );
});

t.test('404: a Host that is none of ours', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint] })]);
  const h = await ask(r.port, '/master1/', { host: 'www.other.org' });
  t.equal(h.status, 404);
  t.same(html(h.body).body, '<h1>404 Not found</h1><p>no route for host &quot;www.other.org&quot;</p>');
  const j = await ask(r.port, '/master1/', { host: 'a.b.pse.example.com', headers: json });
  t.equal(j.body, '{"status":404,"error":"E_NO_HOST_ROUTE","message":"no route for host \\"a.b.pse.example.com\\""}');
});

t.test('503: known master without a healthy endpoint, with its state, Retry-After and a self-refreshing page', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', {}, { state: 'starting', detail: 'task staging since 12:03' })]);
  const h = await ask(r.port, '/master1/');
  t.equal(h.status, 503);
  t.equal(h.headers['retry-after'], '5');
  t.match(h.body, '<meta http-equiv="refresh" content="5">');
  t.same(html(h.body), {
    title: 'Not available yet · ci-edge',
    body: '<h1>503 Not available yet</h1><p>master1 is starting: task staging since 12:03</p><p>This page reloads itself every 5 seconds.</p>',
  });
  const j = await ask(r.port, '/master1/', { headers: json });
  t.equal(
    j.body,
    '{"status":503,"error":"E_NO_HEALTHY_ENDPOINT","message":"master1 is starting: task staging since 12:03","route":"master1","state":"starting","detail":"task staging since 12:03","retryAfter":5}',
  );
});

t.test('502: the backend refuses; the page names the route, never the address; the registry hears of it', async (t) => {
  const port = await refusingPort();
  const r = await startRouter(t, [masterRoute('master1', { http: [{ host: '127.0.0.1', port }] })]);
  const h = await ask(r.port, '/master1/');
  t.equal(h.status, 502);
  t.same(html(h.body).body, '<h1>502 Bad gateway</h1><p>master1 refused the connection</p>');
  t.notMatch(h.body, String(port));
  const j = await ask(r.port, '/master1/', { headers: json });
  t.equal(j.body, '{"status":502,"error":"E_UPSTREAM_REFUSED","message":"master1 refused the connection","route":"master1"}');
  t.same(r.failed, [`master1 127.0.0.1:${port}`, `master1 127.0.0.1:${port}`]);
});

t.test('502: the backend drops the connection (retried once, then the page)', async (t) => {
  let connections = 0;
  const dropper = createServer((s: Socket) => {
    connections++;
    s.once('data', () => s.destroy());
  });
  await new Promise<void>((resolve) => dropper.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => dropper.close(() => resolve())));
  const port = (dropper.address() as AddressInfo).port;
  const r = await startRouter(t, [masterRoute('master1', { http: [{ host: '127.0.0.1', port }] })]);
  const j = await ask(r.port, '/master1/', { headers: json });
  t.equal(j.status, 502);
  t.equal(j.body, '{"status":502,"error":"E_UPSTREAM_RESET","message":"master1 closed the connection","route":"master1"}');
  t.equal(connections, 2, 'one retry');
  connections = 0;
  const post = await ask(r.port, '/master1/', { method: 'POST', body: 'payload', headers: json });
  t.equal(post.status, 502);
  t.equal(connections, 1, 'a request with a body is never replayed');
});

t.test('504: the backend does not answer within timeouts.upstream', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint] })], { http: { timeouts: { upstream: '300ms' } } });
  const h = await ask(r.port, '/master1/hang');
  t.equal(h.status, 504);
  t.same(html(h.body).body, '<h1>504 Gateway timeout</h1><p>master1 did not answer in time</p>');
  const j = await ask(r.port, '/master1/hang', { headers: json });
  t.equal(j.body, '{"status":504,"error":"E_UPSTREAM_TIMEOUT","message":"master1 did not answer in time","route":"master1"}');
});

t.test('failover: a refusing endpoint is reported once, then skipped for 10 s while its route has another', async (t) => {
  for (const fastLane of [true, false]) {
    const dead = await refusingPort();
    const r = await startRouter(t, [masterRoute('master1', { http: [{ host: '127.0.0.1', port: dead }, b1.endpoint] })], { http: { fastLane } });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await ask(r.port, '/master1/')).status);
    // A body is never replayed, so a POST sent to a refusing endpoint fails; after the ejection none is sent there.
    for (let i = 0; i < 4; i++) statuses.push((await ask(r.port, '/master1/', { method: 'POST', body: 'x' })).status);
    t.same(statuses, Array(10).fill(200), `every request answered (fastLane ${fastLane})`);
    t.same(r.failed, [`master1 127.0.0.1:${dead}`], `the dead endpoint was tried once and reported (fastLane ${fastLane})`);
    t.ok(r.accessLog().every((l) => l['endpoint'] === `127.0.0.1:${b1.port}`), 'the live endpoint answered everything');
  }
});

t.test('http.failTimeout: 0 never skips: the dead endpoint is tried on every request, which still succeeds by its retry', async (t) => {
  const dead = await refusingPort();
  const r = await startRouter(t, [masterRoute('master1', { http: [{ host: '127.0.0.1', port: dead }, b1.endpoint] })], { http: { failTimeout: '0s' } });
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push((await ask(r.port, '/master1/')).status);
  t.same(statuses, [200, 200, 200, 200]);
  t.same(r.failed, Array(4).fill(`master1 127.0.0.1:${dead}`));
});

t.test('a route whose every endpoint refused is still tried (the registry may be behind), and a lone endpoint is never skipped', async (t) => {
  const [d1, d2] = [await refusingPort(), await refusingPort()];
  const r = await startRouter(t, [
    masterRoute('master1', { http: [{ host: '127.0.0.1', port: d1 }, { host: '127.0.0.1', port: d2 }] }),
    masterRoute('master2', { http: [{ host: '127.0.0.1', port: d1 }] }),
  ]);
  for (let i = 0; i < 3; i++) t.equal((await ask(r.port, '/master1/')).status, 502);
  for (let i = 0; i < 3; i++) t.equal((await ask(r.port, '/master2/')).status, 502);
  t.equal(r.failed.filter((f) => f.startsWith('master1 ')).length, 6, 'master1: both endpoints tried on each request (a try and its retry)');
  t.equal(r.failed.filter((f) => f.startsWith('master2 ')).length, 3, 'master2: its one endpoint tried on each request');
});

t.test('a backend dying mid-body cuts the client connection (no silently truncated 200)', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint] })]);
  const err = await ask(r.port, '/master1/die').then(
    () => null,
    (e: NodeJS.ErrnoException) => e.code,
  );
  t.equal(err, 'ECONNRESET');
});

t.test('400: dot-segments in the path, plain or percent-encoded', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint] })]);
  const before = b1.requests.length;
  for (const p of ['/master1/..%2f..%2fmaster2/', '/master1/%2e%2e/master2/', '/master1/..\\master2', '/master1/./x']) {
    const j = await ask(r.port, p, { headers: json });
    t.equal(j.status, 400, p);
    t.equal(j.body, '{"status":400,"error":"E_BAD_REQUEST","message":"bad request: dot-segment in path"}');
  }
  t.equal(b1.requests.length, before, 'nothing reached the backend');
  t.equal((await ask(r.port, '/master1/job/a..b/x%2Fy')).status, 200, 'dots and %2F inside names are fine');
});
