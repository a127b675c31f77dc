import { Agent, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Readable } from 'node:stream';
import httpProxy from 'http-proxy';
import type { HttpConfig } from '../config/types.js';
import type { ErrorCode } from '../errors.js';
import type { HttpExtension } from '../extension.js';
import type { Logger } from '../log.js';
import type { Endpoint, RegistryView } from '../registry/types.js';
import { forwardInfo, prepareRequestHeaders } from './headers.js';
import { createResponsePasses } from './response-passes.js';
import { endpointFailed, pickEndpoint, type Resolution, type Target } from './resolve.js';

/**
 * The only module that knows http-proxy (STYLE.md §9): swapping it for http-proxy-3 is this one file.
 * http-proxy does the request piping and the WebSocket handshake; this module adds what it lacks: keep-alive
 * pools, timeouts that tell 504 from 502, one retry on a refused connection, the cleanup of both sockets
 * whichever side goes first (http-party/node-http-proxy#1510), and our own response-header passes.
 */

export type UpstreamProblem = Extract<ErrorCode, 'E_UPSTREAM_REFUSED' | 'E_UPSTREAM_RESET' | 'E_UPSTREAM_TIMEOUT'>;

/** Upstream errno → catalogue code, in one place (the status comes from pages/status.ts). */
export function upstreamProblem(err: NodeJS.ErrnoException, timedOut: boolean): UpstreamProblem {
  if (timedOut) return 'E_UPSTREAM_TIMEOUT';
  switch (err.code) {
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EADDRNOTAVAIL':
      return 'E_UPSTREAM_REFUSED';
    case 'ETIMEDOUT':
      return 'E_UPSTREAM_TIMEOUT';
    default:
      return 'E_UPSTREAM_RESET';
  }
}

/** A connection that failed before the backend saw the request can go to another endpoint. */
const retryable = new Set(['ECONNREFUSED', 'ECONNRESET']);

/**
 * Where the one retry of a failed attempt goes, for both HTTP paths (the caller has checked it is the first
 * failure, before any answer and not a timeout): only bodyless requests, only on a refused or reset connection,
 * to another endpoint, or to the same one after a reset (a pooled connection the backend had just closed).
 */
export function retryEndpoint(job: Job, failed: Endpoint, errno: string): Endpoint | undefined {
  if (!job.bodyless || !retryable.has(errno) || (job.target.endpoints.length < 2 && errno !== 'ECONNRESET')) return undefined;
  return pickEndpoint(job.target, failed);
}

/** One proxied request (or WebSocket) as the server tracks it; the proxy fills in what happened. */
export interface Job {
  /** The request id: the access log's `id`, `X-Request-Id` to the backend and back to the client. */
  readonly id: string;
  /**
   * Who sent it (client-address.ts), read once from the request as it arrived: for the access log and the
   * response passes' extensions (the JNLP discovery log).
   */
  readonly client: string;
  readonly target: Target;
  readonly upstreamPath: string;
  readonly pathRouted: boolean;
  readonly publicHost: string;
  readonly proto: 'http' | 'https';
  endpoint: Endpoint | undefined;
  /** Response body bytes sent to the client. */
  bytes: number;
  /** No Content-Length and no Transfer-Encoding: nothing to stream up (RFC 9112 §6.3). */
  bodyless: boolean;
}

/** A new job for a resolved request. */
export function newJob(id: string, client: string, r: Extract<Resolution, { kind: 'proxy' }>, proto: 'http' | 'https', bodyless: boolean): Job {
  return { id, client, target: r.target, upstreamPath: r.upstreamPath, pathRouted: r.pathRouted, publicHost: r.publicHost, proto, endpoint: undefined, bytes: 0, bodyless };
}

/** Stands in for the request stream of a bodyless request: `pipe` just ends the upstream request. */
const endAtOnce = { pipe: (dest: ClientRequest) => dest.end() } as unknown as Readable;

export interface ProxyDeps {
  readonly http: HttpConfig;
  readonly registry: RegistryView;
  readonly log: Logger;
  readonly extensions: readonly HttpExtension[];
  /** Answer a request the upstream failed before any response byte was sent (the server renders the page). */
  readonly onProblem: (req: IncomingMessage, res: ServerResponse, job: Job, code: UpstreamProblem) => void;
  /** Same for a WebSocket handshake: write a raw HTTP answer on the socket. */
  readonly onWsProblem: (socket: Duplex, job: Job, code: UpstreamProblem) => void;
  readonly onWebSocket: (delta: 1 | -1) => void;
}

interface Attempt {
  readonly job: Job;
  readonly endpoint: Endpoint;
  readonly retried: boolean;
  proxyReq: ClientRequest | null;
  timedOut: boolean;
  responded: boolean;
  failed: boolean;
}

