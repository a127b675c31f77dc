import type { AddressInfo } from 'node:net';
import { createAdmin } from './admin/admin.js';
import type { Config } from './config/types.js';
import { createDemo } from './demo/demo.js';
import type { HttpExtension } from './extension.js';
import type { Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { Registry } from './registry/registry.js';
import { buildSources } from './registry/sources.js';
import type { Deps, FrontDoor, Lifecycle } from './service.js';

export interface Gateway {
  readonly registry: Registry;
  readonly metrics: Metrics;
  /** Bound addresses of every listener, keyed `<frontDoor>.<listener>` (`http.http`, `ssh.ssh`, `admin.admin`). */
  addresses(): Record<string, AddressInfo>;
  /** Graceful stop: /ready turns 503, listeners close, in-flight work gets until the grace period ends. */
  close(graceMs?: number): Promise<void>;
  isDraining(): boolean;
}

export interface GatewayOptions {
  log: Logger;
  metrics?: Metrics;
  /** Re-reads the config for reload (SIGHUP, POST /reload). */
  reloadConfig?: () => Promise<Config>;
}

/**
 * Builds ONE registry, starts the enabled front doors in order (admin first so /health answers while the
 * first sync runs) and closes them in reverse order with a deadline.
 */
export async function startGateway(config: Config, opts: GatewayOptions): Promise<Gateway> {
  const log = opts.log;
  const metrics = opts.metrics ?? createMetrics();
  const registry = new Registry({ log });
  for (const source of buildSources(config, log, metrics)) registry.add(source);
  let draining = false;
  const lifecycle: Lifecycle = {
    isDraining: () => draining,
    reload: async () => ({ ok: false, error: 'reload is not supported by this build' }),
  };
  const httpExtensions: HttpExtension[] = [];
  const deps: Deps = { registry, log, metrics, httpExtensions, config, lifecycle };

  const frontDoors: FrontDoor[] = [];
  if (config.admin) frontDoors.push(createAdmin(config, deps));
  if (config.demo) frontDoors.push(createDemo(config, deps));

  const started: FrontDoor[] = [];
  const closeStarted = async (deadline: number) => {
    for (const fd of [...started].reverse()) {
      try {
        await fd.close(deadline);
      } catch (err) {
        log.error({ err, frontDoor: fd.name }, 'close failed');
      }
    }
    await registry.close();
  };
  try {
    for (const fd of frontDoors) {
      await fd.start();
      started.push(fd);
    }
    await registry.start();
  } catch (err) {
    await closeStarted(Date.now());
    throw err;
  }

  return {
    registry,
    metrics,
    addresses() {
      const out: Record<string, AddressInfo> = {};
      for (const fd of frontDoors) for (const [k, v] of Object.entries(fd.addresses())) out[`${fd.name}.${k}`] = v;
      return out;
    },
    isDraining: () => draining,
    async close(graceMs = config.shutdown.grace) {
      if (draining) return;
      draining = true;
      log.info({ graceMs }, 'shutting down');
      await closeStarted(Date.now() + graceMs);
      log.info('stopped');
    },
  };
}
