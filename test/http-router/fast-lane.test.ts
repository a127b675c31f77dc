/**
 * The fast lane (src/http-router/fast-lane.ts, issue #3 req/s goal) through a real router on 127.0.0.1:
 * keep-alive on both sides, hand-offs to Node mid-connection, response framing as backends really send it
 * (exact bytes from scripted `net` backends), malformed upstream responses, backpressure and the access log.
 */
import { createHash } from 'node:crypto';
import { get } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import t from 'tap';
import { parseConfig } from '../../src/config/schema.js';
import { clientAddressesOf } from '../../src/client-address.js';
import { createFastLane } from '../../src/http-router/fast-lane.js';
import { Observer } from '../../src/http-router/observe.js';
import type { Resolver } from '../../src/http-router/resolve.js';
import { createResponsePasses } from '../../src/http-router/response-passes.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import type { RegistryView } from '../../src/registry/types.js';
import { patternSha256, startBackend } from '../helpers/backends.js';
import { masterRoute } from '../helpers/registry.js';
import { byLane, parseResponse, type Res } from './responses.js';
import { ask, domain, raw, startRouter } from './setup.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A request as a scripted backend received it. */
interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** Which backend connection it came on (1, 2, ...). */
  readonly conn: number;
  /** How many requests that connection had carried before this one. */
  readonly nth: number;
}

interface Scripted {
  readonly endpoint: { host: string; port: number };
  readonly requests: Seen[];
  /** Connections accepted so far. */
  connections(): number;
  /** Connections the router has closed (or the backend ended) so far. */
  closed(): number;
}

/**
 * A backend on a raw TCP server that parses each request (head and a Content-Length body) and lets `answer`
 * write exact bytes back. Connections are counted, so upstream reuse is visible.
 */
async function scripted(t: Teardown, answer: (req: Seen, socket: Socket) => void): Promise<Scripted> {
  const requests: Seen[] = [];
  let accepted = 0;
  let closed = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    const conn = ++accepted;
    let nth = 0;
    sockets.add(socket);
    socket.on('close', () => {
      closed++;
      sockets.delete(socket);
    });
    socket.on('error', () => socket.destroy());
    let buf = '';
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      for (let guard = 0; guard < 100; guard++) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const lines = buf.slice(0, end).split('\r\n');
        const [method = '', url = ''] = lines[0]!.split(' ');
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
        }
        const length = Number(headers['content-length'] ?? 0);
        if (buf.length < end + 4 + length) return;
        const body = buf.slice(end + 4, end + 4 + length);
        buf = buf.slice(end + 4 + length);
        const seen: Seen = { method, url, headers, body, conn, nth: nth++ };
        requests.push(seen);
        answer(seen, socket);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { endpoint: { host: '127.0.0.1', port }, requests, connections: () => accepted, closed: () => closed };
}

/** A raw client connection that reads responses one by one; every wait is bounded (5 s). */
class Client {
  private buf = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | null = null;

