import t from 'tap';
import { refusingPort, startBackend } from '../helpers/backends.js';
import { masterRoute } from '../helpers/registry.js';
import { ask, domain, startRouter } from './setup.js';

const b1 = await startBackend('master1');
const b2 = await startBackend('master2');
const mesos = await startBackend('mesos');
t.teardown(async () => {
  await b1.close();
  await b2.close();
  await mesos.close();
});

const mesosRoute = masterRoute('mesos', { http: [mesos.endpoint] }, { kind: 'service', app: null, stripPrefix: true, source: 'service' });

t.test('domain routing: <name>.<domain> goes to that master with its Host and path unchanged', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint] }), masterRoute('master2', { http: [b2.endpoint] })]);
  for (const [host, name] of [
    [`master1.${domain}`, 'master1'],
    [`MASTER2.PSE.Example.com:8080`, 'master2'],
  ] as const) {
    const res = await ask(r.port, '/master1/job/x/?a=1', { host });
    t.equal(res.status, 200);
    const echo = JSON.parse(res.body);
    t.equal(echo.backend, name);
    t.equal(echo.url, '/master1/job/x/?a=1');
    t.equal(echo.headers.host, host, 'Host preserved for masters');
    t.equal(echo.headers['x-forwarded-host'], host);
    t.equal(echo.headers['x-forwarded-proto'], 'http');
    t.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
    t.equal(echo.headers['x-forwarded-port'], String(r.port));
    t.equal(echo.headers['x-forwarded-prefix'], undefined, 'no prefix on domain routes');
  }
});

t.test('path routing: <domain>/<name>/… with X-Forwarded-Prefix; /<name> redirects to /<name>/', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint] }), masterRoute('master2', { http: [b2.endpoint] })]);
  const res = await ask(r.port, '/master2/job/x?b=2', { headers: { 'x-forwarded-prefix': '/evil', 'x-forwarded-for': '10.1.1.1' } });
  const echo = JSON.parse(res.body);
  t.equal(echo.backend, 'master2');
  t.equal(echo.url, '/master2/job/x?b=2', 'Jenkins runs with --prefix: path unchanged');
  t.equal(echo.headers.host, domain);
  t.equal(echo.headers['x-forwarded-prefix'], '/master2', 'set by the edge, never the client');
  t.equal(echo.headers['x-forwarded-for'], '10.1.1.1, 127.0.0.1');

  const redir = await ask(r.port, '/master1');
  t.equal(redir.status, 301);
  t.equal(redir.headers.location, '/master1/');
  t.equal((await ask(r.port, '/master1?x=1')).headers.location, '/master1/?x=1');
});

t.test('strip-prefix service: prefix removed, Location and Set-Cookie paths put back under it', async (t) => {
  const r = await startRouter(t, [mesosRoute]);
  const echo = JSON.parse((await ask(r.port, '/mesos/state?x=1')).body);
  t.equal(echo.backend, 'mesos');
  t.equal(echo.url, '/state?x=1');
  t.equal(echo.headers.host, `127.0.0.1:${mesos.port}`, 'services get their own Host');
  t.equal(echo.headers['x-forwarded-host'], domain);
  t.equal(echo.headers['x-forwarded-prefix'], '/mesos');

  const cases: [string, string][] = [
    ['/login', '/mesos/login'],
    [`http://127.0.0.1:${mesos.port}/x?y=1`, `http://${domain}/mesos/x?y=1`],
    [`http://${domain}/a`, `http://${domain}/mesos/a`],
    ['https://elsewhere.example.org/a', 'https://elsewhere.example.org/a'],
    ['relative/path', 'relative/path'],
    ['//cdn.example.org/x', '//cdn.example.org/x'],
  ];
  for (const [to, expected] of cases) {
    const res = await ask(r.port, `/mesos/redirect?to=${encodeURIComponent(to)}`);
    t.equal(res.status, 302);
    t.equal(res.headers.location, expected, to);
  }
  const cookie = await ask(r.port, '/mesos/cookie');
  t.same(cookie.headers['set-cookie'], ['sid=1; Path=/mesos/app; HttpOnly', 'pref=2; Path=/mesos/']);
  t.equal((await ask(r.port, '/mesos')).headers.location, '/mesos/');
  // Domain routing to the same service: nothing to strip, nothing to put back.
  const direct = await ask(r.port, '/redirect?to=/login', { host: `mesos.${domain}` });
  t.equal(direct.headers.location, '/login');
});

t.test('a master redirecting to its internal address gets the public origin', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint] })]);
  const res = await ask(r.port, `/master1/redirect?to=${encodeURIComponent(`http://127.0.0.1:${b1.port}/master1/login`)}`);
  t.equal(res.headers.location, `http://${domain}/master1/login`);
});

