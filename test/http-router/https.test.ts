import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import t from 'tap';
import WebSocket from 'ws';
import { parseConfig } from '../../src/config/schema.js';
import { startBackend } from '../helpers/backends.js';
import { masterRoute } from '../helpers/registry.js';
import { byLane, parseResponse, type Res } from './responses.js';
import { ask, startRouter } from './setup.js';

const dir = mkdtempSync(join(tmpdir(), 'ci-edge-tls-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A self-signed wildcard certificate for `domain` (and the bare domain), made by openssl in a temp dir. */
function wildcardCert(domain: string) {
  const cert = join(dir, `${domain}.crt`);
  const key = join(dir, `${domain}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', key, '-out', cert, '-subj', `/CN=*.${domain}`, '-addext', `subjectAltName=DNS:*.${domain},DNS:${domain}`,
  ], { stdio: 'ignore' });
  return { cert, key };
}

const a = wildcardCert('pse.example.com');
const b = wildcardCert('ci.example.net');
const ca = [readFileSync(a.cert), readFileSync(b.cert)];
const backend = await startBackend('master1');
t.teardown(() => backend.close());

function httpsGet(port: number, host: string, path: string) {
  return new Promise<{ status: number; body: string; cert: PeerCertificate }>((resolve, reject) => {
    // `servername` drives SNI and the hostname check against the certificate the router picked.
    const req = httpsRequest({ host: '127.0.0.1', port, path, servername: host, headers: { host }, ca, agent: false }, (res) => {
      let body = '';
      const cert = (res.socket as TLSSocket).getPeerCertificate();
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, cert }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('HTTPS with SNI over two wildcard certificates, X-Forwarded-Proto https, redirect from HTTP', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [backend.endpoint] })], {
    domains: ['pse.example.com', 'ci.example.net'],
    http: { https: { listen: '127.0.0.1:0', certs: [a, b] }, redirectToHttps: true },
  });
  const port = r.router.addresses()['https']!.port;
  const one = await httpsGet(port, 'master1.pse.example.com', '/master1/x');
  t.equal(one.status, 200);
  t.equal(one.cert.subjectaltname, 'DNS:*.pse.example.com, DNS:pse.example.com');
  const echo = JSON.parse(one.body);
  t.equal(echo.headers['x-forwarded-proto'], 'https');
  t.equal(echo.headers['x-forwarded-port'], String(port));
  const two = await httpsGet(port, 'master1.ci.example.net', '/master1/y');
  t.equal(two.status, 200);
  t.equal(two.cert.subjectaltname, 'DNS:*.ci.example.net, DNS:ci.example.net');
  const index = await httpsGet(port, 'ci.example.net', '/');
  t.equal(index.status, 200, 'the bare domain is in the certificate too');

  const get = await ask(r.port, '/master1/x?y=1', { host: 'master1.pse.example.com:8080' });
  t.equal(get.status, 301);
  t.equal(get.headers.location, `https://master1.pse.example.com:${port}/master1/x?y=1`);
  const post = await ask(r.port, '/master1/x', { method: 'POST', host: 'ci.example.net' });
  t.equal(post.status, 308, 'a redirected POST keeps its method');
  t.equal((await ask(r.port, '/', { host: 'evil.example.org' })).status, 404, 'no redirect for hosts that are not ours');
});

/** One TLS connection speaking raw HTTP/1.1, to see which path answered and that the connection is reused. */
async function tlsClient(t: { teardown(fn: () => unknown): void }, port: number, host: string) {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: host, ca });
  t.teardown(() => socket.destroy());
  await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  let buf = Buffer.alloc(0);
  socket.on('data', (c: Buffer) => (buf = Buffer.concat([buf, c])));
  return {
    /** Sends one request, resolves with the whole response. */
    async send(method: string, path: string, body = ''): Promise<Res> {
      const extra = body ? [`Content-Length: ${body.length}`] : [];
      socket.write([`${method} ${path} HTTP/1.1`, `Host: ${host}`, ...extra, '', body].join('\r\n'));
      for (let i = 0; i < 500; i++) {
        const p = parseResponse(buf, method === 'HEAD', false);
        if (p) {
          buf = buf.subarray(p.used);
          return p.res;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`no complete response; got ${JSON.stringify(buf.toString('latin1'))}`);
    },
  };
}

t.test('HTTPS fast lane: GETs relayed by the lane, a POST handed to Node mid-connection, one TLS connection', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [backend.endpoint] })], { http: { https: { listen: '127.0.0.1:0', certs: [a] } } });
  const port = r.router.addresses()['https']!.port;
  const c = await tlsClient(t, port, 'master1.pse.example.com');
  const paths: string[] = [];
  for (const [method, path, body] of [
    ['GET', '/a', ''],
    ['GET', '/b?x=1', ''],
    ['POST', '/c', 'name=x'],
    ['GET', '/d', ''],
  ] as const) {
    const res = await c.send(method, path, body);
    t.equal(res.status, 200, `${method} ${path}`);
    const echo = JSON.parse(res.body) as { method: string; url: string; headers: Record<string, string> };
    t.match(echo.headers, { 'x-forwarded-proto': 'https', 'x-forwarded-port': String(port), 'x-forwarded-host': 'master1.pse.example.com' });
    paths.push(`${echo.method} ${echo.url} ${byLane(res) ? 'lane' : 'node'}`);
  }
  // After the POST the connection is Node's for good (a hand-off is one way).
  t.same(paths, ['GET /a lane', 'GET /b?x=1 lane', 'POST /c node', 'GET /d node']);
  t.match(r.accessLog()[0], { method: 'GET', route: 'master1', status: 200 });
});