  private constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }

  static async open(t: Teardown, port: number): Promise<Client> {
    const s = connect(port, '127.0.0.1');
    t.teardown(() => s.destroy());
    await new Promise((resolve, reject) => s.once('connect', resolve).once('error', reject));
    return new Client(s);
  }

  /** Writes `text` as latin1. */
  send(text: string): void {
    this.socket.write(text, 'latin1');
  }

  /** `GET <path>` with Host and any extra header lines. */
  get(path: string, ...extra: string[]): void {
    this.send(['GET ' + path + ' HTTP/1.1', `Host: ${domain}`, ...extra, '', ''].join('\r\n'));
  }

  private async until<T>(what: string, check: () => T | null): Promise<T> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const v = check();
      if (v !== null) return v;
      if (this.ended && check() === null) throw new Error(`connection closed while waiting for ${what}; got ${JSON.stringify(this.buf.toString('latin1'))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.buf.toString('latin1'))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /** The next complete response (a HEAD response has no body). */
  response(headRequest = false): Promise<Res> {
    return this.until('a response', () => {
      const p = parseResponse(this.buf, headRequest, this.ended);
      if (p === null) return null;
      this.buf = this.buf.subarray(p.used);
      return p.res;
    });
  }

  /** Resolves once the server has closed the connection; returns what arrived unread. */
  closed(): Promise<string> {
    return this.until('the close', () => (this.ended ? this.buf.toString('latin1') : null));
  }

  /** Bytes received and not yet read as a response. */
  unread(): string {
    return this.buf.toString('latin1');
  }
}

const ok = (body: string, ...extra: string[]) => ['HTTP/1.1 200 OK', `Content-Length: ${Buffer.byteLength(body, 'latin1')}`, ...extra, '', body].join('\r\n');

/** A backend that answers every request `200` with body `<method> <url>`. */
const echo = (t: Teardown) => scripted(t, (req, s) => s.write(ok(`${req.method} ${req.url}`), 'latin1'));

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `cond` every 10 ms, at most 500 times (5 s). */
async function eventually(cond: () => boolean): Promise<boolean> {
  for (let i = 0; i < 500 && !cond(); i++) await delay(10);
  return cond();
}


t.test('keep-alive: three GETs on one client socket reuse one upstream connection', async (t) => {
  const b = await echo(t);
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  const c = await Client.open(t, r.port);
  const got: string[] = [];
  for (const path of ['/master1/a', '/master1/b?x=1', '/master1/c']) {
    c.get(path);
    const res = await c.response();
    t.ok(byLane(res), `${path} relayed by the lane`);
    got.push(`${res.status} ${res.body}`);
  }
  t.same(got, ['200 GET /master1/a', '200 GET /master1/b?x=1', '200 GET /master1/c']);
  t.equal(b.connections(), 1, 'one upstream connection');
  t.same(b.requests.map((q) => [q.conn, q.nth]), [[1, 0], [1, 1], [1, 2]]);
  const h = b.requests[0]!.headers;
  t.match(h, { host: domain, 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http', 'x-forwarded-host': domain, 'x-forwarded-port': String(r.port), 'x-forwarded-prefix': '/master1' });
  t.equal(c.unread(), '', 'nothing after the responses');
});

t.test('GET, then a POST with a body (handed to Node mid-connection), then a GET, on one socket', async (t) => {
  const b = await echo(t);
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  const c = await Client.open(t, r.port);
  c.get('/master1/first');
  const first = await c.response();
  t.ok(byLane(first));
  t.equal(first.body, 'GET /master1/first');
  const form = 'name=x&value=caf\xe9';
  c.send(['POST /master1/submit HTTP/1.1', `Host: ${domain}`, 'Content-Type: application/x-www-form-urlencoded', `Content-Length: ${form.length}`, '', form].join('\r\n'));
  const post = await c.response();
  t.equal(post.status, 200);
  t.equal(post.body, 'POST /master1/submit');
  c.get('/master1/third');
  const third = await c.response();
  t.equal(third.status, 200);
  t.equal(third.body, 'GET /master1/third');
  t.same(
    b.requests.map((q) => [q.method, q.url, q.body]),
    [
      ['GET', '/master1/first', ''],
      ['POST', '/master1/submit', form],
      ['GET', '/master1/third', ''],
    ],
  );
  t.equal(b.requests[1]!.headers['content-length'], String(form.length));
});

t.test('two pipelined GETs in one write: two responses, in order', async (t) => {
  const b = await echo(t);
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  const c = await Client.open(t, r.port);
  c.send(`GET /master1/one HTTP/1.1\r\nHost: ${domain}\r\n\r\nGET /master1/two HTTP/1.1\r\nHost: ${domain}\r\n\r\n`);
  const one = await c.response();
  const two = await c.response();
  t.same([one.status, one.body, two.status, two.body], [200, 'GET /master1/one', 200, 'GET /master1/two']);
  t.same(b.requests.map((q) => q.url), ['/master1/one', '/master1/two']);
});

t.test('a GET pipelined behind a lane request in flight is answered after it', async (t) => {
  // The first response is held until the second request has reached the router.
  let release: (() => void) | null = null;
  const b = await scripted(t, (req, s) => {
    if (req.url.endsWith('/slow')) release = () => s.write(ok('slow'));
    else s.write(ok(`${req.method} ${req.url}`));
  });
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  const c = await Client.open(t, r.port);
  c.get('/master1/slow');
  t.ok(await eventually(() => release !== null), 'the backend has the first request');
  c.get('/master1/next');
  await delay(50);
  release!();
  const first = await c.response();
  const second = await c.response();
  t.same([first.body, second.body], ['slow', 'GET /master1/next']);
});

t.test('a request head split over two writes is answered', async (t) => {
  const b = await echo(t);
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  const c = await Client.open(t, r.port);
  c.send(`GET /master1/split HTTP/1.1\r\nHo`);
  await delay(50);
  c.send(`st: ${domain}\r\nAccept: */*\r\n\r\n`);
  const res = await c.response();
  t.same([res.status, res.body], [200, 'GET /master1/split']);
  c.get('/master1/after');
  t.equal((await c.response()).body, 'GET /master1/after', 'the connection still serves');
});

t.test('a chunked response with extensions and a trailer is relayed byte for byte; both connections are reused', async (t) => {
  const chunked = '5;ext=1\r\nhello\r\n6\r\n world\r\n10\r\n0123456789abcdef\r\n0\r\nX-Sum: 42\r\n\r\n';
  const b = await scripted(t, (req, s) => {
    if (!req.url.endsWith('/chunked')) return void s.write(ok(`${req.method} ${req.url}`));
    // Head and the first chunk in one write, the rest in another: the lane finds the end across reads.
    s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n' + chunked.slice(0, 12), 'latin1');
    setTimeout(() => s.write(chunked.slice(12), 'latin1'), 20);
  });
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  const c = await Client.open(t, r.port);
  c.get('/master1/chunked');
  const res = await c.response();
  t.equal(res.status, 200);
  t.equal(res.headers['transfer-encoding'], 'chunked');
  t.equal(res.headers['content-length'], undefined);
  t.equal(res.body, 'hello world0123456789abcdef');
  t.equal(res.trailers, 'X-Sum: 42');
  t.equal(res.rawBody, chunked, 'chunk framing passed through untouched');
  c.get('/master1/chunked');
  t.equal((await c.response()).rawBody, chunked, 'again on the same client socket');
  c.get('/master1/plain');
  t.equal((await c.response()).body, 'GET /master1/plain');
  t.equal(b.connections(), 1, 'the upstream connection was reused after each chunked body');
  t.same(
    r.accessLog().map((l) => l['bytes']),
    [27, 27, 'GET /master1/plain'.length],
    'payload bytes logged',
  );
});

t.test('a response head split over several reads is put together', async (t) => {
  const b = await scripted(t, (req, s) => {
    const whole = ok(`${req.method} ${req.url}`, 'X-Long: ' + 'v'.repeat(3000));
    const cuts = [5, 17, 19, 40, whole.length - 1];
    let at = 0;
    const next = () => {
      const to = cuts.shift();
      if (to === undefined) return void s.write(whole.slice(at));
      s.write(whole.slice(at, to));
      at = to;
      setTimeout(next, 5);
    };
    next();
  });
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  const c = await Client.open(t, r.port);
  for (const path of ['/master1/one', '/master1/two']) {
    c.get(path);
    const res = await c.response();
    t.same([res.status, res.body, res.headers['x-long']?.length], [200, `GET ${path}`, 3000], path);
  }
  t.equal(b.connections(), 1);
});

t.test('a response without Content-Length ending at the close: full body, then the client connection closes', async (t) => {
  const body = Buffer.alloc(200_000, 'abcdefghij').toString('latin1') + 'tail \xe9';
  const b = await scripted(t, (_req, s) => {
    s.write('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n' + body.slice(0, 1000), 'latin1');
    setTimeout(() => s.end(body.slice(1000), 'latin1'), 20);
  });
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  const c = await Client.open(t, r.port);
  c.get('/master1/old');
  const res = await c.response();
  t.equal(res.status, 200);
  t.equal(res.headers['connection'], 'close');
  t.equal(res.headers['content-length'], undefined);
  t.ok(res.body === body, `the whole body (${res.body.length} of ${body.length} bytes)`);
  t.equal(await c.closed(), '', 'closed, nothing after the body');
  t.ok(await eventually(() => r.accessLog().length === 1));
  t.match(r.accessLog()[0], { status: 200, bytes: body.length, aborted: false });
});

t.test('a response with Connection: close: the next request opens a new upstream connection', async (t) => {
  const b = await scripted(t, (req, s) => {
    if (req.url.endsWith('/bye')) s.end(ok('bye', 'Connection: close'));
    else s.write(ok(`${req.method} ${req.url}`));
  });
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  const c = await Client.open(t, r.port);
  c.get('/master1/bye');
  const bye = await c.response();
  t.equal(bye.body, 'bye');
  t.equal(bye.headers['connection'], undefined, 'hop-by-hop: the client connection stays open');
  c.get('/master1/next');
  t.equal((await c.response()).body, 'GET /master1/next');
  t.same(b.requests.map((q) => [q.url, q.conn]), [['/master1/bye', 1], ['/master1/next', 2]]);
  t.same(r.failed, []);
});

t.test('a pooled upstream connection the backend closed while idle: the next request still succeeds', async (t) => {
  const b = await scripted(t, (req, s) => {
    s.write(ok(`${req.method} ${req.url}`));
    // Closes each connection shortly after its first response (a short backend keep-alive timeout).
    setTimeout(() => s.end(), 20);
  });
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  const c = await Client.open(t, r.port);
  c.get('/master1/one');
  t.equal((await c.response()).body, 'GET /master1/one');
  t.ok(await eventually(() => b.closed() === 1), 'the backend closed the idle connection');
  c.get('/master1/two');
  t.equal((await c.response()).body, 'GET /master1/two');
  t.same(b.requests.map((q) => [q.url, q.conn]), [['/master1/one', 1], ['/master1/two', 2]]);
  t.same(r.failed, [], 'the endpoint is not marked failed');
});

t.test('a pooled connection closed by the backend as the request arrives is retried on a new one', async (t) => {
  // The race the idle close can lose: the request is already on its way when the backend closes.
  const b = await scripted(t, (req, s) => {
    if (req.nth === 0) s.write(ok(`${req.method} ${req.url}`));
    else s.destroy();
  });
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  const c = await Client.open(t, r.port);
  c.get('/master1/one');
  t.equal((await c.response()).body, 'GET /master1/one');
  c.get('/master1/two');
  const two = await c.response();
  t.same([two.status, two.body], [200, 'GET /master1/two']);
  t.same(b.requests.map((q) => [q.url, q.conn]), [['/master1/one', 1], ['/master1/two', 1], ['/master1/two', 2]]);
  t.same(r.failed, []);
  t.same(r.accessLog().map((l) => l['status']), [200, 200], 'one access-log line per request, retry included');
});

t.test('malformed upstream responses get the 502 page and the router keeps serving', async (t) => {
  const bad: Record<string, string> = {
    '/cl': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
    '/gzip': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxxxx',
    '/gzip-chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    '/status': 'HTTP/1.1 OK 200\r\nContent-Length: 0\r\n\r\n',
    '/garbage': 'SSH-2.0-OpenSSH_9.6\r\n\r\n',
    '/fold': 'HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n',
  };
  const b = await scripted(t, (req, s) => {
    const tail = req.url.slice('/master1'.length);
    s.write(bad[tail] ?? ok(`${req.method} ${req.url}`), 'latin1');
  });
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  for (const path of Object.keys(bad)) {
    const c = await Client.open(t, r.port);
    c.get(`/master1${path}`, 'Accept: application/json');
    const res = await c.response();
    t.equal(res.status, 502, path);
    t.equal(res.body, '{"status":502,"error":"E_UPSTREAM_RESET","message":"master1 closed the connection","route":"master1"}', path);
    t.equal(res.headers['connection'], 'close', path);
    t.equal(await c.closed(), '', `${path}: the client connection closes after the page`);
    const next = await ask(r.port, '/master1/fine');
    t.same([next.status, next.body], [200, 'GET /master1/fine'], `${path}: the router keeps serving`);
  }
  t.same(r.failed, [], 'a bad response does not mark the endpoint failed');
  t.same(
    r.accessLog().map((l) => l['status']),
    Object.keys(bad).flatMap(() => [502, 200]),
  );
});

t.test('a broken chunked body: a 502 page when nothing was sent yet, else a cut connection, never a complete response', async (t) => {
  const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  const b = await scripted(t, (req, s) => {
    if (req.url.endsWith('/fine')) return void s.write(ok('fine'));
    if (req.url.endsWith('/together')) return void s.write(`${head}5\r\nhello\r\nzz\r\n`);
    s.write(`${head}5\r\nhello\r\n`);
    setTimeout(() => s.write('zz\r\n'), 20);
  });
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  // Head and broken body in one read: nothing went out yet, so the client gets the 502 page.
  const together = await Client.open(t, r.port);
  together.get('/master1/together', 'Accept: application/json');
  const page = await together.response();
  t.equal(page.status, 502);
  t.equal(page.body, '{"status":502,"error":"E_UPSTREAM_RESET","message":"master1 closed the connection","route":"master1"}');
  t.equal(await together.closed(), '', 'the client connection closes after the page');
  // The head went out before the body broke: the connection is cut mid-body.
  const apart = await Client.open(t, r.port);
  apart.get('/master1/apart');
  const rest = await apart.closed();
  t.equal(parseResponse(Buffer.from(rest, 'latin1'), false, false), null, `no complete response reached the client (${JSON.stringify(rest)})`);
  t.ok(await eventually(() => r.accessLog().length === 2));
  t.match(r.accessLog(), [{ status: 502, aborted: false }, { status: 200, aborted: true }]);
  t.ok(await eventually(() => b.closed() === 2), 'the upstream connections are closed, not pooled');
  t.equal((await ask(r.port, '/master1/fine')).status, 200, 'the router keeps serving');
});

t.test('103 Early Hints then 200: the client sees both heads, in order', async (t) => {
  const hints = 'HTTP/1.1 103 Early Hints\r\nLink: </static/app.css>; rel=preload; as=style\r\n\r\n';
  const b = await scripted(t, (req, s) => {
    if (req.url.endsWith('/apart')) {
      s.write(hints);
      setTimeout(() => s.write(ok('page')), 20);
    } else {
      s.write(hints + ok('page'));
    }
  });
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  const c = await Client.open(t, r.port);
  for (const path of ['/master1/together', '/master1/apart']) {
    c.get(path);
    const early = await c.response();
    t.equal(early.status, 103, path);
    t.equal(early.headers['link'], '</static/app.css>; rel=preload; as=style', path);
    const final = await c.response();
    t.same([final.status, final.body], [200, 'page'], path);
  }
  t.equal(b.connections(), 1);
  t.same(r.accessLog().map((l) => l['status']), [200, 200]);
});

t.test('HEAD: the backend content-length and no body; a GET after it on the same socket works', async (t) => {
  const b = await scripted(t, (req, s) => {
    if (req.method === 'HEAD') s.write('HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: 123456\r\n\r\n');
    else s.write(ok(`${req.method} ${req.url}`));
  });
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  const c = await Client.open(t, r.port);
  c.send(`HEAD /master1/artifact.zip HTTP/1.1\r\nHost: ${domain}\r\n\r\n`);
  const head = await c.response(true);
  t.equal(head.status, 200);
  t.equal(head.headers['content-length'], '123456');
  t.equal(head.headers['content-type'], 'application/zip');
  t.ok(byLane(head));
  c.get('/master1/after');
  const res = await c.response();
  t.same([res.status, res.body], [200, 'GET /master1/after'], 'no body bytes were taken for the next response');
  t.same(b.requests.map((q) => [q.method, q.conn]), [['HEAD', 1], ['GET', 1]]);
  t.same(r.accessLog().map((l) => [l['method'], l['status'], l['bytes']]), [['HEAD', 200, 0], ['GET', 200, 'GET /master1/after'.length]]);
});

t.test('a backend sending more than its Content-Length: the client gets exactly CL bytes, the next request is fine', async (t) => {
  const b = await scripted(t, (req, s) => {
    if (req.url.endsWith('/over')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled');
    else s.write(ok(`${req.method} ${req.url}`));
  });
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  const c = await Client.open(t, r.port);
  c.get('/master1/over');
  const over = await c.response();
  t.same([over.status, over.body], [200, 'hello']);
  c.get('/master1/next');
  const next = await c.response();
  t.same([next.status, next.body], [200, 'GET /master1/next'], 'not the extra bytes');
  t.equal(c.unread(), '');
  t.same(b.requests.map((q) => [q.url, q.conn]), [['/master1/over', 1], ['/master1/next', 2]], 'the out-of-step connection is not reused');
});

t.test('client Connection: close: the response says so and the socket ends', async (t) => {
  const b = await echo(t);
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  const c = await Client.open(t, r.port);
  c.get('/master1/last', 'Connection: close');
  const res = await c.response();
  t.same([res.status, res.body], [200, 'GET /master1/last']);
  t.equal(res.headers['connection'], 'close');
  t.ok(byLane(res));
  t.equal(await c.closed(), '');
  t.equal(b.requests[0]!.headers['connection'], 'keep-alive', "hop-by-hop: the client's close is not forwarded, the edge's own keep-alive is");
  // The upstream connection is the backend's to keep: the next client reuses it.
  t.equal((await ask(r.port, '/master1/again')).body, 'GET /master1/again');
  t.equal(b.connections(), 1);
});

t.test('a slow client reading a 32 MiB download gets every byte; the upstream connection serves again after', async (t) => {
  const backend = await startBackend('master1');
  t.teardown(() => backend.close());
  const size = 32 * 1024 * 1024;
  // A short upstream timeout: a pooled connection left paused by the backpressure would answer with a 504.
  const r = await startRouter(t, [masterRoute('master1', { http: [backend.endpoint] })], { http: { timeouts: { upstream: 3_000 } } });
  const got = await new Promise<{ status: number; bytes: number; sha: string }>((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port: r.port, path: `/master1/bytes?size=${size}`, agent: false, headers: { host: domain } }, (res) => {
      const h = createHash('sha256');
      let bytes = 0;
      res.pause();
      // Not reading lets the router's socket buffer fill, so it has to apply backpressure to the backend.
      setTimeout(() => {
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          h.update(c);
        });
        res.resume();
      }, 300);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, sha: h.digest('hex') }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  t.same(got, { status: 200, bytes: size, sha: patternSha256(size) });
  for (const path of ['/master1/one', '/master1/two']) {
    const res = await ask(r.port, path);
    t.equal(res.status, 200, `${path} after the download`);
  }
  t.same(r.failed, []);
  t.match(r.accessLog(), [{ status: 200, bytes: size, aborted: false }, { status: 200 }, { status: 200 }]);
});

t.test('a body whose last write fills the client socket buffer: the pooled upstream connection still answers', async (t) => {
  // Head and 40 000 body bytes in one write arrive in one read; relaying them in one client write returns false
  // (over the 16 KiB highWaterMark), so the lane pauses the upstream socket as the response completes.
  const big = Buffer.alloc(40_000, 'x').toString('latin1');
  const b = await scripted(t, (req, s) => s.write(req.url.endsWith('/big') ? ok(big) : ok(`${req.method} ${req.url}`), 'latin1'));
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })], { http: { timeouts: { upstream: 3_000 } } });
  const c = await Client.open(t, r.port);
  c.get('/master1/big');
  const first = await c.response();
  t.ok(first.body === big, 'the whole body');
  c.get('/master1/next');
  const next = await c.response();
  t.same([next.status, next.body], [200, 'GET /master1/next'], 'not a 504 from a pooled connection left paused');
  const other = await ask(r.port, '/master1/other');
  t.same([other.status, other.body], [200, 'GET /master1/other']);
  t.equal(b.connections(), 1, 'the same upstream connection served all three');
  t.same(r.failed, []);
});

t.test('access log: one line per lane request with id, client, route, endpoint, status, bytes', async (t) => {
  const b = await scripted(t, (req, s) => {
    if (req.url.endsWith('/missing')) s.write('HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found');
    else if (req.url.endsWith('/chunked')) s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    else s.write(ok('hello'));
  });
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  const c = await Client.open(t, r.port);
  for (const path of ['/master1/a?secret=1', '/master1/missing', '/master1/chunked']) {
    c.get(path);
    await c.response();
  }
  c.send(`HEAD /master1/h HTTP/1.1\r\nHost: ${domain}\r\n\r\n`);
  await c.response(true);
  const lines = r.accessLog();
  const endpoint = `127.0.0.1:${b.endpoint.port}`;
  t.match(lines, [
    { client: '127.0.0.1', method: 'GET', path: '/master1/a', route: 'master1', endpoint, status: 200, bytes: 5, aborted: false },
    { client: '127.0.0.1', method: 'GET', path: '/master1/missing', route: 'master1', endpoint, status: 404, bytes: 9, aborted: false },
    { client: '127.0.0.1', method: 'GET', path: '/master1/chunked', route: 'master1', endpoint, status: 200, bytes: 3, aborted: false },
    { client: '127.0.0.1', method: 'HEAD', path: '/master1/h', route: 'master1', endpoint, status: 200, bytes: 0, aborted: false },
  ]);
  t.equal(lines.length, 4, 'one line per request');
  const ids = lines.map((l) => l['id']);
  t.ok(ids.every((id) => typeof id === 'string' && id !== ''), 'every line has an id');
  t.equal(new Set(ids).size, 4, 'ids are distinct');
  t.ok(lines.every((l) => typeof l['ms'] === 'number'), 'every line has ms');
  t.notOk(JSON.stringify(lines).includes('secret'), 'the query string is not logged');
  t.match(await r.metrics.registry.metrics(), /ci_edge_http_requests_total\{route="master1",code="2xx"\} 3/);
});

t.test('http.fastLane: false routes through Node; fastLane must be a boolean', async (t) => {
  const b = await echo(t);
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })], { http: { fastLane: false } });
  const c = await Client.open(t, r.port);
  c.get('/master1/node');
  const res = await c.response();
  t.same([res.status, res.body], [200, 'GET /master1/node']);
  t.equal(res.headers['keep-alive'], 'timeout=5', "Node's server answered");
  t.match(r.accessLog(), [{ route: 'master1', status: 200, path: '/master1/node' }]);
  for (const value of ['yes', 1, 'false']) {
    t.throws(() => parseConfig({ domains: [domain], http: { fastLane: value } }), { message: /http\.fastLane: expected true or false/ }, JSON.stringify(value));
  }
  t.equal(parseConfig({ domains: [domain], http: {} }).http?.fastLane, true, 'on by default');
});

t.test('a throw inside the lane (a bug) cuts that connection, logs it, and the lane keeps accepting', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    }),
  });
  let calls = 0;
  const lane = createFastLane({
    proto: 'http',
    http: () => parseConfig({ domains: [domain], http: { listen: '127.0.0.1:0' } }).http!,
    resolver: () =>
      ({
        resolve() {
          calls++;
          throw new Error('boom');
        },
      }) as unknown as Resolver,
    enabled: () => true,
    handOff: (socket) => socket.end('HTTP/1.1 500 handed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n'),
    registry: { endpointFailed: () => undefined } as unknown as RegistryView,
    observer: new Observer(log, createMetrics()),
    passes: createResponsePasses([], log),
    log,
    clients: () => clientAddressesOf([]),
  });
  const server = createServer((socket) => lane.accept(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    lane.destroyAll();
    lane.close();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  for (let i = 0; i < 2; i++) {
    const out = await raw(port, `GET /master1/ HTTP/1.1\r\nHost: ${domain}\r\n\r\n`);
    t.equal(out, '', `connection ${i + 1}: cut without an answer`);
  }
  t.equal(calls, 2, 'the second connection was taken by the lane too');
  t.ok(await eventually(() => lines.filter((l) => l['msg'] === 'fast lane request failed').length === 2));
  t.match(lines.find((l) => l['msg'] === 'fast lane request failed'), { level: 50, err: { message: 'boom' } });
});

t.test('a client that leaves before the answer is logged as 499 and its upstream connection is closed, on both paths', async (t) => {
  // The backend reads the request and never answers.
  const b = await scripted(t, () => undefined);
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })]);
  const leave = async (request: string) => {
    const s = connect(r.port, '127.0.0.1');
    s.on('error', () => undefined);
    await new Promise((resolve) => s.once('connect', resolve));
    const seen = b.requests.length;
    s.write(request);
    t.ok(await eventually(() => b.requests.length === seen + 1), 'the backend got the request');
    s.destroy();
  };
  await leave(`GET /master1/lane HTTP/1.1\r\nHost: ${domain}\r\n\r\n`);
  await leave(`POST /master1/node HTTP/1.1\r\nHost: ${domain}\r\nContent-Length: 2\r\n\r\nhi`);
  t.ok(await eventually(() => r.accessLog().length === 2));
  t.match(r.accessLog(), [
    { path: '/master1/lane', status: 499, aborted: true },
    { path: '/master1/node', status: 499, aborted: true },
  ]);
  t.ok(await eventually(() => b.closed() === 2), 'both upstream connections are closed, not left to time out');
});

t.test('http.timeouts.keepAlive closes an idle client connection on both paths, not before', async (t) => {
  const b = await echo(t);
  // keepAlive above the header timeout: a request that comes late in the keep-alive wait still gets its answer.
  const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })], { http: { timeouts: { keepAlive: '1s', headers: '300ms' } } });
  // The lane closes after keepAlive; Node's server tells the client `timeout=1` and closes 1 s later than
  // that (its HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER), so that a client honouring the hint closes first.
  for (const [what, closesAfter, send] of [
    ['lane', 1000, (c: Client) => c.get('/master1/x')],
    ['node:http', 2000, (c: Client) => c.send(['POST /master1/x HTTP/1.1', `Host: ${domain}`, 'Content-Length: 1', '', 'y'].join('\r\n'))],
  ] as const) {
    const c = await Client.open(t, r.port);
    send(c);
    t.equal((await c.response()).status, 200, `${what}: first request`);
    await new Promise((resolve) => setTimeout(resolve, 700));
    send(c);
    const second = await c.response();
    t.equal(second.status, 200, `${what}: a request 700 ms into the wait is answered on the same connection`);
    if (what === 'node:http') t.equal(second.headers['keep-alive'], 'timeout=1', 'the keep-alive timeout is announced');
    const idle = Date.now();
    await new Promise((resolve) => c.socket.once('close', resolve));
    const after = Date.now() - idle;
    t.ok(after >= closesAfter - 100 && after < closesAfter + 900, `${what}: closed ${after} ms after the last answer (expected ~${closesAfter})`);
  }
  t.throws(() => parseConfig({ domains: [domain], http: { timeouts: { keepAlive: '500ms' } } }), /http\.timeouts\.keepAlive: must be at least 1s/);
});

t.test('http.trustedProxies: behind a trusted balancer the access log names the client X-Forwarded-For gives, on both paths', async (t) => {
  const b = await echo(t);
  for (const fastLane of [true, false]) {
    const r = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })], { http: { fastLane, trustedProxies: ['127.0.0.1', '10.0.0.0/8'] } });
    const untrusted = await startRouter(t, [masterRoute('master1', { http: [b.endpoint] })], { http: { fastLane } });
    // A client's own entry first (spoofable), then what two trusted hops added.
    const xff = { 'x-forwarded-for': '6.6.6.6, 203.0.113.7, 10.1.2.3' };
    t.equal((await ask(r.port, '/master1/a', { headers: xff })).status, 200);
    await ask(r.port, '/master1/b');
    await ask(untrusted.port, '/master1/a', { headers: xff });
    const lane = fastLane ? 'lane' : 'node';
    t.same(r.accessLog().map((l) => l['client']), ['203.0.113.7', '127.0.0.1'], `${lane}: the first untrusted hop from the right; no header, the peer`);
    t.same(untrusted.accessLog().map((l) => l['client']), ['127.0.0.1'], `${lane}: without trustedProxies the header is not believed`);
  }
});
