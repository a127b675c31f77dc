/** Shared wiring for the registry tests: a Registry over a MarathonSource pointed at simulators. */
import { Writable } from 'node:stream';
import type { MarathonConfig } from '../../src/config/types.js';
import { createLogger, silentLogger, type Logger } from '../../src/log.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { MarathonSource } from '../../src/registry/marathon/source.js';
import type { ServiceApp } from '../../src/registry/marathon/mapper.js';
import { Registry } from '../../src/registry/registry.js';
import type { Route, Snapshot } from '../../src/registry/types.js';

export function marathonConfig(urls: string[], over: Partial<MarathonConfig> = {}): MarathonConfig {
  return {
    urls,
    auth: null,
    mastersGroup: '/masters',
    resyncInterval: 60_000,
    requestTimeout: 2_000,
    eventsIdleTimeout: 30_000,
    reconnectBackoff: { min: 10, max: 100 },
    coalesce: 5,
    ...over,
  };
}

/** A pino logger whose JSON lines land in `lines`, to assert structured log output. */
export function capturingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', destination }), lines };
}

export interface Harness {
  registry: Registry;
  source: MarathonSource;
  metrics: Metrics;
  close(): Promise<void>;
}

export async function startSource(config: MarathonConfig, o: { log?: Logger; serviceApps?: Map<string, ServiceApp> } = {}): Promise<Harness> {
  const log = o.log ?? silentLogger();
  const metrics = createMetrics();
  const source = new MarathonSource({ config, log, metrics, ...(o.serviceApps ? { serviceApps: o.serviceApps } : {}) });
  const registry = new Registry({ log }).add(source);
  await registry.start();
  return { registry, source, metrics, close: () => registry.close() };
}

/** Resolves with the first snapshot (current or later) that satisfies `pred`; rejects after `timeoutMs`. */
export function waitFor(registry: Registry, pred: (s: Snapshot) => boolean, what: string, timeoutMs = 5_000): Promise<Snapshot> {
  const now = registry.current();
  if (pred(now)) return Promise.resolve(now);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`));
    }, timeoutMs);
    const off = registry.subscribe((next) => {
      if (!pred(next)) return;
      clearTimeout(timer);
      off();
      resolve(next);
    });
  });
}

/** Polls a condition that is not a registry change (request counts), bounded in time. */
export async function until(cond: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const httpOf = (r: Route | undefined) => r?.endpoints.http.map((e) => `${e.host}:${e.port}`) ?? null;

/** Startup is over: the stream is attached and the full sync its attach asked for has finished. */
export async function settled(sim: { waitForStream(n: number): Promise<void>; count(p: string): number }, h: Harness): Promise<void> {
  await sim.waitForStream(1);
  await until(() => sim.count('/v2/apps') >= 2 && !h.source.syncing, 'the sync after the stream attached');
}
