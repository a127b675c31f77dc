import type { Socket } from 'node:net';
import type { ClientAddresses } from '../client-address.js';
import type { HttpConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Endpoint, RegistryView } from '../registry/types.js';
import { forwardInfo, prepareRequestHeaders } from './headers.js';
import type { Observer } from './observe.js';
import { errorPage, wantsJson } from './pages/pages.js';
import { writeRawPage } from './pages/send.js';
import { newJob, retryEndpoint, upstreamProblem, type Job, type UpstreamProblem } from './proxy.js';
import type { ResponsePasses } from './response-passes.js';
import { endpointFailed, pathOnly, pickEndpoint, type Resolver } from './resolve.js';
import type { Upstream} from './upstream-pool.js';
import { UpstreamPool, type UpstreamOwner } from './upstream-pool.js';
import { ChunkedTracker, HEAD_END, parseRequestHead, parseResponseHead, serializeHead, type RequestHead, type ResponseHead } from './wire.js';

/**
 * The fast lane of the plain HTTP listener (issue #3, req/s goal). Node's http server plus http-proxy cost
 * about three quarters of the proxy's CPU on a small response (bench/http.ts: the bare node:http proxy
 * reaches 0.31 of nginx, a plain TCP relay 0.97). Most requests through a Jenkins edge are bodyless GETs,
 * so those are relayed here on raw sockets: the request head parsed once, forwarded with the same header
 * passes, the response head parsed and rewritten, the body passed through untouched while its end is found.
 *
 * Anything else is handed, with the bytes already read, to the node:http server that would have got the
 * connection anyway: bodies, upgrades, HTTP/1.0, odd or oversized heads, heads split over several reads,
 * pipelining, requests ci-edge answers itself (`/_ci-edge/`, index, redirects, error pages). So every
 * parser rejection and feature the http-proxy path has stays there, and this lane only has to be right for
 * the common case — and say "not mine" for everything else.
 */

/** Paths the extensions answer themselves (the JNLP discovery API): always Node's. */
const OWN_PREFIX = '/_ci-edge/';
/** An upstream response head larger than this is refused (Node's client default is 16 KiB). */
const MAX_RESPONSE_HEAD = 64 * 1024;

export interface FastLaneDeps {
  /** What clients reach this listener with (`X-Forwarded-Proto`; the HTTPS lane reads decrypted TLS sockets). */
  readonly proto: 'http' | 'https';
  /** The current configuration and route table (both replaced by a reload). */
  http(): HttpConfig;
  resolver(): Resolver;
  /** Whether this listener takes requests in the lane at all (off while redirecting HTTP to HTTPS). */
  enabled(): boolean;
  /** Gives the connection to the node:http server (what was read and not answered is unshifted back first). */
  handOff(socket: Socket): void;
  readonly registry: RegistryView;
  readonly observer: Observer;
  readonly passes: ResponsePasses;
  readonly log: Logger;
  /** Who a request is from (`http.trustedProxies`), read as it arrives into its Job. */
  clients(): ClientAddresses;
}

export interface FastLane {
  accept(socket: Socket): void;
  reconfigure(): void;
  /** Stops keep-alive: idle connections close now, busy ones after their response. */
  drain(): void;
  /** Cuts every connection still in the lane (the shutdown deadline). */
  destroyAll(): void;
  close(): void;
}

export function createFastLane(d: FastLaneDeps): FastLane {
  const poolOptions = () => ({ maxIdle: d.http().keepAliveSockets, idleTimeout: Math.min(d.http().timeouts.idle, 4_000) });
  const pool = new UpstreamPool(poolOptions());
  const conns = new Set<ClientConn>();
  const lane: Lane = { d, pool, conns, draining: false };
  return {
    accept(socket) {
      const conn = new ClientConn(socket, lane);
      conns.add(conn);
    },
    reconfigure() {
      pool.reconfigure(poolOptions());
    },
    drain() {
      lane.draining = true;
      // Between two requests a keep-alive connection may be closed (clients expect that); one accepted just
      // now may carry a request on its way, which gets its answer with `connection: close`.
      for (const c of [...conns]) if (c.exchange === null && c.served > 0) c.socket.destroy();
    },
    destroyAll() {
      for (const c of [...conns]) c.socket.destroy();
    },
    close() {
      pool.close();
    },
  };
}

interface Lane {
  readonly d: FastLaneDeps;
  readonly pool: UpstreamPool;
  readonly conns: Set<ClientConn>;
  draining: boolean;
}

