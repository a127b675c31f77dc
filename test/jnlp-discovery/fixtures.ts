import { Writable } from 'node:stream';
import type { JnlpConfig } from '../../src/config/types.js';
import { defaults } from '../../src/config/defaults.js';
import { createLogger, type Logger } from '../../src/log.js';
import type { Endpoint, PortName, Route, RouteInput } from '../../src/registry/types.js';
import { masterRoute } from '../helpers/registry.js';
import { freePort } from '../helpers/ports.js';

/** A JnlpConfig as the schema would produce it, with overrides. */
export function jnlpConfig(over: Partial<JnlpConfig> = {}): JnlpConfig {
  const d = defaults.jnlp;
  return {
    mode: 'direct',
    advertiseHost: null,
    bindHost: '127.0.0.1',
    sharedPort: null,
    cacheTtl: d.cacheTtl,
    connectTimeout: d.connectTimeout,
    headerTimeout: d.headerTimeout,
    maxHeaderSize: d.maxHeaderSize,
    discoveryTtl: d.discoveryTtl,
    limits: d.limits,
    proxyProtocol: false,
    ...over,
  };
}

/** A Route (as the registry hands it out) for pure-function tests. */
export function route(name: string, endpoints: Partial<Record<PortName, Endpoint[]>>, extra: Partial<RouteInput> = {}): Route {
  return { ...masterRoute(name, endpoints, extra), changedAt: '2026-01-01T00:00:00.000Z' };
}

/** A logger whose JSON lines the test can read back (pino's own test approach: a sink stream). */
export function captureLog(): { log: Logger; lines: () => Record<string, unknown>[] } {
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      raw.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  const log = createLogger({ level: 'debug', destination: sink });
  return { log, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** Polls `check` (bounded: `tries` × `everyMs`) until it returns a value. */
export async function eventually<T>(check: () => T | undefined | null | false, what: string, tries = 200, everyMs = 10): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = check();
    if (v) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export { freePort };

/** The discovery document `GET /_ci-edge/jnlp/<name>` answers for a running stand-in reached directly. */
export function directDiscovery(name: string, m: { agentPort: number; identity: string }) {
  return {
    name,
    state: 'running',
    host: '127.0.0.1',
    port: m.agentPort,
    protocols: ['JNLP4-connect', 'Ping'],
    instanceIdentity: m.identity,
    tunnel: `127.0.0.1:${m.agentPort}`,
  };
}
