import { createServer, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import t from 'tap';
import { stringify } from 'yaml';
import { get, type Teardown } from './harness.js';
import { portOf, spawnCiEdge } from './process.js';

const chunk = Buffer.alloc(64 * 1024, 'x');
const chunks = 16;

/** A download that sends its first chunk, then waits until the test says go (deterministic, no sleeps). */
async function slowBackend(t: Teardown) {
  let hold: ServerResponse | null = null;
  let gotRequest!: () => void;
  const requested = new Promise<void>((r) => (gotRequest = r));
  const server = createServer((req, res) => {
    if (req.url !== '/master1/artifact.bin') return res.writeHead(200, { 'content-type': 'text/plain' }).end('master1');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(chunk.length * chunks) });
    res.write(chunk);
    hold = res;
    gotRequest();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return {
    port: (server.address() as AddressInfo).port,
    requested,
    /** Sends the rest, one chunk per event-loop turn. */
    finish: async () => {
      for (let i = 1; i < chunks; i++) {
        hold!.write(chunk);
        await new Promise((r) => setImmediate(r));
      }
      hold!.end();
    },
  };
}

const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(false); });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });

t.test('the real process: SIGHUP reloads (a bad file refused), SIGTERM drains a download, then exit 0', async (t) => {
  const backend = await slowBackend(t);
  const dir = mkdtempSync(join(tmpdir(), 'ci-edge-sigterm-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'ci-edge.yaml');
  const doc = (routes: unknown[]) => ({
    domains: ['localhost'],
    routes,
    http: { listen: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0' },
    shutdown: { grace: '30s' },
    log: { level: 'info' },
  });
  const master1 = { name: 'master1', endpoints: { http: [`127.0.0.1:${backend.port}`] } };
  writeFileSync(file, stringify(doc([master1])));

  const p = spawnCiEdge(['--config', file]);
  t.teardown(p.kill);
  const http = portOf(await p.waitFor('http listening'));
  const admin = portOf(await p.waitFor('admin listening'));
  await p.waitFor('route changed', 30_000, (l) => l['route'] === 'master1');
  t.same((await get(http, '/master1/', 'localhost')).body, 'master1');

  // SIGHUP with a broken file: refused, logged with the reason, the old route still serves.
  writeFileSync(file, 'routes: [ { name: "Master 1" } ]\n');
  p.child.kill('SIGHUP');
  const refusedLine = await p.waitFor('reload refused; the running configuration stays');
  t.match(refusedLine['error'], /routes\[0\]\.name: expected a DNS label/);
  t.same((await get(http, '/master1/', 'localhost')).body, 'master1');

  // SIGHUP with a good file: the new route appears without a restart.
  writeFileSync(file, stringify(doc([master1, { ...master1, name: 'master2' }])));
  p.child.kill('SIGHUP');
  await p.waitFor('configuration reloaded');
  t.equal((await get(http, '/master2/', 'localhost')).status, 200);

  // A download in flight, then SIGTERM.
  const download = new Promise<{ status: number; bytes: number; complete: boolean }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: http, path: '/master1/artifact.bin', headers: { host: 'localhost' } }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, complete: res.complete }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  await backend.requested;
  p.child.kill('SIGTERM');
  await p.waitFor('shutting down');
  const ready = await fetch(`http://127.0.0.1:${admin}/ready`);
  t.equal(ready.status, 503, '/ready turns 503 first');
  t.same(await ready.json(), { ready: false, reason: 'draining' });
  let closed = false;
  for (let i = 0; i < 100 && !closed; i++) {
    closed = await refused(http);
    if (!closed) await new Promise((r) => setTimeout(r, 20));
  }
  t.ok(closed, 'the HTTP listener stopped accepting');
  t.equal(p.child.exitCode, null, 'still running while the download is in flight');

  await backend.finish();
  t.same(await download, { status: 200, bytes: chunk.length * chunks, complete: true }, 'the download completed');
  t.same(await p.exited, { code: 0, signal: null });
  await p.waitFor('stopped');
});