t.test('round-robin over healthy endpoints', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint, b2.endpoint] })]);
  const seen: string[] = [];
  for (let i = 0; i < 4; i++) seen.push(JSON.parse((await ask(r.port, '/master1/')).body).backend);
  t.same(seen, ['master1', 'master2', 'master1', 'master2']);
});

t.test('routing changes without restart', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint] })]);
  t.equal(JSON.parse((await ask(r.port, '/master1/')).body).backend, 'master1');
  r.source.set(masterRoute('master1', { http: [b2.endpoint] }));
  t.equal(JSON.parse((await ask(r.port, '/master1/')).body).backend, 'master2');
  r.source.set(masterRoute('master9', { http: [b1.endpoint] }));
  t.equal(JSON.parse((await ask(r.port, '/x', { host: `master9.${domain}` })).body).backend, 'master1');
  r.source.remove('master9');
  t.equal((await ask(r.port, '/x', { host: `master9.${domain}` })).status, 404);
});

t.test('index page lists the routes with links and state, HTML and JSON', async (t) => {
  const r = await startRouter(t, [
    masterRoute('master2', { http: [b2.endpoint] }),
    masterRoute('master1', {}, { state: 'starting', detail: 'task staging since 12:03' }),
  ]);
  const json = await ask(r.port, '/', { headers: { accept: 'application/json' } });
  t.equal(json.status, 200);
  t.same(JSON.parse(json.body), {
    domain,
    routes: [
      { name: 'master1', kind: 'master', state: 'starting', detail: 'task staging since 12:03', url: '/master1/', hostUrl: `//master1.${domain}/` },
      { name: 'master2', kind: 'master', state: 'running', url: '/master2/', hostUrl: `//master2.${domain}/` },
    ],
  });
  const html = await ask(r.port, '/', { host: `${domain}:8080` });
  t.equal(html.headers['content-type'], 'text/html; charset=utf-8');
  t.match(html.body, '<tr><td><a href="/master1/">master1</a></td><td><a href="//master1.pse.example.com:8080/">master1.pse.example.com</a></td><td>master</td><td class="starting">starting: task staging since 12:03</td></tr>');
  t.match(html.body, '<td class="running">running</td>');
});

t.test('one access-log line per request and the http metrics', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint] })]);
  await ask(r.port, '/master1/abc?token=secret');
  await ask(r.port, '/nobody/');
  const lines = r.accessLog();
  t.equal(lines.length, 2);
  const [ok, missing] = lines as [Record<string, unknown>, Record<string, unknown>];
  t.match(ok, { method: 'GET', path: '/master1/abc', route: 'master1', endpoint: `127.0.0.1:${b1.port}`, status: 200, aborted: false });
  t.type(ok['id'], 'string');
  t.type(ok['ms'], 'number');
  t.ok((ok['bytes'] as number) > 0);
  t.notMatch(JSON.stringify(ok), 'secret', 'query strings (Jenkins build tokens) stay out of the log');
  t.match(missing, { route: '-', endpoint: null, status: 404 });
  const metrics = await r.metrics.registry.metrics();
  t.match(metrics, 'ci_edge_http_requests_total{route="master1",code="2xx"} 1');
  t.match(metrics, 'ci_edge_http_requests_total{route="-",code="4xx"} 1');
  t.match(metrics, /ci_edge_http_bytes_total\{route="master1"\} \d+/);
  t.match(metrics, 'ci_edge_http_request_duration_seconds_count{route="master1"} 1');
});

t.test('X-Request-Id: the access-log id goes to the master and back to the client, on pages too', async (t) => {
  const dead = await refusingPort();
  const r = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint] }), masterRoute('down1', { http: [{ host: '127.0.0.1', port: dead }] })]);
  const answers = [
    await ask(r.port, '/master1/lane'),
    await ask(r.port, '/master1/node', { method: 'POST', body: 'x' }),
    await ask(r.port, '/master1/spoofed', { headers: { 'x-request-id': 'client-chosen' } }),
    await ask(r.port, '/nope/'),
    await ask(r.port, '/down1/'),
  ];
  t.same(answers.map((a) => a.status), [200, 200, 200, 404, 502]);
  const ids = answers.map((a) => a.headers['x-request-id'] as string);
  t.equal(new Set(ids).size, 5, `five different ids: ${ids.join(' ')}`);
  const sent = b1.requests.slice(-3).map((q) => q.headers['x-request-id']);
  t.same(sent, ids.slice(0, 3), "the master got the id the client got back; the client's own was replaced");
  for (let i = 0; i < 100 && r.accessLog().length < 5; i++) await new Promise((res) => setTimeout(res, 10));
  t.same(r.accessLog().map((l) => l['id']).sort(), [...ids].sort(), 'each is its access-log line id');

  const other = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint] })]);
  const there = (await ask(other.port, '/master1/x')).headers['x-request-id'] as string;
  t.not(there.split('-')[0], ids[0]!.split('-')[0], 'another instance counts under another prefix');
});