const kAttempt = Symbol('ciEdgeAttempt');
type Tracked = ServerResponse & { [kAttempt]?: Attempt };

export interface Proxy {
  web(req: IncomingMessage, res: ServerResponse, job: Job): void;
  ws(req: IncomingMessage, socket: Duplex, head: Buffer, job: Job): void;
  close(): void;
}

export function createProxy(d: ProxyDeps): Proxy {
  const t = d.http.timeouts;
  const agent = new Agent({
    keepAlive: true,
    maxFreeSockets: d.http.keepAliveSockets,
    scheduling: 'lifo',
    // Shorter than the 5 s keep-alive of Node backends and Jetty's 30 s, so an idle pooled socket is dropped by
    // us before the backend closes it under a request (the classic ECONNRESET of reused sockets). Node also
    // honours a shorter `Keep-Alive: timeout=` hint from the backend.
    timeout: Math.min(t.idle, 4_000),
  });
  const proxy = httpProxy.createProxyServer({ xfwd: false, prependPath: false, selfHandleResponse: true });
  // http-proxy's deleteLength pass turns `DELETE` + `Transfer-Encoding: chunked` into `Content-Length: 0` and
  // still pipes the body: the body becomes a second request on the pooled socket (request smuggling).
  const internals = proxy as unknown as { webPasses: { name: string }[] };
  internals.webPasses = internals.webPasses.filter((p) => p.name !== 'deleteLength');
  const log = d.log;
  const passes = createResponsePasses(d.extensions, log);

  proxy.on('error', (err) => log.debug({ err: err.message }, 'proxy error without handler'));

  proxy.on('proxyReq', (proxyReq, _req, res) => {
    const a = (res as Tracked)[kAttempt];
    if (!a) return;
    a.proxyReq = proxyReq;
    if (res.destroyed) {
      proxyReq.destroy();
      return;
    }
    armTimeouts(proxyReq, a);
  });

  function armTimeouts(proxyReq: ClientRequest, a: Attempt) {
    proxyReq.on('timeout', () => {
      a.timedOut = true;
      proxyReq.destroy();
    });
    const socket = proxyReq.socket;
    if (socket?.connecting) {
      proxyReq.setTimeout(t.connect);
      socket.once('connect', () => {
        if (!a.responded) proxyReq.setTimeout(t.upstream);
      });
    } else {
      proxyReq.setTimeout(t.upstream);
    }
  }

  proxy.on('proxyRes', (proxyRes, req, res) => {
    const a = (res as Tracked)[kAttempt];
    if (!a) return;
    a.responded = true;
    a.proxyReq?.setTimeout(t.idle);
    const job = a.job;
    const status = proxyRes.statusCode ?? 502;
    const headers = passes(proxyRes.headers, { job, endpoint: a.endpoint, status, requestHeaders: req.headers, upgrade: false });
    try {
      res.writeHead(status, proxyRes.statusMessage, headers);
    } catch (err) {
      log.warn({ route: job.target.route.name, err: (err as Error).message }, 'invalid upstream response headers');
      proxyRes.destroy();
      a.failed = true;
      d.onProblem(req, res, job, 'E_UPSTREAM_RESET');
      return;
    }
    const length = proxyRes.headers['content-length'];
    if (length !== undefined && req.method !== 'HEAD' && status !== 304) job.bytes = Number(length);
    else
      proxyRes.on('data', (chunk: Buffer) => {
        job.bytes += chunk.length;
      });
    proxyRes.once('close', () => {
      // The backend died mid-body: cut the client too, so it sees a truncated response, not a complete one.
      if (!proxyRes.complete) res.destroy();
    });
    proxyRes.pipe(res);
  });

  function attempt(req: IncomingMessage, res: ServerResponse, job: Job, endpoint: Endpoint, retried: boolean) {
    const a: Attempt = { job, endpoint, retried, proxyReq: null, timedOut: false, responded: false, failed: false };
    (res as Tracked)[kAttempt] = a;
    job.endpoint = endpoint;
    const service = job.target.route.kind === 'service';
    const options = {
      target: { protocol: 'http:', host: endpoint.host, port: endpoint.port },
      agent,
      changeOrigin: service,
      // http-proxy pipes `buffer ?? req` into the upstream request. A bodyless request (most of them) is ended
      // at once instead: the stream pipe costs about a quarter of the proxy's throughput (bench/http.ts). It
      // also makes a retry possible, as the request stream has ended by then (only bodyless ones are retried).
      ...(job.bodyless ? { buffer: endAtOnce } : {}),
    };
    proxy.web(req, res, options, (err) => onWebError(req, res, a, err as NodeJS.ErrnoException));
  }

  function onWebError(req: IncomingMessage, res: ServerResponse, a: Attempt, err: NodeJS.ErrnoException) {
    if (a.failed) return;
    a.failed = true;
    const job = a.job;
    const code = upstreamProblem(err, a.timedOut);
    if (code === 'E_UPSTREAM_REFUSED' || (a.timedOut && !a.responded)) endpointFailed(d.registry, job.target, a.endpoint, d.http.failTimeout);
    if (res.headersSent || res.destroyed || req.socket.destroyed) {
      res.destroy();
      return;
    }
    const next = !a.retried && !a.responded && !a.timedOut ? retryEndpoint(job, a.endpoint, err.code ?? '') : undefined;
    if (next) {
      log.debug({ route: job.target.route.name, endpoint: `${a.endpoint.host}:${a.endpoint.port}`, err: err.code }, 'retrying on another endpoint');
      attempt(req, res, job, next, true);
      return;
    }
    d.onProblem(req, res, job, code);
  }

  return {
    web(req, res, job) {
      const endpoint = pickEndpoint(job.target)!;
      prepareRequestHeaders(req.headers, req.method ?? '', req.socket, forwardInfo(job), false);
      req.url = job.upstreamPath;
      res.once('close', () => {
        // Client gone before the end (aborted download): free the upstream socket now, not at its timeout.
        // http-proxy only listens for `aborted`, which Node ≥ 16 does not emit once the request body is read.
        if (!res.writableFinished) (res as Tracked)[kAttempt]?.proxyReq?.destroy();
      });
      attempt(req, res, job, endpoint, false);
    },

    ws(req, socket, head, job) {
      const endpoint = pickEndpoint(job.target)!;
      job.endpoint = endpoint;
      const route = job.target.route;
      prepareRequestHeaders(req.headers, req.method ?? '', req.socket, forwardInfo(job), true);
      req.url = job.upstreamPath;
      let upgraded = false;
      let failed = false;
      let proxyReq: ClientRequest | null = null;
      socket.on('error', () => socket.destroy());
      socket.once('close', () => {
        if (!upgraded) proxyReq?.destroy();
      });
      const options = {
        target: { protocol: 'http:', host: endpoint.host, port: endpoint.port },
        agent: false as const,
        changeOrigin: route.kind === 'service',
      };
      const onReqWs = (pr: ClientRequest, r: IncomingMessage) => {
        if (r !== req) return;
        proxy.off('proxyReqWs', onReqWs);
        proxyReq = pr;
        if (socket.destroyed) return void pr.destroy();
        let timedOut = false;
        pr.setTimeout(t.upstream, () => {
          timedOut = true;
          pr.destroy();
        });
        // Registered before http-proxy's own `upgrade` listener, so these run first: the 101's headers are
        // adjusted before http-proxy writes them, and both sockets are tied together for cleanup.
        pr.on('upgrade', (proxyRes: IncomingMessage, proxySocket: Duplex) => {
          upgraded = true;
          pr.setTimeout(0);
          const headers = passes(proxyRes.headers, { job, endpoint, status: 101, requestHeaders: req.headers, upgrade: true });
          for (const k of Object.keys(proxyRes.headers)) delete proxyRes.headers[k];
          Object.assign(proxyRes.headers, headers);
          d.onWebSocket(1);
          let open = true;
          const closeBoth = () => {
            if (open) {
              open = false;
              d.onWebSocket(-1);
              // Counted at the end, not with a 'data' listener: one added here would run before http-proxy
              // pipes the socket and swallow the frame a master sends right after the 101 (it unshifts it).
              job.bytes += (proxySocket as Duplex & { bytesRead?: number }).bytesRead ?? 0;
            }
            socket.destroy();
            proxySocket.destroy();
          };
          socket.once('close', closeBoth);
          proxySocket.once('close', closeBoth);
        });
        pr.once('error', (err: NodeJS.ErrnoException) => {
          if (failed) return;
          failed = true;
          const code = upstreamProblem(err, timedOut);
          if (code === 'E_UPSTREAM_REFUSED' || timedOut) endpointFailed(d.registry, job.target, endpoint, d.http.failTimeout);
          if (!upgraded && !socket.destroyed) d.onWsProblem(socket, job, code);
          socket.destroy();
        });
      };
      proxy.on('proxyReqWs', onReqWs);
      // The callback makes http-proxy skip its own error event; the `error` listener above answers.
      proxy.ws(req, socket, head, options, () => undefined);
      proxy.off('proxyReqWs', onReqWs);
    },

    close() {
      agent.destroy();
      proxy.close();
    },
  };
}
