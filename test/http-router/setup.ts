/** Shared wiring for router tests: a router over a ManualSource registry, an HTTP client, a raw-socket client. */
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/schema.js';
import type { HttpExtension } from '../../src/extension.js';
import { createLogger } from '../../src/log.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { createHttpRouter } from '../../src/http-router/server.js';
import type { RouteInput } from '../../src/registry/types.js';
import type { FrontDoor } from '../../src/service.js';
import { testRegistry, type ManualSource } from '../helpers/registry.js';
import type { Registry } from '../../src/registry/registry.js';

export const domain = 'pse.example.com';

export interface Router {
  readonly port: number;
  readonly router: FrontDoor;
  readonly registry: Registry;
  readonly source: ManualSource;
  readonly metrics: Metrics;
  readonly extensions: HttpExtension[];
  /** Access-log lines (parsed pino JSON with msg "request"), in order. */
  accessLog(): Record<string, unknown>[];
  /** Registry.endpointFailed calls, as `name host:port`. */
  readonly failed: string[];
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface RouterOptions {
  /** Raw `http:` config keys (as in YAML) over `listen: 127.0.0.1:0`. */
  http?: Record<string, unknown>;
  extensions?: HttpExtension[];
  domains?: string[];
}

export async function startRouter(t: Teardown, routes: RouteInput[], o: RouterOptions = {}): Promise<Router> {
  const config = parseConfig({ domains: o.domains ?? [domain], http: { listen: '127.0.0.1:0', ...o.http } });
  const extensions = o.extensions ?? [];
  const { registry, source } = await testRegistry(routes);
  const failed: string[] = [];
  const original = registry.endpointFailed.bind(registry);
  registry.endpointFailed = (name, ep) => {
    failed.push(`${name} ${ep.host}:${ep.port}`);
    original(name, ep);
  };
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const log = createLogger({ level: 'info', destination: sink });
  const metrics = createMetrics();
  const router = createHttpRouter(config, {
    registry,
    log,
    metrics,
    httpExtensions: extensions,
    config,
    lifecycle: { isDraining: () => false, reload: async () => ({ ok: false, error: 'n/a' }) },
  });
  await router.start();
  t.teardown(async () => {
    await router.close(Date.now());
    await registry.close();
  });
  return {
    port: router.addresses()['http']!.port,
    router,
    registry,
    source,
    metrics,
    extensions,
    accessLog: () => logs.filter((l) => l['msg'] === 'request'),
    failed,
  };
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface Ask {
  host?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** One request on a fresh connection; resolves with the whole answer. */
export function ask(port: number, path: string, o: Ask = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: o.method ?? 'GET', agent: false, headers: { host: o.host ?? domain, ...o.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Writes bytes on a raw TCP connection and resolves with everything received until the server closes. */
export function raw(port: number, text: string | Buffer, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => s.destroy(), timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    s.write(text);
  });
}
