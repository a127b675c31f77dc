import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContext, type Server as TlsServer } from 'node:tls';
import type { Duplex } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import { clientAddressesOf } from '../client-address.js';
import type { Config, HttpConfig } from '../config/types.js';
import { closeServer, listen, type Closable } from '../net.js';
import type { Deps, FrontDoor } from '../service.js';
import { createFastLane, type FastLane } from './fast-lane.js';
import { hasRequestBody } from './headers.js';
import { Observer } from './observe.js';
import { errorPage, indexPage, wantsJson, type Problem } from './pages/pages.js';
import { redirect, sendPage, writeRawPage } from './pages/send.js';
import { createProxy, newJob, type Job, type Proxy } from './proxy.js';
import { pathOnly, portOf, Resolver, type Target } from './resolve.js';
import { createResponsePasses } from './response-passes.js';
import { loadSniContexts, type SniContexts } from './tls.js';

/**
 * The HTTP front door (issue #3): an HTTP listener, an optional HTTPS listener with SNI, optional redirect of
 * HTTP to HTTPS. Each request runs the extensions' `handleRequest`, is resolved against the prebuilt table,
 * and is proxied or answered with a page.
 */
export function createHttpRouter(config: Config, deps: Deps): FrontDoor {
  // Replaced by reconfigure(): handlers read these at request time.
  let http = config.http!;
  let clients = clientAddressesOf(http.trustedProxies);
  let sni: SniContexts | null = null;
  const log = deps.log.child({ component: 'http' });
  const observer = new Observer(log, deps.metrics);
  /** `listener` is what listens: the server itself, or the fast lane's TCP server in front of it. */
  const servers: { name: string; server: Server; listener: TcpServer; lane: FastLane | null }[] = [];
  let closing = false;
  const webSockets = new Set<Duplex>();
  let resolver: Resolver | null = null;
  let proxy: Proxy | null = null;
  /** The bound HTTPS port (the configured one, or the one the OS chose for port 0). */
  let httpsPort = 0;

  const answer = (req: IncomingMessage, res: ServerResponse, problem: Problem) => {
    sendPage(res, errorPage(problem, wantsJson(req.headers.accept)), req.method === 'HEAD');
  };

  function track(req: IncomingMessage, res: ServerResponse, started: number, id: string, client: string, path: string, job: { target?: Target; job?: Job }) {
    res.once('close', () => {
      const j = job.job;
      observer.finish(job.target, j?.endpoint, started, {
        id,
        client,
        method: req.method ?? '',
        path,
        // Gone before any answer: nginx's 499, not the 200 Node's response object starts with.
        status: res.headersSent ? res.statusCode : 499,
        bytes: j ? j.bytes : req.method === 'HEAD' ? 0 : Number(res.getHeader('content-length') ?? 0),
        aborted: !res.writableFinished,
      });
    });
  }

  function onRequest(req: IncomingMessage, res: ServerResponse) {
    const started = performance.now();
    const url = req.url ?? '/';
    const path = pathOnly(url);
    const tracked: { target?: Target; job?: Job } = {};
    const id = observer.nextId();
    // Now, while the socket still has its peer address and before the headers are prepared for the backend.
    const client = clients.of(req.socket.remoteAddress, req.headers['x-forwarded-for']);
    track(req, res, started, id, client, path, tracked);
    // On every answer, pages and redirects included: what a user quotes to find the access-log line.
    res.setHeader('x-request-id', id);
    // Shutting down: this response is the connection's last, so it closes instead of idling to the deadline.
    if (closing) res.shouldKeepAlive = false;
    try {
      for (const ext of deps.httpExtensions) if (ext.handleRequest?.(req, res)) return;
      const encrypted = (req.socket as Socket & { encrypted?: boolean }).encrypted === true;
      if (http.redirectToHttps && !encrypted && http.https && url.charCodeAt(0) === 47 && resolver!.isOurHost(req.headers.host)) {
        const port = httpsPort === 443 ? '' : `:${httpsPort}`;
        // 308 keeps the method and body of non-GET requests (RFC 9110 §15.4.9); browsers get the classic 301.
        const status = req.method === 'GET' || req.method === 'HEAD' ? 301 : 308;
        return redirect(res, status, `https://${resolver!.hostOf(req.headers.host)}${port}${url}`);
      }
      const r = resolver!.resolve(req.headers.host, url);
      switch (r.kind) {
        case 'problem':
          tracked.target = r.target;
          return answer(req, res, r.problem);
        case 'redirect':
          return redirect(res, 301, r.location);
        case 'index': {
          const page = indexPage(resolver!.current().index(), r.domain, portOf(req.headers.host ?? ''), wantsJson(req.headers.accept));
          return sendPage(res, page, req.method === 'HEAD');
        }
        case 'proxy': {
          tracked.target = r.target;
          if (r.target.endpoints.length === 0) return answer(req, res, { code: 'E_NO_HEALTHY_ENDPOINT', route: r.target.route });
          const job = newJob(id, client, r, encrypted ? 'https' : 'http', !hasRequestBody(req.headers));
          tracked.job = job;
          return proxy!.web(req, res, job);
        }
      }
    } catch (err) {
      // A bug here must cost one request, never the process (issue #3: "the process never throws").
      log.error({ err, path }, 'request handler failed');
      if (!res.headersSent) answer(req, res, { code: 'E_BAD_REQUEST', reason: 'internal error' });
      else res.destroy();
    }
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
    const started = performance.now();
    const id = observer.nextId();
    socket.on('error', () => socket.destroy());
    const json = wantsJson(req.headers.accept);
    let target: Target | undefined;
    let job: Job | undefined;
    let status = 101;
    const url = req.url ?? '/';
    const client = clients.of(req.socket.remoteAddress, req.headers['x-forwarded-for']);
    socket.once('close', () => {
      webSockets.delete(socket);
      observer.finish(target, job?.endpoint, started, {
        id,
        client,
        method: req.method ?? '',
        path: pathOnly(url),
        status,
        bytes: job?.bytes ?? 0,
        aborted: false,
        websocket: true,
      });
    });
    const fail = (problem: Problem) => {
      const page = errorPage(problem, json);
      status = page.status;
      writeRawPage(socket, page, false, id);
    };
    try {
      if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || req.method !== 'GET') {
        return fail({ code: 'E_BAD_REQUEST', reason: 'only WebSocket upgrades are supported' });
      }
      const r = resolver!.resolve(req.headers.host, url);
      if (r.kind === 'problem') return fail(r.problem);
      if (r.kind !== 'proxy') return fail({ code: 'E_BAD_REQUEST', reason: 'a WebSocket needs a route' });
      target = r.target;
      if (r.target.endpoints.length === 0) return fail({ code: 'E_NO_HEALTHY_ENDPOINT', route: r.target.route });
      const encrypted = (socket as Socket & { encrypted?: boolean }).encrypted === true;
      job = newJob(id, client, r, encrypted ? 'https' : 'http', true);
      webSockets.add(socket);
      proxy!.ws(req, socket, head, job);
    } catch (err) {
      log.error({ err }, 'upgrade handler failed');
      socket.destroy();
    }
  }

  function onClientError(err: NodeJS.ErrnoException, socket: Duplex) {
    // Parse errors (CL+TE conflicts, oversized or malformed headers) and header timeouts (slowloris).
    const code = err.code ?? 'ERR';
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    observer.clientError(code, status);
    const body = status === 431 ? 'request header fields too large\n' : status === 408 ? 'request timeout\n' : 'bad request\n';
    writeRawPage(socket, { status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body });
  }

  function onConnect(_req: IncomingMessage, socket: Duplex) {
    // CONNECT would make the edge a tunnel to anywhere: never (open-proxy regression, test/security).
    socket.on('error', () => socket.destroy());
    observer.clientError('CONNECT', 405);
    writeRawPage(socket, { status: 405, headers: { allow: 'GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS', 'content-type': 'text/plain; charset=utf-8' }, body: 'CONNECT is not supported\n' });
  }

  function configure(server: Server) {
    server.on('request', onRequest);
    server.on('upgrade', onUpgrade);
    server.on('clientError', onClientError);
    server.on('connect', onConnect);
    // Idle client sockets (also a body trickling in too slowly) are cut after the idle timeout.
    server.timeout = http.timeouts.idle;
    server.keepAliveTimeout = http.timeouts.keepAlive;
    return server;
  }

  const buildProxy = (h: HttpConfig) =>
    createProxy({
      http: h,
      registry: deps.registry,
      log,
      extensions: deps.httpExtensions,
      onProblem: (req, res, job, code) => answer(req, res, { code, name: job.target.route.name }),
      onWsProblem: (socket, job, code) => writeRawPage(socket, errorPage({ code, name: job.target.route.name }, false), false, job.id),
      onWebSocket: (delta) => observer.websocket(delta),
    });

  /**
   * The fast lane in front of `plain`: what it does not relay is handed to `plain` as a new connection. For
   * HTTPS the lane reads the TLS sockets a `tls.Server` decrypts, and `plain` is a node:http server that gets
   * them decrypted too (as node:https's own server does: its HTTP side is node:http's on a TLS socket).
   */
  const buildLane = (plain: Server, proto: 'http' | 'https') => {
    // Node starts tracking a server's connections (the headers timeout against slowloris, idle-connection
    // closing) when it emits 'listening'. This server never listens itself: the lane's TCP server does.
    plain.emit('listening');
    return createFastLane({
      proto,
      http: () => http,
      resolver: () => resolver!,
      // Redirecting to HTTPS answers every plain request itself: Node's path does it.
      enabled: () => proto === 'https' || !(http.redirectToHttps && http.https),
      handOff: (socket) => plain.emit('connection', socket),
      registry: deps.registry,
      observer,
      passes: createResponsePasses(deps.httpExtensions, log),
      clients: () => clients,
      log,
    });
  };

  /** Closing a listener closes what it fed too: the lane's connections and the ones it handed to Node. */
  const closable = (s: (typeof servers)[number]): Closable => {
    const lane = s.lane;
    if (!lane) return s.server;
    return {
      get listening() {
        return s.listener.listening;
      },
      close: (cb) => s.listener.close(() => cb()),
      closeIdleConnections() {
        lane.drain();
        // Closes Node's idle connections and stops its connection tracking (nothing listens on it to close).
        s.server.close();
      },
      closeAllConnections() {
        lane.destroyAll();
        s.server.closeAllConnections();
      },
    };
  };

  return {
    name: 'http',
    async start() {
      resolver = new Resolver(deps.registry, config.domains);
      proxy = buildProxy(http);
      const options = serverOptions(http);
      const plain = configure(createServer(options));
      const lane = http.fastLane ? buildLane(plain, 'http') : null;
      const listener = lane ? createTcpServer({ noDelay: true }, (socket) => lane.accept(socket)) : plain;
      servers.push({ name: 'http', server: plain, listener, lane });
      const a = await listen(listener, http.listen);
      log.info({ address: `${a.address}:${a.port}`, fastLane: lane !== null }, 'http listening');
      if (http.https) {
        sni = loadSniContexts(http.https.certs);
        const tlsOptions = {
          ...sni.defaultContext,
          SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => cb(null, sni!.select(name)),
          // A TLS handshake gets as long as a header block (Node's default is 120 s: a cheap slowloris).
          handshakeTimeout: http.timeouts.headers,
        };
        let entry: (typeof servers)[number];
        if (http.fastLane) {
          const secure = configure(createServer(options));
          const tlsLane = buildLane(secure, 'https');
          // ALPN as node:https offers it: HTTP/1.1, so that clients do not try h2 on a server that speaks 1.1.
          const listener = createTlsServer({ ...tlsOptions, ALPNProtocols: ['http/1.1'] }, (socket) => tlsLane.accept(socket));
          entry = { name: 'https', server: secure, listener, lane: tlsLane };
        } else {
          const secure = configure(createHttpsServer({ ...options, ...tlsOptions }) as unknown as Server);
          entry = { name: 'https', server: secure, listener: secure, lane: null };
        }
        // Node reports a failed or timed-out handshake here but leaves the socket open: close it.
        entry.listener.on('tlsClientError', (err: Error, socket: Duplex) => {
          log.debug({ err: err.message }, 'TLS handshake failed');
          socket.destroy();
        });
        servers.push(entry);
        const s = await listen(entry.listener, http.https.listen);
        httpsPort = s.port;
        log.info({ address: `${s.address}:${s.port}`, names: sni.names }, 'https listening');
      }
    },
    /**
     * A reload that keeps the listen addresses keeps the listeners and every open connection (issue #6):
     * domains, timeouts, pools and certificates are swapped in place. Only a new address, HTTPS turned on
     * or off, or a new header size limit (fixed when a server is created) needs a restart (returns false).
     */
    async reconfigure(next: Config) {
      const h = next.http;
      if (!h || servers.length === 0) return false;
      const same = isDeepStrictEqual;
      if (!same(h.listen, http.listen) || !same(h.https?.listen, http.https?.listen) || h.maxHeaderSize !== http.maxHeaderSize) return false;
      if (h.timeouts.headers !== http.timeouts.headers || h.fastLane !== http.fastLane) return false;
      const nextSni = h.https && !same(h.https.certs, http.https?.certs) ? loadSniContexts(h.https.certs) : sni;
      const oldResolver = resolver;
      resolver = new Resolver(deps.registry, next.domains);
      oldResolver?.close();
      // The old proxy is not closed: requests in flight finish on its sockets, which then idle out (its
      // agent drops idle sockets after a few seconds and never holds the process open).
      proxy = buildProxy(h);
      for (const { name, server, listener } of servers) {
        server.timeout = h.timeouts.idle;
        server.keepAliveTimeout = h.timeouts.keepAlive;
        // The TLS listener: node:https's server itself, or the tls.Server in front of the HTTPS lane.
        if (name === 'https' && nextSni && nextSni !== sni) (listener as unknown as TlsServer).setSecureContext(nextSni.defaultContext);
      }
      sni = nextSni;
      http = h;
      clients = clientAddressesOf(h.trustedProxies);
      for (const s of servers) s.lane?.reconfigure();
      log.info({ domains: next.domains }, 'http reconfigured in place');
      return true;
    },
    async close(deadline) {
      closing = true;
      await Promise.all(servers.map((s) => closeServer(closable(s), deadline)));
      // Upgraded sockets are no longer the server's: agents reconnect elsewhere, as after any restart.
      for (const s of webSockets) s.destroy();
      resolver?.close();
      proxy?.close();
      for (const s of servers) s.lane?.close();
    },
    addresses() {
      const out: Record<string, AddressInfo> = {};
      for (const s of servers) {
        const a = s.listener.address();
        if (a && typeof a === 'object') out[s.name] = a;
      }
      return out;
    },
  };
}

/** Slowloris: the whole header block within `timeouts.headers`; header size capped by `maxHeaderSize`. */
function serverOptions(http: HttpConfig): ServerOptions {
  return {
    maxHeaderSize: http.maxHeaderSize,
    headersTimeout: http.timeouts.headers,
    // No cap on the whole request: a large artifact upload may take minutes. A stalled body is cut by the
    // idle timeout instead (server.timeout).
    requestTimeout: 0,
    // Node checks the header timeout on this interval (default 30 s); check often enough to honour it.
    connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(http.timeouts.headers / 4))),
  };
}
