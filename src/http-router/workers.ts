import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { addRemoteMetrics } from '../admin/metrics-endpoint.js';
import type { Config } from '../config/types.js';
import { CiEdgeError, type ErrorCode } from '../errors.js';
import { discoveriesOf } from '../jnlp-discovery/jnlp-discovery.js';
import { toWire } from '../registry/remote.js';
import type { Endpoint } from '../registry/types.js';
import type { Deps, FrontDoor } from '../service.js';
import { createHttpRouter } from './server.js';

/** Primary → worker. */
export type ToWorker =
  | { type: 'ci-edge:config'; config: Config; logLevel: string }
  | { type: 'ci-edge:log-level'; level: string }
  | { type: 'ci-edge:snapshot'; snapshot: ReturnType<typeof toWire> }
  | { type: 'ci-edge:metrics'; id: number }
  | { type: 'ci-edge:close'; deadline: number };

/** Worker → primary. */
export type FromWorker =
  | { type: 'ci-edge:ready' }
  | { type: 'ci-edge:listening'; addresses: Record<string, AddressInfo> }
  | { type: 'ci-edge:start-failed'; message: string; code: string | null }
  | { type: 'ci-edge:endpoint-failed'; name: string; endpoint: Endpoint }
  | { type: 'ci-edge:discovery'; node: string; address: string; master: string }
  | { type: 'ci-edge:metrics'; id: number; metrics: MetricObjectWithValues<MetricValue<string>>[] };

/** The router on one process: what `http.workers: 1` (the default) runs, unchanged. */
export function createHttp(config: Config, deps: Deps): FrontDoor {
  return config.http!.workers > 1 ? createHttpWorkers(config, deps) : createHttpRouter(config, deps);
}

/** How long a scrape waits for a worker's metrics before leaving that worker out. */
const METRICS_TIMEOUT = 2_000;
/** After the close deadline, how long workers get to exit before SIGKILL. */
const KILL_GRACE = 1_000;

/** The worker entry next to this file: `.ts` when tests run the sources, `.js` from dist. */
function workerEntry(): string {
  const self = fileURLToPath(import.meta.url);
  return fileURLToPath(new URL(`./worker-main${extname(self)}`, import.meta.url));
}

/**
 * The HTTP router on N processes (issue #3, `http.workers`): node's HTTP stack is the ceiling of one event
 * loop, so the listeners are shared through node:cluster. The registry stays here, watched once: every
 * snapshot is sent to the workers, and what they learn (failed endpoints, JNLP discoveries, metrics) comes
 * back over IPC to the gateway's own registry, discovery log and /metrics.
 */
