import type { AddressInfo } from 'node:net';
import { createAdmin } from './admin/admin.js';
import type { Config } from './config/types.js';
import { createDemo } from './demo/demo.js';
import { createHttp } from './http-router/workers.js';
import { createJnlpDiscovery } from './jnlp-discovery/jnlp-discovery.js';
import type { HttpExtension } from './extension.js';
import type { Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { Registry } from './registry/registry.js';
import { buildSources } from './registry/sources.js';
import { createSshGateway } from './ssh-gateway/server.js';
import { isCiEdgeError } from './errors.js';
import { FileSource } from './registry/file.js';
import { frontDoorChanged, planReload } from './reload.js';
import type { Deps, FrontDoor, Lifecycle, ReloadResult } from './service.js';

export interface Gateway {
  readonly registry: Registry;
  readonly metrics: Metrics;
  /** Bound addresses of every listener, keyed `<frontDoor>.<listener>` (`http.http`, `ssh.ssh`, `admin.admin`). */
  addresses(): Record<string, AddressInfo>;
  /** Graceful stop: /ready turns 503, listeners close, in-flight work gets until the grace period ends. */
  close(graceMs?: number): Promise<void>;
  isDraining(): boolean;
  /** The running configuration (the last one a reload accepted). */
  config(): Config;
  /** Re-reads the configuration (SIGHUP, POST /reload): a bad file is refused and the running one stays. */
  reload(): Promise<ReloadResult>;
}

export interface GatewayOptions {
  log: Logger;
  metrics?: Metrics;
  /** Re-reads the config for reload (SIGHUP, POST /reload). */
  reloadConfig?: () => Promise<Config>;
  /** `--log-level` was given: it wins over the file's `log.level`, also on reload. */
  logLevelPinned?: boolean;
}

const factories: readonly [keyof Config, (config: Config, deps: Deps) => FrontDoor][] = [
  ['admin', createAdmin],
  ['demo', createDemo],
  ['jnlp', createJnlpDiscovery],
  ['http', createHttp],
  ['ssh', createSshGateway],
];

/**
 * The enabled front doors, in start order: admin first so /health answers while the first sync runs, JNLP
 * discovery before the router it hooks into. The router hooks each factory adds are taken out of
 * `deps.httpExtensions` and remembered per front door: a reload that keeps the JNLP front door must keep
 * its hooks too (they share its state, such as which master each agent discovered), not a fresh copy's.
 */
function buildFrontDoors(config: Config, deps: Deps, hooksOf: WeakMap<FrontDoor, HttpExtension[]>): FrontDoor[] {
  const frontDoors: FrontDoor[] = [];
  for (const [section, create] of factories) {
    if (!config[section]) continue;
    const before = deps.httpExtensions.length;
    const fd = create(config, deps);
    hooksOf.set(fd, deps.httpExtensions.splice(before));
    frontDoors.push(fd);
  }
  return frontDoors;
}

/**
 * Builds ONE registry, starts the enabled front doors in order and closes them in reverse order with a
 * deadline. Reload (SIGHUP, POST /reload; issue #6) applies file routes through the registry and restarts
 * only the front doors whose configuration section changed.
 */
export async function startGateway(config: Config, opts: GatewayOptions): Promise<Gateway> {
  const log = opts.log;
  const metrics = opts.metrics ?? createMetrics();
  // Process metrics belong to the gateway that owns the metrics; a caller passing its own decides itself.
  if (!opts.metrics) metrics.collectDefaults();
  const registry = new Registry({ log });
  const sources = buildSources(config, log, metrics);
  // The services and Marathon sources as they run now: a reload that changes their sections swaps them.
  let swappable = sources.filter((s) => !(s instanceof FileSource));
  // Reload hands new file routes to the file source; when the sources have none, one that starts empty
  // is put first so that routes added to the file later still win over Marathon's (see sources.ts).
  let fileSource = sources.find((s): s is FileSource => s instanceof FileSource);
  if (!fileSource) {
    fileSource = new FileSource([]);
    registry.add(fileSource);
  }
  for (const source of sources) registry.add(source);
  let current = config;
  let draining = false;
  const lifecycle: Lifecycle = {
    isDraining: () => draining,
    reload: () => reload(),
  };
  // One list for the gateway's life: the router reads it per request; it holds the running front doors' hooks.
  const httpExtensions: HttpExtension[] = [];
  const hooksOf = new WeakMap<FrontDoor, HttpExtension[]>();
  const serveHooksOf = (fds: readonly FrontDoor[]) => httpExtensions.splice(0, httpExtensions.length, ...fds.flatMap((fd) => hooksOf.get(fd) ?? []));
  const depsFor = (c: Config): Deps => ({ registry, log, metrics, httpExtensions, config: c, lifecycle });

  let started: FrontDoor[] = [];
  // Front doors replaced by a reload that still finish their in-flight work; shutdown waits for them.
  const retiring = new Set<Promise<void>>();
  const closeStarted = async (deadline: number) => {
    for (const fd of [...started].reverse()) {
      try {
        await fd.close(deadline);
      } catch (err) {
        log.error({ err, frontDoor: fd.name }, 'close failed');
      }
    }
    await Promise.all(retiring);
    await registry.close();
  };
  try {
    // Sources first: starting them does not wait for Marathon (its first sync runs in the background, and
    // until it lands the routers answer 503 "starting"), but the file's routes are in place before any
    // listener accepts, so a static route never answers 404 in the first milliseconds.
    await registry.start();
    const frontDoors = buildFrontDoors(config, depsFor(config), hooksOf);
    serveHooksOf(frontDoors);
    for (const fd of frontDoors) {
      await fd.start();
      started.push(fd);
    }
  } catch (err) {
    await closeStarted(Date.now());
    throw err;
  }

  const retire = (fd: FrontDoor) => {
    const p = fd
      .close(Date.now() + current.shutdown.grace)
      .catch((err: unknown) => log.error({ err, frontDoor: fd.name }, 'close of replaced front door failed'))
      .finally(() => retiring.delete(p));
    retiring.add(p);
    return p;
  };

  /**
   * Swaps one front door for its rebuilt self. A changed address is bound before the old listener is let
   * go; the same address needs the old one to let go of the port first (its open connections carry on).
   * Never throws: on failure the old configuration's instance keeps (or takes back) the job.
   */
  const replace = async (old: FrontDoor, fresh: FrontDoor, prev: Config, next: Config): Promise<{ fd: FrontDoor; error?: unknown }> => {
    let oldRetired = false;
    try {
      if (old.reconfigure && (await old.reconfigure(next))) return { fd: old };
      try {
        await fresh.start();
        void retire(old);
        return { fd: fresh };
      } catch (err) {
        await fresh.close(Date.now()).catch(() => undefined);
        if (!isCiEdgeError(err, 'E_LISTEN')) return { fd: old, error: err };
      }
      oldRetired = true;
      await Promise.race([retire(old), new Promise((r) => setImmediate(r))]);
      await fresh.start();
      return { fd: fresh };
    } catch (error) {
      await fresh.close(Date.now()).catch(() => undefined);
      const back = buildFrontDoors(prev, depsFor(prev), hooksOf).find((fd) => fd.name === old.name);
      if (!back || !oldRetired) return { fd: old, error };
      await back.start().catch((err: unknown) => log.error({ err, frontDoor: old.name }, 'cannot restore front door'));
      return { fd: back, error };
    }
  };

  /** Rebuilds the front doors for `next`; those whose sections did not change stay as they are. */
  const applyFrontDoors = async (prev: Config, next: Config) => {
    const fresh = buildFrontDoors(next, depsFor(next), hooksOf);
    const kept: FrontDoor[] = [];
    const errors: unknown[] = [];
    for (const fd of fresh) {
      const old = started.find((o) => o.name === fd.name);
      if (old && !frontDoorChanged(fd.name, prev, next)) {
        kept.push(old);
      } else if (old) {
        const r = await replace(old, fd, prev, next);
        kept.push(r.fd);
        if (r.error) errors.push(r.error);
        else log.info({ frontDoor: fd.name, restarted: r.fd !== old }, 'front door reconfigured by reload');
      } else {
        try {
          await fd.start();
          kept.push(fd);
          log.info({ frontDoor: fd.name }, 'front door started by reload');
        } catch (err) {
          await fd.close(Date.now()).catch(() => undefined);
          errors.push(err);
        }
      }
    }
    for (const old of started) {
      if (fresh.some((fd) => fd.name === old.name)) continue;
      void retire(old);
      log.info({ frontDoor: old.name }, 'front door stopped by reload');
    }
    started = kept;
    serveHooksOf(kept);
    if (errors.length > 0) throw errors[0];
  };

  /**
   * Rebuilds the services and Marathon sources for `next` and swaps them into the registry in precedence
   * order (after the file). Both are rebuilt when either section changed: Marathon maps the services given as
   * `app:`, and the services' leader checks use Marathon's credentials. Each new source keeps the routes of the
   * one it replaces until its own first sync; front doors and their connections are not touched.
   */
  const swapSources = async (next: Config) => {
    const fresh = buildSources(next, log, metrics).filter((s) => !(s instanceof FileSource));
    for (const [position, id] of ['services', 'marathon'].entries()) {
      const old = swappable.find((s) => s.id === id) ?? null;
      const replacement = fresh.find((s) => s.id === id) ?? null;
      if (!old && !replacement) continue;
      // After the file source and, for Marathon, after the services one.
      await registry.swap(old, replacement, 1 + position);
      log.info({ source: id, action: !old ? 'added' : !replacement ? 'removed' : 'replaced' }, 'route source reloaded');
    }
    swappable = fresh;
  };

  /** A new `log.level` for this process's loggers (pino children follow their root) and the router workers'. */
  const setLogLevel = (level: string) => {
    if (opts.logLevelPinned) {
      log.info({ requested: level, kept: log.level }, 'log.level changed in the file; --log-level keeps its level');
      return;
    }
    log.level = level;
    for (const fd of started) fd.setLogLevel?.(level);
    log.warn({ to: level }, 'log level changed by reload');
  };

  let queue: Promise<unknown> = Promise.resolve();
  const reload = (): Promise<ReloadResult> => {
    const run = async (): Promise<ReloadResult> => {
      if (draining) return { ok: false, error: 'shutting down' };
      if (!opts.reloadConfig) return { ok: false, error: 'no configuration file to reload from' };
      let next: Config;
      try {
        next = await opts.reloadConfig();
      } catch (err) {
        const error = isCiEdgeError(err) ? err.message : String(err);
        log.error({ error }, 'reload refused; the running configuration stays');
        return { ok: false, error };
      }
      const prev = current;
      const plan = planReload(prev, next);
      try {
        if (plan.frontDoorsChanged) await applyFrontDoors(prev, next);
        if (plan.sourcesChanged) await swapSources(next);
      } catch (err) {
        const error = isCiEdgeError(err) ? err.message : String(err);
        log.error({ error }, 'reload failed while restarting a front door');
        return { ok: false, error };
      }
      current = next;
      if (plan.routesChanged) fileSource.update(next.routes);
      if (plan.logLevelChanged) setLogLevel(next.log.level);
      for (const k of plan.restartRequired) log.warn({ section: k }, 'configuration section changed: takes effect at the next restart');
      log.info({ changed: plan.changed }, 'configuration reloaded');
      return { ok: true, changed: plan.changed, restartRequired: plan.restartRequired };
    };
    const result = queue.then(run, run);
    queue = result;
    return result;
  };

  return {
    registry,
    metrics,
    addresses() {
      const out: Record<string, AddressInfo> = {};
      for (const fd of started) for (const [k, v] of Object.entries(fd.addresses())) out[`${fd.name}.${k}`] = v;
      return out;
    },
    isDraining: () => draining,
    config: () => current,
    reload,
    async close(graceMs = current.shutdown.grace) {
      if (draining) return;
      // /ready answers 503 from here on, while the admin listener (closed last) still answers.
      draining = true;
      log.info({ graceMs }, 'shutting down');
      await queue.catch(() => undefined);
      await closeStarted(Date.now() + graceMs);
      log.info('stopped');
    },
  };
}