/** The socket events a lane connection listens to, and its handler for each: all taken off at a hand-off. */
const connEvents = [
  ['data', 'onData'],
  ['end', 'onEnd'],
  ['error', 'onError'],
  ['timeout', 'onTimeout'],
  ['close', 'onClose'],
  ['drain', 'onDrain'],
] as const;

/** A client connection while the lane has it: between requests, or with one exchange in flight. */
class ClientConn {
  exchange: Exchange | null = null;
  /** Exchanges finished on this connection. */
  served = 0;
  /** The last response went out with `connection: close`; anything the client still sends is ignored. */
  private ending = false;
  /** Bytes the client sent while a response was in flight (pipelining): Node's once the response is done. */
  private unread: Buffer | null = null;
  private readonly onData = (chunk: Buffer) => {
    try {
      this.data(chunk);
    } catch (err) {
      // A bug here must cost one connection, never the process (issue #3: "the process never throws").
      this.lane.d.log.error({ err }, 'fast lane request failed');
      this.exchange?.crashed();
      this.socket.destroy();
    }
  };
  private readonly onEnd = () => this.socket.destroy();
  private readonly onError = () => this.socket.destroy();
  private readonly onTimeout = () => this.socket.destroy();
  private readonly onClose = () => this.closed();
  private readonly onDrain = () => this.exchange?.clientDrained();
  /** Read at accept: a socket the client already reset has no peer address left when its request is logged. */
  readonly peer: string | undefined;

  constructor(
    readonly socket: Socket,
    private readonly lane: Lane,
  ) {
    this.peer = socket.remoteAddress;
    socket.setNoDelay(true);
    socket.setTimeout(lane.d.http().timeouts.keepAlive);
    for (const [event, key] of connEvents) socket.on(event, this[key]);
  }

  private data(chunk: Buffer): void {
    if (this.ending) return;
    if (this.exchange !== null) {
      // Held until the response is done, then Node parses it; reading stops meanwhile (TCP backpressure).
      this.unread = this.unread ? Buffer.concat([this.unread, chunk]) : chunk;
      this.socket.pause();
      return;
    }
    const d = this.lane.d;
    const end = chunk.indexOf(HEAD_END);
    // Exactly one complete head in this read, within the size limit: otherwise Node's parser takes over.
    if (end === -1 || end + 4 !== chunk.length || end > d.http().maxHeaderSize || !d.enabled()) return this.handOff(chunk);
    const head = parseRequestHead(chunk.toString('latin1', 0, end));
    if (head === null || head.url.startsWith(OWN_PREFIX)) return this.handOff(chunk);
    const r = d.resolver().resolve(head.headers.host, head.url);
    if (r.kind !== 'proxy' || r.target.endpoints.length === 0) return this.handOff(chunk);
    this.socket.setTimeout(d.http().timeouts.idle);
    // The client is read before the Exchange prepares the headers for the backend (X-Forwarded-For grows).
    const client = d.clients().of(this.peer, head.headers['x-forwarded-for']);
    this.exchange = new Exchange(this, this.lane, head, newJob(d.observer.nextId(), client, r, d.proto, true));
    this.exchange.start();
  }

  private handOff(unread: Buffer | null): void {
    this.detach();
    if (unread !== null) this.socket.unshift(unread);
    this.lane.d.handOff(this.socket);
    if (this.socket.isPaused()) this.socket.resume();
  }

  private detach(): void {
    const s = this.socket;
    for (const [event, key] of connEvents) s.off(event, this[key]);
    s.setTimeout(0);
    this.lane.conns.delete(this);
  }

  /** The exchange is over and the client may send the next request. */
  next(close: boolean): void {
    this.exchange = null;
    this.served++;
    if (close || this.lane.draining) {
      this.ending = true;
      this.socket.end();
      return;
    }
    if (this.unread !== null) {
      const unread = this.unread;
      this.unread = null;
      this.handOff(unread);
      return;
    }
    this.socket.setTimeout(this.lane.d.http().timeouts.keepAlive);
  }

  private closed(): void {
    this.lane.conns.delete(this);
    this.exchange?.clientGone();
  }
}

const enum Phase {
  /** Request written (or queued while connecting), no response byte yet. */
  Waiting,
  /** Response head sent to the client; body streaming. */
  Body,
  Done,
}

/** One request relayed in the lane: endpoint choice, one retry, the response relayed and its end found. */
class Exchange implements UpstreamOwner {
  private readonly started = performance.now();
  private readonly path: string;
  private up: Upstream | null = null;
  private endpoint: Endpoint | undefined;
  private phase = Phase.Waiting;
  private retried = false;
  private timedOut = false;
  /** Partial response head across reads. */
  private pending: Buffer | null = null;
  private res: ResponseHead | null = null;
  private remaining = 0;
  private chunked: ChunkedTracker | null = null;
  private status = 0;
  private aborted = false;

