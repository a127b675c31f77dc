import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/types.js';
import { escapeHtml } from '../html.js';
import { closeServer, listen } from '../net.js';
import type { Deps, FrontDoor } from '../service.js';


/**
 * Built-in stand-ins for Jenkins masters, so the embedded default shows routing in a browser with no
 * cluster: each answers with its name and echoes what it received (path, Host, forwarding headers).
 */
export function createDemo(config: Config, deps: Deps): FrontDoor {
  const backends = config.demo?.backends ?? [];
  const servers: { name: string; server: Server }[] = [];
  const log = deps.log.child({ component: 'demo' });
  return {
    name: 'demo',
    async start() {
      for (const b of backends) {
        const server = createServer((req, res) => {
          const echo = {
            master: b.name,
            method: req.method,
            path: req.url,
            host: req.headers.host,
            forwarded: Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith('x-forwarded-'))),
          };
          if ((req.headers.accept ?? '').includes('application/json')) {
            res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(echo));
            return;
          }
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'x-demo-master': b.name });
          res.end(
            `<!doctype html><title>${escapeHtml(b.name)}</title><h1>Jenkins master <code>${escapeHtml(b.name)}</code> answered</h1>` +
              `<p>ci-edge routed this request here. This is a demo backend built into ci-edge.</p>` +
              `<pre>${escapeHtml(JSON.stringify(echo, null, 2))}</pre>`,
          );
        });
        const addr = await listen(server, b.listen);
        servers.push({ name: b.name, server });
        log.info({ backend: b.name, port: addr.port }, 'demo backend listening');
      }
    },
    async close(deadline) {
      await Promise.all(servers.map((s) => closeServer(s.server, deadline)));
    },
    addresses() {
      return Object.fromEntries(servers.map((s) => [s.name, s.server.address() as AddressInfo]));
    },
  };
}
