import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/types.js';
import { closeServer, listen } from '../net.js';
import type { Deps, FrontDoor } from '../service.js';
import { routeToJson, snapshotToJson } from './routes-json.js';

type Handler = (req: IncomingMessage, res: ServerResponse, rest: string) => void | Promise<void>;

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(text);
}

/** The operators' listener: health, readiness, the route table. Bound to loopback by default. */
export function createAdmin(config: Config, deps: Deps): FrontDoor {
  const { registry, lifecycle } = deps;
  const log = deps.log.child({ component: 'admin' });
  const routes: Record<string, Handler> = {
    'GET /health': (_req, res) => json(res, 200, { status: 'ok' }),
    'GET /ready': (_req, res) => {
      const s = registry.current().status;
      if (lifecycle.isDraining()) return json(res, 503, { ready: false, reason: 'draining' });
      if (!s.ready) return json(res, 503, { ready: false, reason: 'waiting for the first sync', lastError: s.lastError });
      json(res, 200, { ready: true, stale: s.stale });
    },
    'GET /routes': (_req, res) => json(res, 200, snapshotToJson(registry.current())),
    'GET /routes/': (_req, res, name) => {
      const route = registry.current().routes.get(decodeURIComponent(name).toLowerCase());
      if (!route) return json(res, 404, { error: 'E_NO_ROUTE', message: `no route named "${name}"` });
      json(res, 200, routeToJson(route));
    },
  };
  let server: Server | null = null;
  return {
    name: 'admin',
    async start() {
      server = createServer((req, res) => {
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
      });
      const addr = await listen(server, config.admin!.listen);
      log.info({ address: `${addr.address}:${addr.port}` }, 'admin listening');
    },
    async close(deadline) {
      if (server) await closeServer(server, deadline);
    },
    addresses(): Record<string, AddressInfo> {
      return server ? { admin: server.address() as AddressInfo } : {};
    },
  };
}
