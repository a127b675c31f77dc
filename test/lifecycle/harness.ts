import { createServer, request, Agent, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/loader.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger, type Logger } from '../../src/log.js';

export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A backend that answers `<name>` on every path, keep-alive, on 127.0.0.1:0. */
export async function nameBackend(t: Teardown, name: string): Promise<{ port: number; server: Server }> {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(name));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return { port: (server.address() as AddressInfo).port, server };
}

/** A config file in a fresh directory that a test can rewrite, and a gateway started from it. */
export async function gatewayFromFile(t: Teardown, doc: Record<string, unknown>, log: Logger = silentLogger()) {
  const dir = mkdtempSync(join(tmpdir(), 'ci-edge-lifecycle-'));
  const file = join(dir, 'ci-edge.yaml');
  const write = (d: Record<string, unknown> | string) => writeFileSync(file, typeof d === 'string' ? d : stringify(d));
  write(doc);
  const env = {};
  const gw: Gateway = await startGateway(await loadConfig(file, env), { log, reloadConfig: () => loadConfig(file, env) });
  t.teardown(async () => {
    await gw.close(0);
    rmSync(dir, { recursive: true, force: true });
  });
  const port = (key: string) => {
    const a = gw.addresses()[key];
    if (!a) throw new Error(`no listener ${key}: ${Object.keys(gw.addresses()).join(', ')}`);
    return a.port;
  };
  return { gw, file, write, port };
}

export interface Reply {
  status: number;
  body: string;
  headers: IncomingHttpHeaders;
}

/** One GET with a Host header (fetch cannot set it), over `agent` when given. */
export function get(port: number, path: string, host: string, agent?: Agent): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host }, agent: agent ?? false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export interface LoadResult {
  ok: number;
  failed: number;
  errors: string[];
}

/**
 * wrk-style bounded load, in process: `workers` keep-alive clients each send requests back to back until
 * `durationMs` has passed or `maxRequests` were sent in all. `check` says whether an answer is right.
 */
export async function load(
  o: { workers: number; durationMs: number; maxRequests: number },
  send: (agent: Agent) => Promise<Reply>,
  check: (r: Reply) => boolean,
): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: o.workers });
  const result: LoadResult = { ok: 0, failed: 0, errors: [] };
  const end = Date.now() + o.durationMs;
  let sent = 0;
  const worker = async () => {
    while (Date.now() < end && sent < o.maxRequests) {
      sent++;
      try {
        const r = await send(agent);
        if (check(r)) result.ok++;
        else {
          result.failed++;
          if (result.errors.length < 10) result.errors.push(`${r.status} ${r.body.slice(0, 200)}`);
        }
      } catch (err) {
        result.failed++;
        if (result.errors.length < 10) result.errors.push(String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: o.workers }, worker));
  agent.destroy();
  return result;
}
