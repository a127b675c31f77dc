/**
 * Security regressions of the HTTP router: request smuggling and hop-by-hop headers. Each case is a raw
 * request on a socket, so nothing normalizes it before the router sees it.
 */
import t from 'tap';
import { startBackend } from '../helpers/backends.js';
import { masterRoute } from '../helpers/registry.js';
import { ask, domain, raw, startRouter } from '../http-router/setup.js';

const b = await startBackend('master1');
t.teardown(() => b.close());
const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
const smuggled = () => b.requests.filter((q) => q.url.includes('smuggled'));

t.test('CL + TE in one request is refused with 400 (RFC 9112 §6.1), nothing reaches the backend', async (t) => {
  const before = b.requests.length;
  const out = await raw(r.port, `POST /master1/ HTTP/1.1\r\nHost: ${domain}\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG`);
  t.match(out, /^HTTP\/1\.1 400 /);
  t.equal(b.requests.length, before);
});

t.test('two different Content-Length values are refused with 400', async (t) => {
  const out = await raw(r.port, `POST /master1/ HTTP/1.1\r\nHost: ${domain}\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef`);
  t.match(out, /^HTTP\/1\.1 400 /);
});

t.test('an obfuscated Transfer-Encoding is refused with 400', async (t) => {
  const out = await raw(r.port, `POST /master1/ HTTP/1.1\r\nHost: ${domain}\r\nTransfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\nabc`);
  t.match(out, /^HTTP\/1\.1 400 /);
});

t.test('DELETE with a chunked body: the body stays a body (http-proxy deleteLength pass removed)', async (t) => {
  const inner = `GET /master1/smuggled HTTP/1.1\r\nHost: ${domain}\r\n\r\n`;
  const req =
    `DELETE /master1/thing HTTP/1.1\r\nHost: ${domain}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
    `${Buffer.byteLength(inner).toString(16)}\r\n${inner}\r\n0\r\n\r\n`;
  const out = await raw(r.port, req);
  t.match(out, /^HTTP\/1\.1 200 /);
  // Let a smuggled request, if any, arrive at the backend before looking.
  await ask(r.port, '/master1/after');
  t.same(smuggled(), []);
  const del = b.requests.find((q) => q.url === '/master1/thing')!;
  t.equal(del.headers['transfer-encoding'], 'chunked');
  t.equal(del.headers['content-length'], undefined);
});

t.test('`Connection: content-length` cannot strip the framing of a GET with a body', async (t) => {
  const inner = `GET /master1/smuggled HTTP/1.1\r\nHost: ${domain}\r\n\r\n`;
  const out = await raw(r.port, `GET /master1/x HTTP/1.1\r\nHost: ${domain}\r\nConnection: close, content-length\r\nContent-Length: ${inner.length}\r\n\r\n${inner}`);
  t.match(out, /^HTTP\/1\.1 200 /);
  await ask(r.port, '/master1/after');
  t.same(smuggled(), []);
});

t.test('hop-by-hop request headers, incl. those named by Connection, are not forwarded', async (t) => {
  const res = await ask(r.port, '/master1/hop', {
    headers: {
      connection: 'keep-alive, x-foo, X-Bar',
      'x-foo': 'secret',
      'x-bar': 'secret',
      'keep-alive': 'timeout=99',
      'proxy-authorization': 'Basic c2VjcmV0',
      te: 'trailers',
      'x-kept': 'yes',
    },
  });
  const h = JSON.parse(res.body).headers as Record<string, string>;
  for (const k of ['x-foo', 'x-bar', 'keep-alive', 'proxy-authorization', 'te']) t.equal(h[k], undefined, k);
  t.equal(h['x-kept'], 'yes');
  t.equal(h['connection'], 'keep-alive', 'our own pooled connection');
});

t.test('hop-by-hop response headers, incl. those named by Connection, are not returned', async (t) => {
  const res = await ask(r.port, '/master1/headers');
  t.equal(res.headers['x-secret'], undefined);
  t.equal(res.headers['x-visible'], '1');
  t.not(res.headers['keep-alive'], 'timeout=5');
});
