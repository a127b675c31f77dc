import type { ServerResponse } from 'node:http';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { Metrics } from '../metrics.js';
import { syncAgeSeconds } from '../registry/registry.js';
import type { RegistryView, RouteState, Snapshot } from '../registry/types.js';

const states: readonly RouteState[] = ['running', 'starting', 'unhealthy', 'gone'];

/** Sets `ci_edge_routes{state}` from a snapshot; every state is written so a state that empties reads 0. */
export function countRoutes(metrics: Metrics, snapshot: Snapshot): void {
  const counts = new Map<RouteState, number>(states.map((s) => [s, 0]));
  for (const r of snapshot.routes.values()) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
  for (const [state, n] of counts) metrics.routes.set({ state }, n);
}

/**
 * Keeps the registry gauges current: route counts on every registry change (off the scrape path), the
 * sync age at scrape time (it grows with the clock, not with events). Returns the unsubscribe function.
 */
export function trackRegistry(metrics: Metrics, registry: RegistryView): () => void {
  countRoutes(metrics, registry.current());
  return registry.subscribe((next) => countRoutes(metrics, next));
}

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];
const remoteSources = new WeakMap<Metrics, Set<() => Promise<MetricsJson[]>>>();

/**
 * Metrics kept in other processes (router workers, `http.workers`) that belong in this gateway's scrape:
 * `collect` returns each process's `getMetricsAsJSON()`; they are summed with ours. Returns the remover.
 */
export function addRemoteMetrics(metrics: Metrics, collect: () => Promise<MetricsJson[]>): () => void {
  const set = remoteSources.get(metrics) ?? new Set();
  remoteSources.set(metrics, set);
  set.add(collect);
  return () => set.delete(collect);
}

export async function serveMetrics(res: ServerResponse, metrics: Metrics, registry: RegistryView): Promise<void> {
  // NaN before the first sync: "unknown", which an alert on `> 300` does not mistake for fresh.
  metrics.syncAge.set(syncAgeSeconds(registry.current().status) ?? Number.NaN);
  const remote = [...(remoteSources.get(metrics) ?? [])];
  const text =
    remote.length === 0
      ? await metrics.registry.metrics()
      : await AggregatorRegistry.aggregate([await metrics.registry.getMetricsAsJSON(), ...(await Promise.all(remote.map((c) => c()))).flat()]).metrics();
  res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' }).end(text);
}
