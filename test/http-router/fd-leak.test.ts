/**
 * Issue #3's proof that the proxy library does not leak: 1000 WebSocket connections and 1000 aborted downloads
 * through the router leave the process's open file descriptors where they started (http-party/node-http-proxy#1510,
 * jupyterhub/configurable-http-proxy#434). Router, backend and clients share this process, so every socket of
 * every side is counted in /proc/self/fd.
 */
import { readdirSync } from 'node:fs';
import { request } from 'node:http';
import t from 'tap';
import WebSocket from 'ws';
import { startBackend } from '../helpers/backends.js';
import { masterRoute } from '../helpers/registry.js';
import { domain, startRouter } from './setup.js';

const rounds = 1000;
const parallel = 50;
const slack = 4;
const openFds = () => readdirSync('/proc/self/fd').length;

const backend = await startBackend('master1');
t.teardown(() => backend.close());

async function inBatches(n: number, one: (i: number) => Promise<void>) {
  for (let i = 0; i < n; i += parallel) await Promise.all(Array.from({ length: Math.min(parallel, n - i) }, (_, k) => one(i + k)));
}

/** Open, echo one message, then close cleanly (even i) or cut the TCP connection (odd i). */
function webSocketRound(port: number, i: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/master1/wsagents/`, { headers: { host: domain } });
    ws.once('error', reject);
    ws.once('open', () => ws.send(`m${i}`));
    ws.once('message', () => {
      if (i % 2 === 0) ws.close();
      else ws.terminate();
    });
    ws.once('close', () => resolve());
  });
}

/** Starts a 64 MiB download and hangs up after the first chunk. */
function abortedDownload(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: `/master1/bytes?size=${64 * 1024 * 1024}`, agent: false, headers: { host: domain } }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? undefined : reject(err)));
    req.end();
  });
}

/** Waits (bounded: 100 × 50 ms) for the descriptor count to come back down to `target`. */
async function settle(target: number): Promise<number> {
  let n = openFds();
  for (let i = 0; i < 100 && n > target; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    n = openFds();
  }
  return n;
}

t.test('1000 WebSockets and 1000 aborted downloads leave no descriptor behind', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [backend.endpoint] })]);
  // Warm up: the first of each kind loads modules and may open lasting descriptors (epoll, pools).
  await webSocketRound(r.port, 0);
  await abortedDownload(r.port);
  const baseline = await settle(0 + openFds());
  await inBatches(rounds, (i) => webSocketRound(r.port, i));
  const afterWs = await settle(baseline + slack);
  t.ok(afterWs <= baseline + slack, `after ${rounds} WebSockets: ${afterWs} fds, baseline ${baseline}`);
  await inBatches(rounds, () => abortedDownload(r.port));
  const afterDownloads = await settle(baseline + slack);
  t.ok(afterDownloads <= baseline + slack, `after ${rounds} aborted downloads: ${afterDownloads} fds, baseline ${baseline}`);
  t.match(await r.metrics.registry.metrics(), 'ci_edge_websockets_open 0');
  const aborted = () => r.accessLog().filter((l) => l['aborted'] === true).length;
  for (let i = 0; i < 100 && aborted() < rounds + 1; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  const lines = r.accessLog();
  t.equal(lines.filter((l) => l['websocket'] === true).length, rounds + 1, 'one access-log line per WebSocket');
  t.equal(lines.filter((l) => l['aborted'] === true).length, rounds + 1, 'aborted downloads are logged as such');
});
