/** The shared picture of the cluster. Everything here is plain, immutable data. */

export type RouteKind = 'master' | 'service';

/**
 * `running`: at least one healthy endpoint. `starting`: no healthy task yet, but tasks are staging or a
 * deployment is running. `unhealthy`: tasks run but fail their health checks (or none run and none start).
 * `gone`: known to be removed (kept only for the instant a front door needs to say so).
 */
export type RouteState = 'running' | 'starting' | 'unhealthy' | 'gone';

export const portNames = ['http', 'jnlp', 'ssh'] as const;
export type PortName = (typeof portNames)[number];

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  /** Marathon task id, when the endpoint is a task. */
  readonly taskId?: string;
}

export type Endpoints = Readonly<Record<PortName, readonly Endpoint[]>>;

export interface Route {
  /** Route name: `master1`, `mesos`, `cjoc`. Lower case, DNS label. */
  readonly name: string;
  readonly kind: RouteKind;
  /** Marathon app id (`/masters/master1`), or null for static routes. */
  readonly app: string | null;
  readonly state: RouteState;
  /** Human detail for the state: `task staging since 12:03`. */
  readonly detail?: string;
  /** Healthy endpoints only, per port name. */
  readonly endpoints: Endpoints;
  /** Marathon service ports per port name (marathon-lb's stable ports), or the `ci-edge.<port>.port` label. */
  readonly servicePorts: Readonly<Partial<Record<PortName, number>>>;
  /** URL prefix for path routing, `/master1`. */
  readonly path: string;
  /** Remove `path` before proxying (infra UIs live at `/`; Jenkins runs with `--prefix`). */
  readonly stripPrefix: boolean;
  readonly labels: Readonly<Record<string, string>>;
  /** Where it came from: `file`, `marathon`, `service`. */
  readonly source: string;
  /** ISO time of the last change of state or endpoints. */
  readonly changedAt: string;
}

export interface RegistryStatus {
  /** Every source has synced at least once. */
  readonly ready: boolean;
  /** Some source failed its last sync: routes are the last known good ones. */
  readonly stale: boolean;
  /** ISO time of the oldest source's last successful full sync, or null before the first. */
  readonly syncedAt: string | null;
  readonly marathonLeader: string | null;
  readonly lastError: string | null;
}

export interface Snapshot {
  /** Increases by one on every change. */
  readonly version: number;
  readonly routes: ReadonlyMap<string, Route>;
  readonly status: RegistryStatus;
}

export function emptyEndpoints(): Endpoints {
  return { http: [], jnlp: [], ssh: [] };
}

/** A route as a source produces it; the registry stamps `changedAt` when it really changed. */
export type RouteInput = Omit<Route, 'changedAt'>;

/** What a source reports to the registry. */
export interface SourceSink {
  /** A full sync: these are all the routes the source has; the others it owned are gone. */
  replace(routes: readonly RouteInput[], info?: { leader?: string | null }): void;
  /** One route appeared or changed (targeted refresh, or an endpoint removed by an event). */
  upsert(route: RouteInput): void;
  /** The source says this route is gone (Marathon removed the app). */
  remove(name: string): void;
  /** A sync failed: routes are kept, the registry is marked stale. */
  failed(error: Error): void;
}

export interface RouteSource {
  readonly id: string;
  /** Starts syncing. Resolves once running (not necessarily synced); sync failures go to `sink.failed`. */
  start(sink: SourceSink): Promise<void>;
  close(): Promise<void>;
  /** A front door could not reach this endpoint of a route it owns (a leader may have moved). */
  endpointFailed?(name: string, endpoint: Endpoint): void;
}

/** The read side every front door depends on. Lookups are synchronous Map reads of a prebuilt Snapshot. */
export interface RegistryView {
  current(): Snapshot;
  /** Called after every change with the new and the previous snapshot. Returns the unsubscribe function. */
  subscribe(listener: (next: Snapshot, prev: Snapshot) => void): () => void;
  /** Report an endpoint that refused or timed out, so a leader-routed service can re-check its leader. */
  endpointFailed(name: string, endpoint: Endpoint): void;
}
