import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import type { Config } from '../config/types.js';
import { closeServer, listen } from '../net.js';
import type { Deps, FrontDoor } from '../service.js';
import { dashboardCsp, dashboardHtml } from './dashboard.js';
import { RouteEvents } from './events.js';
import { serveMetrics, trackRegistry } from './metrics-endpoint.js';
import { routeToJson, snapshotToJson } from './routes-json.js';

type Handler = (req: IncomingMessage, res: ServerResponse, rest: string) => void | Promise<void>;

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(text);
}

/**
 * The operators' listener: health, readiness, the route table, Prometheus metrics, the live dashboard and
 * reload (issue #6). Bound to loopback by default: `POST /reload` is not authenticated.
 */
export function createAdmin(config: Config, deps: Deps): FrontDoor {
  const { registry, lifecycle, metrics } = deps;
  const log = deps.log.child({ component: 'admin' });
  let adminConfig = config.admin!;
  const events = new RouteEvents(registry, () => ({ draining: lifecycle.isDraining() }), adminConfig.eventsThrottle);
  const routes: Record<string, Handler> = {
    'GET /': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': dashboardCsp });
      res.end(dashboardHtml);
    },
    'GET /events': (req, res) => events.attach(req, res),
    'GET /health': (_req, res) => json(res, 200, { status: 'ok' }),
    'GET /ready': (_req, res) => {
      const s = registry.current().status;
      if (lifecycle.isDraining()) return json(res, 503, { ready: false, reason: 'draining' });
      if (!s.ready) return json(res, 503, { ready: false, reason: 'waiting for the first sync', lastError: s.lastError });
      json(res, 200, { ready: true, stale: s.stale });
    },
    'GET /metrics': (_req, res) => serveMetrics(res, metrics, registry),
    'GET /routes': (_req, res) => json(res, 200, snapshotToJson(registry.current())),
    'GET /routes/': (_req, res, name) => {
      const route = registry.current().routes.get(decodeURIComponent(name).toLowerCase());
      if (!route) return json(res, 404, { error: 'E_NO_ROUTE', message: `no route named "${name}"` });
      json(res, 200, routeToJson(route));
    },
    'POST /reload': async (_req, res) => {
      const result = await lifecycle.reload();
      json(res, result.ok ? 200 : 400, result);
    },
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const slash = path.indexOf('/', 1);
    const exact = routes[`${req.method} ${path}`];
    const prefixed = slash !== -1 ? routes[`${req.method} ${path.slice(0, slash + 1)}`] : undefined;
    const handler = exact ?? prefixed;
    if (!handler) return json(res, 404, { error: 'not found', paths: Object.keys(routes) });
    Promise.resolve(handler(req, res, slash !== -1 ? path.slice(slash + 1) : '')).catch((err: unknown) => {
      log.error({ err }, 'admin handler failed');
      if (!res.headersSent) json(res, 500, { error: String(err) });
    });
  };

  let server: Server | null = null;
  let untrack: (() => void) | null = null;
  const bind = async (c: Config) => {
    const s = createServer(handle);
    const addr = await listen(s, c.admin!.listen);
    log.info({ address: `${addr.address}:${addr.port}` }, 'admin listening');
    return s;
  };
  return {
    name: 'admin',
    async start() {
      server = await bind(config);
      untrack = trackRegistry(metrics, registry);
      events.start();
    },
    async close(deadline) {
      untrack?.();
      // Event streams never end by themselves; ending them lets the server close before the deadline.
      events.close();
      if (server) await closeServer(server, deadline);
    },
    addresses(): Record<string, AddressInfo> {
      return server ? { admin: server.address() as AddressInfo } : {};
    },
    /** Always in place: a new address is bound before the old one closes, so `POST /reload` gets its answer. */
    async reconfigure(next) {
      const nextAdmin = next.admin!;
      events.throttleMs = nextAdmin.eventsThrottle;
      if (server && !isDeepStrictEqual(nextAdmin.listen, adminConfig.listen)) {
        const old = server;
        server = await bind(next);
        events.endClients();
        void closeServer(old, Date.now() + next.shutdown.grace);
      }
      adminConfig = nextAdmin;
      return true;
    },
  };
}
