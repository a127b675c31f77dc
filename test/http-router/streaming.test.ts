import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import t from 'tap';
import WebSocket from 'ws';
import type { HttpExtension } from '../../src/extension.js';
import { pattern, patternSha256, startBackend } from '../helpers/backends.js';
import { masterRoute } from '../helpers/registry.js';
import { domain, startRouter } from './setup.js';

const b1 = await startBackend('master1');
t.teardown(() => b1.close());
const mib64 = 64 * 1024 * 1024;

t.test('WebSocket echo through the router, Jenkins agent headers both ways, response hook on the 101', async (t) => {
  const seen: number[] = [];
  const ext: HttpExtension = {
    name: 'probe',
    rewriteResponse(ctx, headers) {
      seen.push(ctx.statusCode);
      headers['x-jenkins-probe'] = `${ctx.route.name} ${ctx.upstreamPath} ${ctx.pathRouted}`;
    },
  };
  const r = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint] })], { extensions: [ext] });
  const ws = new WebSocket(`ws://127.0.0.1:${r.port}/master1/wsagents/`, {
    headers: { host: domain, 'Node-Name': 'agent-7', 'Secret-Key': 'abc', 'X-Remoting-Capability': 'cap', 'Connection-Cookie': 'ck' },
  });
  const upgrade = new Promise<Record<string, string | string[] | undefined>>((resolve) => ws.once('upgrade', (res) => resolve(res.headers)));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const headers = await upgrade;
  t.equal(headers['x-backend'], 'master1');
  t.equal(headers['x-remoting-minimum-version'], '3.14');
  t.equal(headers['x-jenkins-probe'], 'master1 /master1/wsagents/ true');
  t.match(headers['x-request-id'], /^[0-9a-z]+-[0-9a-z]+$/);
  t.equal(headers['x-request-id'], b1.upgrades.at(-1)!['x-request-id'], 'the 101 carries the id the master got');
  t.same(seen, [101]);
  const got = b1.upgrades.at(-1)!;
  t.match(got, { 'node-name': 'agent-7', 'secret-key': 'abc', 'x-remoting-capability': 'cap', 'connection-cookie': 'ck', 'x-forwarded-prefix': '/master1' });
  const echoes: string[] = [];
  for (const msg of ['hello', 'x'.repeat(100_000)]) {
    ws.send(msg);
    echoes.push(await new Promise<string>((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString()))));
  }
  t.same(echoes, ['hello', 'x'.repeat(100_000)]);
  t.match(await r.metrics.registry.metrics(), 'ci_edge_websockets_open 1');
  ws.close();
  await new Promise((resolve) => ws.once('close', resolve));
  // The router notices the close of both sockets; wait for its access-log line.
  for (let i = 0; i < 200 && r.accessLog().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  t.match(r.accessLog()[0], { route: 'master1', status: 101, websocket: true });
  t.match(await r.metrics.registry.metrics(), 'ci_edge_websockets_open 0');
});

t.test('a frame the backend sends right after the 101 reaches the client (not swallowed by byte counting)', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint] })]);
  const ws = new WebSocket(`ws://127.0.0.1:${r.port}/master1/greet`, { headers: { host: domain } });
  const first = await new Promise<string>((resolve, reject) => {
    ws.once('message', (d: Buffer) => resolve(d.toString()));
    ws.once('error', reject);
  });
  t.equal(first, 'welcome master1');
  ws.close();
  await new Promise((resolve) => ws.once('close', resolve));
  for (let i = 0; i < 200 && r.accessLog().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  t.ok((r.accessLog()[0]?.['bytes'] as number) > 'welcome master1'.length, 'bytes counted from the socket at close');
});

t.test('a WebSocket to a master without endpoints gets the 503 on the socket', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', {}, { detail: 'task staging since 12:03' })]);
  const ws = new WebSocket(`ws://127.0.0.1:${r.port}/master1/wsagents/`, { headers: { host: domain } });
  const status = await new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
  t.equal(status, 503);
  ws.on('error', () => undefined);
  ws.terminate();
});

t.test('SSE is streamed event by event: the first event arrives before the backend ends the stream', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint] })]);
  const events: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: r.port, path: '/master1/sse', headers: { host: domain, accept: 'text/event-stream' } }, (res) => {
      t.equal(res.headers['content-type'], 'text/event-stream');
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        events.push(chunk);
        // Only now may the backend finish: had the router buffered, this would never run and the test time out.
        if (events.length === 1) b1.release();
      });
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end();
  });
  t.same(events, ['data: one\n\n', 'data: two\n\n']);
});

t.test('64 MiB download and chunked upload stream through with matching checksums', async (t) => {
  const r = await startRouter(t, [masterRoute('master1', { http: [b1.endpoint] })]);
  const down = await new Promise<{ bytes: number; sha: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: r.port, path: `/master1/bytes?size=${mib64}`, headers: { host: domain } }, (res) => {
      const h = createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        h.update(c);
      });
      res.on('end', () => resolve({ bytes, sha: h.digest('hex') }));
    });
    req.on('error', reject);
    req.end();
  });
  t.same(down, { bytes: mib64, sha: patternSha256(mib64) });

  const up = await new Promise<string>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: r.port, method: 'POST', path: '/master1/upload', headers: { host: domain, 'transfer-encoding': 'chunked' } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      },
    );
    req.on('error', reject);
    let off = 0;
    Readable.from(
      (function* () {
        while (off < mib64) {
          const n = Math.min(65_536, mib64 - off);
          yield pattern(off, n);
          off += n;
        }
      })(),
    ).pipe(req);
  });
  t.same(JSON.parse(up), { bytes: mib64, sha256: patternSha256(mib64) });
  const logged = r.accessLog();
  t.equal(logged[0]!['bytes'], mib64, 'the access log counts the body bytes');
});
