import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../log.js';
import type {
  Endpoint,
  RegistryStatus,
  RegistryView,
  Route,
  RouteInput,
  RouteSource,
  Snapshot,
  SourceSink,
} from './types.js';

interface SourceState {
  readonly source: RouteSource;
  /** /ready waits for this source's first sync (false for one a reload added: the others serve meanwhile). */
  readonly gatesReady: boolean;
  /** False once a reload swapped the source out: whatever it still reports is ignored. */
  live: boolean;
  routes: Map<string, Route>;
  syncedAt: Date | null;
  stale: boolean;
  leader: string | null;
  lastError: string | null;
}

export interface RegistryOptions {
  log: Logger;
  /** Injected clock, for tests. */
  now?: () => Date;
}

/**
 * Holds the current Snapshot. Sources own disjoint sets of routes (the first source added wins a name, so
 * the file registry can pin a route over Marathon). Each change builds a new immutable Snapshot off the
 * request path; readers only ever do `current().routes.get(name)`.
 */
export class Registry implements RegistryView {
  private readonly sources: SourceState[] = [];
  /** Sources a reload swapped out that are still closing. */
  private readonly retiring = new Set<Promise<void>>();
  private readonly listeners = new Set<(next: Snapshot, prev: Snapshot) => void>();
  private readonly log: Logger;
  private readonly now: () => Date;
  private snapshot: Snapshot;

  constructor(opts: RegistryOptions) {
    this.log = opts.log.child({ component: 'registry' });
    this.now = opts.now ?? (() => new Date());
    this.snapshot = { version: 0, routes: new Map(), status: this.computeStatus() };
  }

  add(source: RouteSource): this {
    this.sources.push({ source, gatesReady: true, live: true, routes: new Map(), syncedAt: null, stale: false, leader: null, lastError: null });
    return this;
  }

  async start(): Promise<void> {
    for (const state of this.sources) await state.source.start(this.sinkFor(state));
  }

  async close(): Promise<void> {
    for (const state of [...this.sources].reverse()) await state.source.close();
    await Promise.all(this.retiring);
    this.listeners.clear();
  }

  /**
   * Puts `next` where `old` was (a reload that changed the Marathon or services configuration). `next` starts
   * with `old`'s last routes until its own first sync replaces them: new Marathon URLs or credentials that do
   * not work keep the routes, marked stale, as a Marathon outage does. With `old` null, `next` is added
   * at `position` in precedence order; with `next` null, `old`'s routes go with it (the section was removed).
   */
  async swap(old: RouteSource | null, next: RouteSource | null, position: number): Promise<void> {
    const i = old ? this.sources.findIndex((s) => s.source === old) : -1;
    const was = i === -1 ? null : this.sources[i]!;
    if (was) {
      // Closed in the background: a sync in flight against an old Marathon that hangs must not hold the reload.
      was.live = false;
      const closing = was.source.close().catch((err: unknown) => this.log.error({ err, source: was.source.id }, 'close of a replaced source failed'));
      this.retiring.add(closing);
      void closing.finally(() => this.retiring.delete(closing));
    }
    if (!next) {
      if (!was) return;
      this.sources.splice(i, 1);
      this.publish(new Set(was.routes.keys()), true);
      return;
    }
    // The routes are as fresh as they were (their age counts on from the last sync) until `next` syncs or fails.
    const state: SourceState = was
      ? { source: next, gatesReady: was.gatesReady, live: true, routes: new Map(was.routes), syncedAt: was.syncedAt, stale: was.stale, leader: was.leader, lastError: was.lastError }
      : { source: next, gatesReady: false, live: true, routes: new Map(), syncedAt: null, stale: false, leader: null, lastError: null };
    if (was) this.sources[i] = state;
    else this.sources.splice(Math.min(position, this.sources.length), 0, state);
    this.publish(new Set(), true);
    await next.start(this.sinkFor(state));
  }

  current(): Snapshot {
    return this.snapshot;
  }

  get(name: string): Route | undefined {
    return this.snapshot.routes.get(name);
  }