t.test('HTTPS: WebSockets (wss) and fastLane: false', async (t) => {
  for (const fastLane of [true, false]) {
    const r = await startRouter(t, [masterRoute('master1', { http: [backend.endpoint] })], { http: { fastLane, https: { listen: '127.0.0.1:0', certs: [a] } } });
    const port = r.router.addresses()['https']!.port;
    // `servername`: SNI and the certificate check use the master's name, not the address connected to.
    const ws = new WebSocket(`wss://127.0.0.1:${port}/master1/wsagents/`, { headers: { host: 'master1.pse.example.com' }, servername: 'master1.pse.example.com', ca } as WebSocket.ClientOptions);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send('over tls');
    t.equal(await new Promise<string>((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString()))), 'over tls', `wss echo (fastLane ${fastLane})`);
    ws.close();
    const c = await tlsClient(t, port, 'master1.pse.example.com');
    const res = await c.send('GET', '/x');
    t.equal(res.status, 200);
    t.equal(byLane(res), fastLane, `GET over TLS by the ${fastLane ? 'lane' : 'node:https path'}`);
  }
});

t.test('HTTPS: ALPN offers http/1.1; new certificates from a reload reach new connections, open ones carry on', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [backend.endpoint] })], {
    domains: ['pse.example.com', 'ci.example.net'],
    http: { https: { listen: '127.0.0.1:0', certs: [a] } },
  });
  const port = r.router.addresses()['https']!.port;
  const open = await tlsClient(t, port, 'master1.pse.example.com');
  t.equal((await open.send('GET', '/before')).status, 200);
  const alpn = tlsConnect({ host: '127.0.0.1', port, servername: 'master1.pse.example.com', ca, ALPNProtocols: ['h2', 'http/1.1'] });
  await new Promise((resolve, reject) => alpn.once('secureConnect', resolve).once('error', reject));
  t.equal(alpn.alpnProtocol, 'http/1.1');
  alpn.destroy();

  const next = parseConfig({ domains: ['pse.example.com', 'ci.example.net'], http: { listen: '127.0.0.1:0', https: { listen: '127.0.0.1:0', certs: [b, a] } } });
  t.equal(await r.router.reconfigure!(next), true, 'applied in place');
  const fresh = await httpsGet(port, 'master1.ci.example.net', '/master1/after');
  t.equal(fresh.cert.subjectaltname, 'DNS:*.ci.example.net, DNS:ci.example.net', 'the new certificate, chosen by SNI');
  t.equal((await open.send('GET', '/still')).status, 200, 'the connection opened before the reload still serves');
});

t.test('HTTPS: a TLS handshake that never comes is cut after timeouts.headers, on both paths', async (t) => {
  for (const fastLane of [true, false]) {
    const r = await startRouter(t, [masterRoute('master1', { http: [backend.endpoint] })], { http: { fastLane, timeouts: { headers: '300ms' }, https: { listen: '127.0.0.1:0', certs: [a] } } });
    const socket = netConnect(r.router.addresses()['https']!.port, '127.0.0.1');
    t.teardown(() => socket.destroy());
    socket.on('error', () => undefined);
    const started = Date.now();
    await new Promise((resolve) => socket.once('close', resolve));
    const ms = Date.now() - started;
    t.ok(ms >= 250 && ms < 5_000, `closed after ${ms} ms without a handshake (fastLane ${fastLane})`);
  }
});
