/**
 * `npm run bench:http` (issue #3): wrk against a 1 KiB static file served by nginx, measured in one run
 *   - through a reference nginx `proxy_pass` with a keep-alive upstream (same worker count),
 *   - through ci-edge (the compiled dist, a real process with a temp config) with 1 route,
 *   - through ci-edge with 2000 routes in the table,
 *   - through a bare node:http proxy (no features), the floor of Node's HTTP stack, for scale.
 * Prints req/s and p50/p99 latency of each and the ratios (goals: ci-edge/nginx ≥ 0.5; 2000/1 routes ≥ 0.95).
 * Then the same over HTTPS: nginx terminating TLS in front of the same backend, and ci-edge's `http.https`
 * listener, one ECDSA P-256 certificate for both (wrk keeps its connections, so handshakes are amortized).
 * Installs nginx, wrk and openssl with apt-get when missing. Options: `--workers N` (default 1), `--duration S` (8).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/ports.js';
import { ensureTools, waitForPort } from './support.js';

const { values } = parseArgs({ options: { workers: { type: 'string' }, duration: { type: 'string' }, connections: { type: 'string' } } });
const workers = Number(values.workers ?? 1);
const duration = Number(values.duration ?? 8);
const connections = Number(values.connections ?? 64);
const host = 'bench.local';
const dir = mkdtempSync(join(tmpdir(), 'ci-edge-bench-http-'));
// nginx workers run as an unprivileged user when started by root: they must be able to read the files.
chmodSync(dir, 0o755);
const children: ChildProcess[] = [];

function startNginx(name: string, serverBlock: string, upstream = ''): ChildProcess {
  const prefix = join(dir, name);
  mkdirSync(prefix, { recursive: true });
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `${k}_temp_path ${prefix}/${k};`).join(' ');
  const conf = `worker_processes ${workers}; daemon off; pid ${prefix}/nginx.pid; error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http { access_log off; ${temp} ${upstream} server { ${serverBlock} } }
`;
  writeFileSync(join(prefix, 'nginx.conf'), conf);
  const child = spawn('nginx', ['-p', prefix, '-c', join(prefix, 'nginx.conf')], { stdio: 'ignore' });
  children.push(child);
  return child;
}

function startCiEdge(port: number, backendPort: number, routes: number, httpsPort?: number): ChildProcess {
  const lines = [`domains: [${host}]`, 'routes:'];
  for (let i = 1; i <= routes; i++) lines.push(`  - { name: master${i}, kind: master, endpoints: { http: ["127.0.0.1:${backendPort}"] } }`);
  lines.push('http:', `  listen: "127.0.0.1:${port}"`, `  workers: ${workers}`);
  if (httpsPort) lines.push(`  https: { listen: "127.0.0.1:${httpsPort}", certs: [{ cert: ${cert.cert}, key: ${cert.key} }] }`);
  lines.push('log:', '  level: info', '  pretty: false');
  const file = join(dir, `ci-edge-${routes}.yaml`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  // Logs at info, one JSON line per request, to a file: the access log is part of what is measured.
  const out = openSync(join(dir, `ci-edge-${routes}.log`), 'w');
  const child = spawn(process.execPath, ['dist/src/main.js', '--config', file], { stdio: ['ignore', out, out] });
  children.push(child);
  return child;
}

interface Result {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
}

function ms(v: string, unit: string): number {
  const n = Number(v);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n;
}

const cert = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };

function makeCert(): void {
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', cert.key, '-out', cert.cert, '-subj', `/CN=${host}`, '-addext', `subjectAltName=DNS:${host}`,
  ], { stdio: 'ignore' });
  chmodSync(cert.key, 0o644); // nginx's workers run unprivileged
}

function wrk(port: number, seconds: number, scheme = 'http'): Result {
  const out = execFileSync('wrk', ['-t', '2', '-c', String(connections), '-d', `${seconds}s`, '--latency', '-H', `Host: ${host}`, `${scheme}://127.0.0.1:${port}/master1/file.txt`], {
    encoding: 'utf8',
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p = (q: string) => {
    const m = new RegExp(`\\s${q}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    return m ? ms(m[1]!, m[2]!) : NaN;
  };
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) throw new Error(`wrk saw ${non2xx[1]} error responses:\n${out}`);
  return { rps, p50: p('50'), p99: p('99') };
}

function measure(label: string, port: number, scheme = 'http'): Result {
  wrk(port, 2, scheme); // warm-up: JIT, pools, nginx upstream keep-alive
  const r = wrk(port, duration, scheme);
  console.log(`${label.padEnd(28)} ${r.rps.toFixed(0).padStart(8)} req/s   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms`);
  return r;
}

async function main() {
  ensureTools([
    { needs: 'nginx', pkg: 'nginx' },
    { needs: 'wrk', pkg: 'wrk' },
    { needs: 'openssl', pkg: 'openssl' },
  ]);
  makeCert();
  mkdirSync(join(dir, 'www', 'master1'), { recursive: true });
  writeFileSync(join(dir, 'www', 'master1', 'file.txt'), 'x'.repeat(1024));
  const backendPort = await freePort();
  startNginx('backend', `listen 127.0.0.1:${backendPort}; location / { root ${dir}/www; }`);
  const [nginxPort, nginxTlsPort] = [await freePort(), await freePort()];
  const proxied =
    'location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; ' +
    'proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto $scheme; }';
  startNginx(
    'proxy',
    `listen 127.0.0.1:${nginxPort}; listen 127.0.0.1:${nginxTlsPort} ssl; ssl_certificate ${cert.cert}; ssl_certificate_key ${cert.key}; ${proxied}`,
    `upstream backend { server 127.0.0.1:${backendPort}; keepalive 256; }`,
  );
  await waitForPort(backendPort);
  await waitForPort(nginxPort);
  console.log(`workers ${workers}, wrk -t2 -c${connections}, ${duration} s per run, cores ${(await import('node:os')).cpus().length}`);
  const nginx = measure('nginx proxy_pass', nginxPort);

  // The floor of Node's own HTTP stack: a bare node:http proxy with a keep-alive agent and no features. It
  // shows how much of the gap to nginx is Node's and how much is ci-edge's.
  const bare = await freePort();
  writeFileSync(
    join(dir, 'bare.mjs'),
    `import http from 'node:http';
const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256 });
http.createServer((req, res) => {
  const p = http.request({ host: '127.0.0.1', port: ${backendPort}, path: req.url, method: req.method, headers: req.headers, agent }, (pr) => {
    res.writeHead(pr.statusCode, pr.headers);
    pr.pipe(res);
  });
  if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) p.end(); else req.pipe(p);
}).listen(${bare}, '127.0.0.1');
`,
  );
  const bareChild = spawn(process.execPath, [join(dir, 'bare.mjs')], { stdio: 'ignore' });
  children.push(bareChild);
  await waitForPort(bare);
  const node = measure('bare node:http proxy', bare);
  bareChild.kill('SIGTERM');

  const one = await freePort();
  const c1 = startCiEdge(one, backendPort, 1);
  await waitForPort(one);
  const edge1 = measure('ci-edge, 1 route', one);
  c1.kill('SIGTERM');

  const many = await freePort();
  const c2 = startCiEdge(many, backendPort, 2000);
  await waitForPort(many);
  const edge2000 = measure('ci-edge, 2000 routes', many);
  c2.kill('SIGTERM');

  // HTTPS on an instance of its own, so that the plain figures above come from the same setup as always.
  const [plain, tls] = [await freePort(), await freePort()];
  const c3 = startCiEdge(plain, backendPort, 1, tls);
  await waitForPort(tls);
  const nginxTls = measure('nginx, HTTPS', nginxTlsPort, 'https');
  const edgeTls = measure('ci-edge, HTTPS', tls, 'https');
  c3.kill('SIGTERM');

  console.log(`ratio ci-edge/nginx req/s: ${(edge1.rps / nginx.rps).toFixed(2)} (goal >= 0.5)`);
  console.log(`ratio ci-edge/bare node:http proxy req/s: ${(edge1.rps / node.rps).toFixed(2)}`);
  console.log(`ratio 2000 routes / 1 route req/s: ${(edge2000.rps / edge1.rps).toFixed(2)} (goal >= 0.95)`);
  console.log(`latency p50 ci-edge/nginx: ${(edge1.p50 / nginx.p50).toFixed(2)}, p99: ${(edge1.p99 / nginx.p99).toFixed(2)}`);
  console.log(`ratio ci-edge/nginx req/s over HTTPS: ${(edgeTls.rps / nginxTls.rps).toFixed(2)}`);
}

function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    await new Promise((resolve) => setTimeout(resolve, 300));
    cleanup();
  });