  subscribe(listener: (next: Snapshot, prev: Snapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  endpointFailed(name: string, endpoint: Endpoint): void {
    const owner = this.sources.find((s) => s.routes.has(name));
    owner?.source.endpointFailed?.(name, endpoint);
  }

  private sinkFor(state: SourceState): SourceSink {
    return {
      replace: (routes, info) => {
        if (!state.live) return;
        // Only names whose Route object changed go to publish: a Marathon resync replaces 2000 routes and
        // usually changes none, and publish then copies no Map (issue #2: garbage during a sync costs pauses).
        const prevRoutes = state.routes;
        const next = new Map<string, Route>();
        const changed = new Set<string>();
        for (const input of routes) {
          const before = prevRoutes.get(input.name);
          const route = this.stamp(input, before);
          next.set(input.name, route);
          if (route !== before) changed.add(input.name);
        }
        for (const name of prevRoutes.keys()) if (!next.has(name)) changed.add(name);
        state.routes = next;
        state.syncedAt = this.now();
        state.stale = false;
        state.lastError = null;
        if (info?.leader !== undefined) state.leader = info.leader;
        this.publish(changed, true);
      },
      upsert: (input) => {
        if (!state.live) return;
        const prev = state.routes.get(input.name);
        const route = this.stamp(input, prev);
        if (route === prev) return;
        state.routes.set(input.name, route);
        this.publish(new Set([input.name]), false);
      },
      remove: (name) => {
        if (!state.live || !state.routes.delete(name)) return;
        this.publish(new Set([name]), false);
      },
      failed: (error) => {
        if (!state.live) return;
        const wasStale = state.stale;
        state.stale = true;
        state.lastError = error.message;
        this.log.warn({ source: state.source.id, err: error.message }, 'sync failed; keeping last known routes');
        if (!wasStale) this.publish(new Set(), true);
      },
    };
  }

  /** Keeps the previous object (and its changedAt) when nothing but the timestamp would change. */
  private stamp(input: RouteInput, prev: Route | undefined): Route {
    if (prev) {
      if (sameRoute(prev, input)) return prev;
    }
    return Object.freeze({ ...input, changedAt: this.now().toISOString() });
  }

  private publish(names: ReadonlySet<string>, statusChanged: boolean): void {
    const prev = this.snapshot;
    let routes = prev.routes;
    let routesChanged = false;
    let next: Map<string, Route> | null = null;
    for (const name of names) {
      const winner = this.winner(name);
      if (winner === (next ?? prev.routes).get(name)) continue;
      routesChanged = true;
      next ??= new Map(prev.routes);
      if (winner) next.set(name, winner);
      else next.delete(name);
      this.log.info({ route: name, state: winner?.state ?? 'removed', endpoints: winner?.endpoints.http.length ?? 0 }, 'route changed');
    }
    if (next) routes = next;
    const status = statusChanged ? this.computeStatus() : prev.status;
    if (!routesChanged && isDeepStrictEqual(status, prev.status)) return;
    this.snapshot = Object.freeze({ version: prev.version + 1, routes, status });
    for (const listener of this.listeners) {
      try {
        listener(this.snapshot, prev);
      } catch (err) {
        this.log.error({ err }, 'registry listener threw');
      }
    }
  }

  /** The route of the first source that has the name (sources added first win). */
  private winner(name: string): Route | undefined {
    for (const s of this.sources) {
      const route = s.routes.get(name);
      if (route) return route;
    }
    return undefined;
  }

  private computeStatus(): RegistryStatus {
    const ready = this.sources.length > 0 && this.sources.every((s) => s.syncedAt !== null || !s.gatesReady);
    const synced = this.sources.flatMap((s) => (s.syncedAt ? [s.syncedAt.getTime()] : []));
    const oldest = ready && synced.length > 0 ? new Date(Math.min(...synced)) : null;
    return {
      ready,
      stale: this.sources.some((s) => s.stale),
      syncedAt: oldest?.toISOString() ?? null,
      marathonLeader: this.sources.find((s) => s.leader)?.leader ?? null,
      lastError: this.sources.find((s) => s.lastError)?.lastError ?? null,
    };
  }
}

/** Seconds since the last full sync, at the time of asking. */
export function syncAgeSeconds(status: RegistryStatus, now: Date = new Date()): number | null {
  return status.syncedAt === null ? null : Math.max(0, (now.getTime() - Date.parse(status.syncedAt)) / 1000);
}

/**
 * `prev` minus `changedAt` deep-equals `input`. Field by field, because a full Marathon resync compares every
 * route (2000 masters) and util.isDeepStrictEqual took ~25 ms of a 100 ms sync budget (bench/registry.ts).
 * Keys are counted with for-in rather than Object.keys: no array per route, so a resync that changes nothing
 * leaves less garbage behind (issue #2). Routes are plain objects: for-in sees exactly their own keys.
 */
export function sameRoute(prev: Route, input: RouteInput): boolean {
  let inputKeys = 0;
  for (const k in input) {
    inputKeys++;
    const a = (prev as unknown as Record<string, unknown>)[k];
    const b = (input as unknown as Record<string, unknown>)[k];
    if (a === b) continue;
    if (k === 'endpoints') {
      if (!sameEndpoints(a as Route['endpoints'], b as Route['endpoints'])) return false;
    } else if (k === 'servicePorts' || k === 'labels') {
      if (!sameFlat(a as Record<string, unknown>, b as Record<string, unknown>)) return false;
    } else if (typeof a !== 'object' || typeof b !== 'object' || !isDeepStrictEqual(a, b)) {
      return false;
    }
  }
  return inputKeys === keyCount(prev) - 1;
}

function keyCount(o: object): number {
  let n = 0;
  for (const _k in o) n++;
  return n;
}

function sameEndpoints(a: Route['endpoints'], b: Route['endpoints']): boolean {
  if (keyCount(a) !== keyCount(b)) return false;
  for (const p in a) {
    const x = (a as Record<string, readonly Endpoint[]>)[p]!;
    const y = (b as Record<string, readonly Endpoint[] | undefined>)[p];
    if (!y || x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) {
      const e = x[i]!;
      const f = y[i]!;
      if (e.host !== f.host || e.port !== f.port || e.taskId !== f.taskId || keyCount(e) !== keyCount(f)) return false;
    }
  }
  return true;
}

function sameFlat(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  if (keyCount(a) !== keyCount(b)) return false;
  for (const k in a) if (a[k] !== b[k] || !(k in b)) return false;
  return true;
}