  constructor(
    private readonly conn: ClientConn,
    private readonly lane: Lane,
    private readonly head: RequestHead,
    private readonly job: Job,
  ) {
    this.path = pathOnly(head.url);
    prepareRequestHeaders(head.headers, head.method, conn.socket, forwardInfo(job), false);
  }

  start(): void {
    this.send(pickEndpoint(this.job.target)!);
  }

  private send(endpoint: Endpoint): void {
    const d = this.lane.d;
    const t = d.http().timeouts;
    this.endpoint = endpoint;
    this.job.endpoint = endpoint;
    const h = this.head.headers;
    // Services get their own address as Host (they build no public URLs); masters keep the client's.
    if (this.job.target.route.kind === 'service') h.host = endpoint.port === 80 ? endpoint.host : `${endpoint.host}:${endpoint.port}`;
    // Said explicitly, as Node's agent does: some HTTP/1.1 backends close without it.
    h.connection = 'keep-alive';
    const up = this.lane.pool.acquire(endpoint, this, t.connect);
    this.up = up;
    if (up.socket.connecting) up.socket.once('connect', () => up.owner === this && up.socket.setTimeout(t.upstream));
    else up.socket.setTimeout(t.upstream);
    up.socket.write(serializeHead(`${this.head.method} ${this.job.upstreamPath} HTTP/1.1`, h));
  }

  onUpstreamData(chunk: Buffer): void {
    try {
      this.upstreamData(chunk);
    } catch (err) {
      this.lane.d.log.error({ err, id: this.job.id, route: this.job.target.route.name }, 'fast lane response failed');
      this.crashed();
    }
  }

  /** Both connections cut after an unexpected error (a bug): the client sees a cut, not a wrong answer. */
  crashed(): void {
    this.abort();
    this.conn.socket.destroy();
  }

