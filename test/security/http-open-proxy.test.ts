/**
 * Security regressions of the HTTP router: open-proxy attempts, header injection, path traversal, oversized
 * headers, slowloris and malformed requests. The router must answer each and keep serving.
 */
import t from 'tap';
import { startBackend } from '../helpers/backends.js';
import { masterRoute } from '../helpers/registry.js';
import { ask, domain, raw, startRouter } from '../http-router/setup.js';

const b1 = await startBackend('master1');
const b2 = await startBackend('master2');
t.teardown(async () => {
  await b1.close();
  await b2.close();
});
const r = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint] }), masterRoute('master2', { http: [b2.endpoint] })], { http: { timeouts: { headers: '300ms' } } });

t.test('open proxy: absolute-URI requests to other hosts are 404, never fetched', async (t) => {
  for (const target of ['http://www.example.org/', `http://127.0.0.1:${b1.port}/master1/`, 'http://localhost/']) {
    const out = await raw(r.port, `GET ${target} HTTP/1.1\r\nHost: ${domain}\r\nConnection: close\r\n\r\n`);
    t.match(out, /^HTTP\/1\.1 404 /, target);
  }
  const byHost = await ask(r.port, '/master1/', { host: `127.0.0.1:${b1.port}` });
  t.equal(byHost.status, 404, 'a backend address in Host routes nowhere');
});

t.test('open proxy: an absolute URI naming one of our hosts routes there, in origin-form', async (t) => {
  const out = await raw(r.port, `GET http://master2.${domain}/x?y=1 HTTP/1.1\r\nHost: evil.example.org\r\nConnection: close\r\n\r\n`);
  t.match(out, /^HTTP\/1\.1 200 /);
  t.equal(b2.requests.at(-1)!.url, '/x?y=1');
});

t.test('open proxy: CONNECT is refused with 405', async (t) => {
  const out = await raw(r.port, `CONNECT www.example.org:443 HTTP/1.1\r\nHost: www.example.org:443\r\n\r\n`);
  t.match(out, /^HTTP\/1\.1 405 /);
});

t.test('path traversal: /master1/..%2f..%2fmaster2 never reaches master2', async (t) => {
  const before = b2.requests.length;
  for (const p of ['/master1/..%2f..%2fmaster2/', '/master1/%2E%2E%2Fmaster2/', '/master1/../master2/', '/master1/..;/master2/x/../../..']) {
    const out = await raw(r.port, `GET ${p} HTTP/1.1\r\nHost: ${domain}\r\nConnection: close\r\n\r\n`);
    t.match(out, /^HTTP\/1\.1 400 /, p);
  }
  t.equal((await ask(r.port, '/master1%2f..%2fmaster2/')).status, 400, 'an encoded slash counts as one');
  t.equal(b2.requests.length, before);
});

t.test('header injection: CR/LF in the request line or a header is refused; redirects stay encoded', async (t) => {
  t.match(await raw(r.port, `GET /master1/ HTTP/1.1\r\nHost: ${domain}\r\nX-A: a\rX-B: b\r\n\r\n`), /^HTTP\/1\.1 400 /);
  t.match(await raw(r.port, `GET /master1/\rSet-Cookie: x HTTP/1.1\r\nHost: ${domain}\r\n\r\n`), /^HTTP\/1\.1 400 /);
  const res = await ask(r.port, '/master1?a=%0d%0aSet-Cookie:%20x=1');
  t.equal(res.status, 301);
  t.equal(res.headers.location, '/master1/?a=%0d%0aSet-Cookie:%20x=1');
  t.equal(res.headers['set-cookie'], undefined);
  for (const host of [`evil.org#.${domain}`, `master1.${domain}/x`, `master1.${domain}@evil.org`]) {
    t.equal((await ask(r.port, '/', { host })).status, 404, host);
  }
});

t.test('oversized headers get 431, the process keeps serving', async (t) => {
  const out = await raw(r.port, `GET /master1/ HTTP/1.1\r\nHost: ${domain}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  t.match(out, /^HTTP\/1\.1 431 /);
  t.equal((await ask(r.port, '/master1/')).status, 200);
});

t.test('slowloris: a header block not finished within timeouts.headers is cut with 408', async (t) => {
  const out = await raw(r.port, `GET /master1/ HTTP/1.1\r\nHost: ${domain}\r\nX-Slow: `, 10_000);
  t.match(out, /^HTTP\/1\.1 408 /);
});

t.test('malformed requests get 400, the process keeps serving', async (t) => {
  for (const bad of ['GARBAGE\r\n\r\n', `GET / HTTP/1.1\r\nBad Header: x\r\n\r\n`, 'GET /\0 HTTP/1.1\r\n\r\n', `GET * HTTP/1.1\r\nHost: ${domain}\r\nConnection: close\r\n\r\n`]) {
    t.match(await raw(r.port, bad), /^HTTP\/1\.1 400 /, JSON.stringify(bad));
  }
  t.equal((await ask(r.port, '/master1/')).status, 200);
});