export function createHttpWorkers(config: Config, deps: Deps): FrontDoor {
  const n = config.http!.workers;
  const log = deps.log.child({ component: 'http-workers' });
  const listening = new Map<Worker, Record<string, AddressInfo>>();
  const all = new Set<Worker>();
  /** Workers that asked for their config: only they get snapshots (the next one after ready is current). */
  const ready = new Set<Worker>();
  const restarts: number[] = [];
  const pending = new Map<number, (m: MetricObjectWithValues<MetricValue<string>>[]) => void>();
  let seq = 0;
  let closing = false;
  let starting: { resolve(): void; reject(err: Error): void } | null = null;
  let unsubscribe: (() => void) | null = null;
  let removeMetrics: (() => void) | null = null;

  const send = (w: Worker, msg: ToWorker) => {
    if (w.isConnected()) w.send(msg, (err: Error | null) => err && log.debug({ err, pid: w.process.pid }, 'cannot reach router worker'));
  };

  function onMessage(w: Worker, msg: FromWorker) {
    switch (msg?.type) {
      case 'ci-edge:ready':
        // Only now: what arrives before the worker's module has run is dropped (ESM loads asynchronously).
        ready.add(w);
        send(w, { type: 'ci-edge:config', config, logLevel: deps.log.level });
        send(w, { type: 'ci-edge:snapshot', snapshot: toWire(deps.registry.current()) });
        return;
      case 'ci-edge:listening':
        listening.set(w, msg.addresses);
        log.debug({ pid: w.process.pid }, 'router worker listening');
        if (starting && listening.size >= n) starting.resolve();
        return;
      case 'ci-edge:start-failed': {
        const err = msg.code ? Object.assign(new CiEdgeError(msg.code as ErrorCode), { message: msg.message }) : new Error(msg.message);
        if (starting) starting.reject(err);
        else log.error({ pid: w.process.pid, error: msg.message }, 'router worker failed to start');
        return;
      }
      case 'ci-edge:endpoint-failed':
        return deps.registry.endpointFailed(msg.name, msg.endpoint);
      case 'ci-edge:discovery':
        // The JNLP front door's hooks are in the gateway's live hook list while it runs (and only then).
        for (const ext of deps.httpExtensions) discoveriesOf(ext)?.record(msg.node, msg.address, msg.master);
        return;
      case 'ci-edge:metrics':
        pending.get(msg.id)?.(msg.metrics);
        return;
    }
  }

  function onExit(w: Worker, code: number | null, signal: string | null) {
    all.delete(w);
    ready.delete(w);
    listening.delete(w);
    if (closing) return;
    log.error({ pid: w.process.pid, code, signal }, 'router worker exited');
    if (starting) return starting.reject(new Error(`router worker exited during start (code ${code}, signal ${signal})`));
    // Bounded: a worker that dies at once on every start must not turn into a fork loop.
    const now = Date.now();
    while (restarts.length > 0 && restarts[0]! < now - 60_000) restarts.shift();
    if (restarts.length >= n) return log.error({ restarts: restarts.length }, 'router worker not restarted: too many restarts in the last minute');
    restarts.push(now);
    fork();
  }

  function fork(): Worker {
    cluster.setupPrimary({ exec: workerEntry(), execArgv: process.execArgv, args: [] });
    const w = cluster.fork();
    all.add(w);
    w.on('message', (msg: FromWorker) => onMessage(w, msg));
    w.on('exit', (code: number | null, signal: string | null) => onExit(w, code, signal));
    w.on('error', (err: Error) => log.debug({ err, pid: w.process.pid }, 'router worker channel error'));
    return w;
  }

  const collect = async () => {
    const workers = [...listening.keys()];
    return Promise.all(
      workers.map(
        (w) =>
          new Promise<MetricObjectWithValues<MetricValue<string>>[]>((resolve) => {
            const id = ++seq;
            const timer = setTimeout(() => done([]), METRICS_TIMEOUT);
            const done = (m: MetricObjectWithValues<MetricValue<string>>[]) => {
              clearTimeout(timer);
              pending.delete(id);
              resolve(m);
            };
            pending.set(id, done);
            send(w, { type: 'ci-edge:metrics', id });
          }),
      ),
    );
  };

  const stop = async (deadline: number) => {
    closing = true;
    unsubscribe?.();
    removeMetrics?.();
    const exits = [...all].map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
    for (const w of all) send(w, { type: 'ci-edge:close', deadline });
    const kill = setTimeout(() => {
      for (const w of all) if (!w.isDead()) w.process.kill('SIGKILL');
    }, Math.max(0, deadline - Date.now()) + KILL_GRACE);
    await Promise.all(exits);
    clearTimeout(kill);
  };

  return {
    name: 'http',
    async start() {
      unsubscribe = deps.registry.subscribe((next) => {
        const snapshot = toWire(next);
        for (const w of ready) send(w, { type: 'ci-edge:snapshot', snapshot });
      });
      try {
        await new Promise<void>((resolve, reject) => {
          starting = { resolve, reject };
          for (let i = 0; i < n; i++) fork();
        });
      } catch (err) {
        await stop(Date.now());
        throw err;
      } finally {
        starting = null;
      }
      removeMetrics = addRemoteMetrics(deps.metrics, collect);
      const a = this.addresses()['http'];
      log.info({ workers: n, address: a ? `${a.address}:${a.port}` : null }, 'http router workers listening');
    },
    async close(deadline = Date.now()) {
      await stop(deadline);
    },
    setLogLevel(level) {
      // A worker forked later asks for its config and gets `deps.log.level`, which the gateway set already.
      for (const w of all) send(w, { type: 'ci-edge:log-level', level });
    },
    addresses() {
      // Every worker listens on the same shared sockets (cluster hands one bound port, even for port 0).
      return listening.values().next().value ?? {};
    },
  };
}
