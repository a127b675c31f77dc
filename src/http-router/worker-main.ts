/**
 * Entry of a router worker process (issue #3, `http.workers` > 1), forked by workers.ts. It never talks to
 * Marathon: routes arrive from the primary, and failed endpoints, JNLP discoveries and metrics go back.
 */
import cluster from 'node:cluster';
import type { Config } from '../config/types.js';
import type { HttpExtension } from '../extension.js';
import { isCiEdgeError } from '../errors.js';
import { createJnlpWorkerHooks } from '../jnlp-discovery/jnlp-discovery.js';
import { createLogger, type Logger } from '../log.js';
import { createMetrics, type Metrics } from '../metrics.js';
import { RemoteRegistry } from '../registry/remote.js';
import type { FrontDoor, Lifecycle } from '../service.js';
import { createHttpRouter } from './server.js';
import type { FromWorker, ToWorker } from './workers.js';

const tell = (msg: FromWorker) => {
  if (process.connected) process.send!(msg);
};

const registry = new RemoteRegistry((name, endpoint) => tell({ type: 'ci-edge:endpoint-failed', name, endpoint }));
let router: FrontDoor | null = null;
let metrics: Metrics | null = null;
let log: Logger | null = null;
/** The worker's root logger: a level set on it reaches every child logger (pino). */
let rootLog: Logger | null = null;
let closeHooks: (() => void) | null = null;

async function start(config: Config, logLevel: string) {
  rootLog = createLogger({ level: logLevel, pretty: config.log.pretty ?? undefined });
  log = rootLog.child({ worker: cluster.worker?.id ?? 0 });
  metrics = createMetrics();
  // Process metrics too: the primary's /metrics aggregates them over the workers as prom-client's cluster
  // mode does (CPU and memory summed, event-loop lag averaged), so the processes doing the work show.
  metrics.collectDefaults();
  const httpExtensions: HttpExtension[] = [];
  if (config.jnlp) {
    const jnlp = createJnlpWorkerHooks(config.jnlp, registry, log, (node, address, master) => tell({ type: 'ci-edge:discovery', node, address, master }));
    httpExtensions.push(jnlp.hooks);
    closeHooks = jnlp.close;
  }
  // Draining and reload belong to the primary's admin listener; the router itself never asks.
  const lifecycle: Lifecycle = { isDraining: () => false, reload: () => Promise.resolve({ ok: false, error: 'not in a router worker' }) };
  router = createHttpRouter(config, { registry, log, metrics, httpExtensions, config, lifecycle });
  try {
    await router.start();
    tell({ type: 'ci-edge:listening', addresses: router.addresses() });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    tell({ type: 'ci-edge:start-failed', message, code: isCiEdgeError(err) ? err.code : null });
    await router.close(Date.now()).catch(() => undefined);
    process.exit(1);
  }
}

/** How long a closed worker stays to answer connection hand-offs already on their way (ms). */
const HANDOFF_SETTLE_MS = 500;

async function stop(deadline: number) {
  try {
    await router?.close(deadline);
    closeHooks?.();
  } catch (err) {
    log?.error({ err }, 'router worker close failed');
  }
  log?.flush();
  // node:cluster's primary may have handed this worker a connection just before it heard that the server
  // closed: the worker answers "not accepted" and the primary gives it to another worker, but only if this
  // process is still there to answer. Exiting at once lost such a connection (a client hung during a reload).
  setTimeout(() => process.exit(0), HANDOFF_SETTLE_MS);
}

process.on('message', (msg: ToWorker) => {
  switch (msg?.type) {
    case 'ci-edge:config':
      void start(msg.config, msg.logLevel);
      return;
    case 'ci-edge:log-level':
      if (rootLog) rootLog.level = msg.level;
      return;
    case 'ci-edge:snapshot':
      registry.apply(msg.snapshot);
      return;
    case 'ci-edge:metrics':
      void metrics?.registry.getMetricsAsJSON().then((m) => tell({ type: 'ci-edge:metrics', id: msg.id, metrics: m }));
      return;
    case 'ci-edge:close':
      void stop(msg.deadline);
      return;
  }
});
// Ctrl-C signals the whole process group: shutdown is the primary's to run (it sends 'close' with the grace
// deadline). A worker whose primary dies exits on its own: cluster ends a worker when the IPC channel closes.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
tell({ type: 'ci-edge:ready' });
