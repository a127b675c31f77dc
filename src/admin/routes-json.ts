import { syncAgeSeconds } from '../registry/registry.js';
import type { Route, Snapshot } from '../registry/types.js';

/** The public shape of a route in `GET /routes` (a contract: tests and operators' scripts read it). */
export function routeToJson(r: Route) {
  return {
    name: r.name,
    kind: r.kind,
    app: r.app,
    state: r.state,
    ...(r.detail ? { detail: r.detail } : {}),
    endpoints: { http: r.endpoints.http.map(ep), jnlp: r.endpoints.jnlp.map(ep), ssh: r.endpoints.ssh.map(ep) },
    servicePorts: r.servicePorts,
    path: r.path,
    source: r.source,
    changedAt: r.changedAt,
  };
}

const ep = (e: { host: string; port: number }) => ({ host: e.host, port: e.port });

export function snapshotToJson(s: Snapshot, now = new Date()) {
  const routes = [...s.routes.values()].sort((a, b) => a.name.localeCompare(b.name)).map(routeToJson);
  return {
    stale: s.status.stale,
    syncedAt: s.status.syncedAt,
    ageSeconds: syncAgeSeconds(s.status, now),
    ready: s.status.ready,
    marathonLeader: s.status.marathonLeader,
    lastError: s.status.lastError,
    version: s.version,
    routes,
  };
}
