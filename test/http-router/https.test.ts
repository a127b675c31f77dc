import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import t from 'tap';
import { startBackend } from '../helpers/backends.js';
import { masterRoute } from '../helpers/registry.js';
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
