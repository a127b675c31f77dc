/**
 * Real HTTP / WebSocket / SSE backends on 127.0.0.1:0 for front-door tests and benches.
 *
 *   const b = await startBackend('master1');         // b.port, b.url, b.endpoint ({host, port}), b.requests
 *   await b.close();                                 // also cuts open WebSockets and held streams
 *   const port = await refusingPort();               // a port with nothing listening (ECONNREFUSED)
 *
 * Paths every backend answers (any prefix before them is ignored, so `/master1/echo` works like `/echo`):
 *   anything else      200 JSON echo `{ backend, method, url, headers }` (also HEAD)
 *   `/redirect?to=X`   302 `Location: X`
 *   `/cookie`          200 with `Set-Cookie: sid=1; Path=/app; HttpOnly` and `Set-Cookie: pref=2; Path=/`
 *   `/status/N`        status N, JSON echo body
 *   `/headers`         200 with `Connection: x-secret` + `X-Secret: 1` + `Keep-Alive: timeout=5` (hop-by-hop test)
 *   `/sse`             text/event-stream: `data: one`, then waits for `b.release()`, then `data: two` and ends
 *   `/bytes?size=N`    N bytes of `pattern()` (checksum with `patternSha256(N)`), streamed in 64 KiB chunks
 *   `/upload` (POST)   reads the whole body, answers `{ bytes, sha256 }`
 *   `/hang`            never answers (timeouts)
 *   `/die`             sends headers and 1 KiB, then destroys the socket (backend dying mid-body)
 * WebSocket upgrades on any path: echo every message (on a path ending `/greet`, first send `welcome <name>`
 * unasked, as Jenkins does right after the 101); `b.upgrades` records each handshake's headers; the 101
 * carries `X-Backend: <name>` and `X-Remoting-Minimum-Version: 3.14` (a Jenkins-style response header).
 * `b.requests` records `{ method, url, headers }` of every plain request (also upload/sse/bytes).
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import { freePort } from './ports.js';

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

export interface Backend {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly endpoint: { host: string; port: number };
  readonly requests: RecordedRequest[];
  readonly upgrades: IncomingHttpHeaders[];
  /** Lets every held `/sse` stream send its second event and end. */
  release(): void;
  close(): Promise<void>;
}

const chunkSize = 65_536;

/** Deterministic content: byte i of the stream is `(i * 31 + 7) & 0xff`. */
export function pattern(offset: number, length: number): Buffer {
  // The byte value has period 256 in i, so every window is a slice of one precomputed block.
  if (length <= chunkSize) return base.subarray(offset & 0xff, (offset & 0xff) + length);
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i += chunkSize) pattern(offset + i, Math.min(chunkSize, length - i)).copy(b, i);
  return b;
}
const base = Buffer.allocUnsafe(chunkSize + 256);
for (let i = 0; i < base.length; i++) base[i] = (i * 31 + 7) & 0xff;

const sha = new Map<number, string>();
export function patternSha256(size: number): string {
  let hit = sha.get(size);
  if (hit) return hit;
  const h = createHash('sha256');
  for (let off = 0; off < size; off += chunkSize) h.update(pattern(off, Math.min(chunkSize, size - off)));
  hit = h.digest('hex');
  sha.set(size, hit);
  return hit;
}

function tail(url: string): string {
  const path = url.split('?')[0]!;
  for (const p of ['/redirect', '/cookie', '/status/', '/headers', '/sse', '/bytes', '/upload', '/hang', '/die']) {
    const i = path.indexOf(p);
    if (i !== -1) return path.slice(i);
  }
  return path;
}

export async function startBackend(name: string): Promise<Backend> {
  const requests: RecordedRequest[] = [];
  const upgrades: IncomingHttpHeaders[] = [];
  let waiting: (() => void)[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    requests.push({ method: req.method ?? '', url, headers: req.headers });
    const query = new URL(url, 'http://x').searchParams;
    const t = tail(url);
    const echo = () => JSON.stringify({ backend: name, method: req.method, url, headers: req.headers });
    if (t === '/redirect') return res.writeHead(302, { location: query.get('to') ?? '/' }).end();
    if (t === '/cookie') return res.writeHead(200, { 'set-cookie': ['sid=1; Path=/app; HttpOnly', 'pref=2; Path=/'] }).end('ok');
    if (t.startsWith('/status/')) return res.writeHead(Number(t.slice(8)), { 'content-type': 'application/json' }).end(echo());
    if (t === '/headers') return res.writeHead(200, { connection: 'x-secret', 'x-secret': '1', 'keep-alive': 'timeout=5', 'x-visible': '1' }).end('ok');
    if (t === '/hang') return;
    if (t === '/die') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(pattern(0, 1024), () => req.socket.destroy());
      return;
    }
    if (t === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: one\n\n');
      waiting.push(() => res.end('data: two\n\n'));
      return;
    }
    if (t === '/bytes') {
      const size = Number(query.get('size') ?? 0);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
      let off = 0;
      const pump = () => {
        while (off < size) {
          const n = Math.min(chunkSize, size - off);
          const ok = res.write(pattern(off, n));
          off += n;
          if (!ok) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => {
        off = size + 1;
      });
      return pump();
    }
    if (t === '/upload') {
      const h = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        bytes += c.length;
        h.update(c);
      });
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes, sha256: h.digest('hex') })));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name });
    res.end(req.method === 'HEAD' ? undefined : echo());
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const wss = new WebSocketServer({ noServer: true });
  wss.on('headers', (headers) => {
    headers.push(`X-Backend: ${name}`, 'X-Remoting-Minimum-Version: 3.14');
  });
  server.on('upgrade', (req, socket, head) => {
    upgrades.push(req.headers);
    wss.handleUpgrade(req, socket, head, (ws) => {
      if ((req.url ?? '').endsWith('/greet')) ws.send(`welcome ${name}`);
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    endpoint: { host: '127.0.0.1', port },
    requests,
    upgrades,
    release() {
      const w = waiting;
      waiting = [];
      for (const f of w) f();
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      wss.close();
    },
  };
}

/** A loopback port with nothing listening: connecting gets ECONNREFUSED. */
export const refusingPort = freePort;