  private upstreamData(chunk: Buffer): void {
    if (this.phase === Phase.Body) return this.body(chunk, 0);
    if (this.phase !== Phase.Waiting) return;
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      const end = buf.indexOf(HEAD_END);
      if (end === -1) {
        if (buf.length > MAX_RESPONSE_HEAD) return this.badResponse('response head too large');
        this.pending = buf;
        return;
      }
      this.pending = null;
      let res: ResponseHead;
      try {
        res = parseResponseHead(buf.toString('latin1', 0, end), this.head.method === 'HEAD');
      } catch (err) {
        return this.badResponse((err as Error).message);
      }
      if (res.status === 101) return this.badResponse('101 without an upgrade request');
      if (res.status >= 200) return this.respond(res, buf, end + 4);
      // 1xx (103 Early Hints): relayed as they are, the final response follows.
      this.conn.socket.write(buf.subarray(0, end + 4));
      buf = buf.subarray(end + 4);
      if (buf.length === 0) return;
    }
  }

  private respond(res: ResponseHead, buf: Buffer, bodyStart: number): void {
    const d = this.lane.d;
    const up = this.up!;
    this.res = res;
    this.status = res.status;
    this.phase = Phase.Body;
    const t = d.http().timeouts;
    // From here the body may pause for up to the idle timeout (the same value by default: no timer churn then).
    if (t.idle !== t.upstream) up.socket.setTimeout(t.idle);
    const headers = d.passes(res.headers, {
      job: this.job,
      endpoint: this.endpoint!,
      status: res.status,
      requestHeaders: this.head.headers,
      upgrade: false,
    });
    if (res.framing === 'chunked') headers['transfer-encoding'] = 'chunked';
    if (res.framing === 'close' || this.head.close || this.lane.draining) headers['connection'] = 'close';
    if (res.framing === 'length') {
      this.remaining = res.length;
      this.job.bytes = res.length;
    } else if (res.framing === 'chunked') {
      this.chunked = new ChunkedTracker();
    }
    const head = serializeHead(`HTTP/1.1 ${res.status} ${res.reason}`, headers);
    const rest = buf.length - bodyStart;
    if (res.framing === 'none' || rest === 0) {
      this.conn.socket.write(head);
      if (res.framing === 'none' || (res.framing === 'length' && res.length === 0)) this.done(rest === 0);
      return;
    }
    this.body(buf, bodyStart, head);
  }

  /**
   * Relays body bytes from `start` (after `head`, the response head, on the first read); finishes the
   * exchange where the body ends.
   */
  private body(buf: Buffer, start: number, head?: Buffer): void {
    const res = this.res!;
    let end = buf.length;
    let complete = false;
    try {
      if (res.framing === 'length') {
        const n = end - start;
        if (n >= this.remaining) {
          end = start + this.remaining;
          complete = true;
        }
        this.remaining -= Math.min(n, this.remaining);
      } else if (res.framing === 'chunked') {
        const at = this.chunked!.feed(buf, start);
        if (at !== -1) {
          end = at;
          complete = true;
        }
        this.job.bytes = this.chunked!.payload;
      } else {
        this.job.bytes += end - start;
      }
    } catch (err) {
      const reason = (err as Error).message;
      // Nothing sent yet (head and broken body in one read): a 502 page, as for a broken head.
      if (head) return this.badResponse(reason);
      // Otherwise the client must see a cut connection, not a complete response.
      this.lane.d.log.warn({ id: this.job.id, route: this.job.target.route.name, err: reason }, 'invalid upstream response body');
      return this.abort();
    }
    const part = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
    // One write for head and first body bytes: a small response is one syscall (cork + writev cost more).
    const out = head ? Buffer.concat([head, part]) : part;
    if (out.length > 0 && !this.conn.socket.write(out)) this.up?.socket.pause();
    // Bytes past the body's end mean the backend is out of step: answer done, but never reuse it.
    if (complete) this.done(end === buf.length);
  }

  clientDrained(): void {
    this.up?.socket.resume();
  }

  onUpstreamEnd(): void {
    if (this.phase === Phase.Body && this.res?.framing === 'close') return this.done(false);
    this.onUpstreamError(Object.assign(new Error('upstream closed the connection'), { code: 'ECONNRESET' }));
  }

  onUpstreamTimeout(): void {
    this.timedOut = true;
    this.onUpstreamError(Object.assign(new Error('upstream timeout'), { code: 'ETIMEDOUT' }));
  }

  onUpstreamError(err: NodeJS.ErrnoException): void {
    if (this.phase === Phase.Done) return;
    if (this.phase === Phase.Body) return this.abort();
    this.failed(upstreamProblem(err, this.timedOut), err.code ?? '');
  }

  /** Nothing reached the client yet: retry once on a refused or reset connection, else an error page. */
  private failed(code: UpstreamProblem, errno: string): void {
    const d = this.lane.d;
    const target = this.job.target;
    const endpoint = this.endpoint!;
    this.up?.release(false);
    this.up = null;
    this.pending = null;
    if (code === 'E_UPSTREAM_REFUSED' || this.timedOut) endpointFailed(d.registry, target, endpoint, d.http().failTimeout);
    const next = !this.retried && !this.timedOut ? retryEndpoint(this.job, endpoint, errno) : undefined;
    if (next) {
      this.retried = true;
      d.log.debug({ id: this.job.id, route: target.route.name, endpoint: `${endpoint.host}:${endpoint.port}`, err: errno }, 'retrying on another endpoint');
      return this.send(next);
    }
    const page = errorPage({ code, name: target.route.name }, wantsJson(this.head.headers.accept as string | undefined));
    this.status = page.status;
    this.phase = Phase.Done;
    this.log();
    this.conn.exchange = null;
    writeRawPage(this.conn.socket, page, this.head.method === 'HEAD', this.job.id);
  }

  private badResponse(reason: string): void {
    this.lane.d.log.warn({ id: this.job.id, route: this.job.target.route.name, err: reason }, 'invalid upstream response');
    this.failed('E_UPSTREAM_RESET', 'EPROTO');
  }

  /** Mid-response failure on either side: both connections are cut, the client sees a truncated response. */
  private abort(): void {
    if (this.phase === Phase.Done) return;
    this.phase = Phase.Done;
    this.aborted = true;
    this.up?.release(false);
    this.up = null;
    this.log();
    this.conn.socket.destroy();
  }

  clientGone(): void {
    if (this.phase === Phase.Done) return;
    if (this.status === 0) this.status = 499;
    this.abort();
  }

  private done(reusable: boolean): void {
    this.phase = Phase.Done;
    const res = this.res!;
    this.up?.release(reusable && res.keepAlive);
    this.up = null;
    this.log();
    this.conn.next(res.framing === 'close' || this.head.close);
  }

  private log(): void {
    this.lane.d.observer.finish(this.job.target, this.endpoint, this.started, {
      id: this.job.id,
      client: this.job.client,
      method: this.head.method,
      path: this.path,
      status: this.status,
      bytes: this.job.bytes,
      aborted: this.aborted,
    });
  }
}
