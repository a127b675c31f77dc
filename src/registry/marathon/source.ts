/**
 * The Marathon route source: a full sync at start, on every event-stream (re)connect and every
 * `resyncInterval`; between syncs, events refresh only the apps they name (traefik#3812: refetching all of
 * /v2/apps per event loads the leader), coalesced per app.
 */
import NodeCache from 'node-cache';
import type { MarathonConfig } from '../../config/types.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import type { RouteInput, RouteSource, SourceSink } from '../types.js';
import { MarathonClient, describe } from './client.js';
import { EventStream, backoffDelay, realClock, type Clock, type SseEvent } from './events.js';
import { endedTaskStates, mapApp, sameAppKey, withoutTask, writeAppKey, type AppKey, type ServiceApp } from './mapper.js';
import type { MarathonApp } from './types.js';

/** What we ask Marathon to send (server-side filter: the leader serializes nothing else for us). */
export const subscribedEvents = [
  'event_stream_attached',
  'status_update_event',
  'health_status_changed_event',
  'instance_health_changed_event',
  'unhealthy_instance_kill_event',
  'unhealthy_task_kill_event',
  'app_terminated_event',
  'api_post_event',
  'deployment_info',
  'deployment_success',
  'deployment_failed',
  'deployment_step_success',
  'deployment_step_failure',
] as const;

/** Deployments can outlast any resync; their plan tells which apps a `deployment_success` (id only) touched. */
const deploymentPlanTtlSeconds = 3600;
/** A front door's failure report re-checks an app at most once per this many seconds. */
const endpointRecheckSeconds = 1;
/** At most this many single-app fetches at once, so a burst of events does not flood the leader. */
const refreshConcurrency = 8;

export interface MarathonSourceOptions {
  readonly config: MarathonConfig;
  readonly serviceApps?: ReadonlyMap<string, ServiceApp>;
  readonly log: Logger;
  readonly metrics?: Metrics;
  readonly clock?: Clock;
}

interface Owned {
  readonly route: RouteInput;
  readonly taskIds: readonly string[];
}

/** One app of a full sync: its id and what it mapped to (null: skipped, or superseded by a refresh). */
interface MappedApp {
  readonly id: string;
  readonly owned: Owned | null;
}

export class MarathonSource implements RouteSource {
  readonly id = 'marathon';
  readonly client: MarathonClient;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly serviceApps: ReadonlyMap<string, ServiceApp>;
  private sink: SourceSink | null = null;
  private stream: EventStream | null = null;
  private closed = false;
  /** App id → the route it maps to. */
  private readonly byApp = new Map<string, Owned>();
  /** The last mapping of each app with the key of what it was mapped from (see appKey). */
  private readonly mapped = new Map<string, { key: AppKey; owned: Owned; taskHealth: ReadonlyMap<string, boolean> }>();
  /** appKey of the app being mapped, written in place (see writeAppKey). */
  private readonly keyScratch: unknown[] = [];
  /** Route name → app id, to refuse a second app claiming a name. */
  private readonly nameOwner = new Map<string, string>();
  /** Last known health per task id (traefik#653: empty results after a leader failover are not "dead"). */
  private readonly health = new Map<string, boolean>();
  /**
   * Task id → number of the last full sync that listed it, to forget the health of tasks gone. Kept across
   * syncs rather than a Set of 10,000 ids built per sync: updating existing entries allocates nothing (issue #2).
   */
  private readonly taskSeenIn = new Map<string, number>();
  private syncCount = 0;
  /**
   * Tasks an event said ended, with when: a full sync fetched just before the event must not bring their
   * endpoints back. Forgotten after one resync interval (by then Marathon's own answer has caught up).
   */
  private readonly ended = new Map<string, number>();
  /** Deployment id → app ids; and app id → the last fetched app JSON (endpointFailed re-checks within TTL). */
  private readonly cache = new NodeCache({ useClones: false, checkperiod: 0 });
  private syncRunning: Promise<void> | null = null;
  /** Outcomes of targeted refreshes that finished while a full sync was in flight: newer than its data. */
  private touched: Map<string, Owned | null> | null = null;
  private syncAgain = false;
  private syncFailures = 0;
  private resyncTimer: unknown = null;
  private readonly pending = new Set<string>();
  private flushTimer: unknown = null;
  private refreshing = 0;
  private readonly queue: string[] = [];
  /** Resolves after the first full sync, successful or not (tests, bench). */
  readonly firstSync: Promise<void>;
  private resolveFirst!: () => void;

  constructor(private readonly opts: MarathonSourceOptions) {
    this.log = opts.log.child({ component: 'marathon' });
    this.clock = opts.clock ?? realClock;
    this.serviceApps = opts.serviceApps ?? new Map();
    this.client = new MarathonClient({ ...opts.config, log: this.log, ...(opts.metrics ? { metrics: opts.metrics } : {}) });
    this.firstSync = new Promise((r) => (this.resolveFirst = r));
  }

  async start(sink: SourceSink): Promise<void> {
    this.sink = sink;
    const c = this.opts.config;
    this.stream = new EventStream({
      baseUrl: () => this.client.baseUrl,
      headers: () => this.client.headers(),
      eventTypes: subscribedEvents,
      idleTimeout: c.eventsIdleTimeout,
      backoff: c.reconnectBackoff,
      connectTimeout: c.requestTimeout,
      log: this.log,
      clock: this.clock,
      onOpen: () => this.fullSync('event stream (re)connected'),
      onEvent: (e) => this.onEvent(e),
      onDown: (reason, url) => {
        this.opts.metrics?.sseReconnects.inc();
        if (!reason.startsWith('stream ended')) this.client.markFailed(url);
      },
    });
    this.fullSync('start');
    this.stream.start();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stream?.close();
    this.clock.clearTimeout(this.resyncTimer);
    this.clock.clearTimeout(this.flushTimer);
    this.cache.close();
    await this.syncRunning?.catch(() => undefined);
    this.client.close();
  }

  /** A full sync is in flight or queued. */
  get syncing(): boolean {
    return this.syncRunning !== null;
  }

  /** A front door could not reach a task: Marathon may know better already. Re-check that app. */
  endpointFailed(name: string): void {
    const app = this.nameOwner.get(name);
    if (app && !this.cache.has(`fetched:${app}`)) this.refresh(app);
  }

  // ---- full sync ----------------------------------------------------------------------------------------

  /** Coalesced: a request during a running sync runs one more sync after it (events may fall in between). */
  fullSync(reason: string): void {
    if (this.closed) return;
    if (this.syncRunning) {
      this.syncAgain = true;
      return;
    }
    this.syncRunning = this.runSync(reason).finally(() => {
      this.syncRunning = null;
      if (this.syncAgain && !this.closed) {
        this.syncAgain = false;
        this.fullSync('requested during a sync');
      }
    });
  }

  private async runSync(reason: string): Promise<void> {
    const started = performance.now();
    this.clock.clearTimeout(this.resyncTimer);
    this.touched = new Map();
    try {
      const leader = await this.client.discoverLeader();
      // Each app is mapped as it is parsed and then let go (body.ts): only the mappings outlive this call.
      const mapped: MappedApp[] = [];
      let tasks = 0;
      const fetched = await this.client.listApps((raw) => {
        const app = raw as MarathonApp;
        tasks += Array.isArray(app?.tasks) ? app.tasks.length : 0;
        const id = typeof app?.id === 'string' ? app.id : '';
        // A targeted refresh that finished already is newer than this app: applyFullSync takes it instead.
        mapped.push({ id, owned: this.touched?.has(id) ? null : this.map(app) });
      });
      if (this.closed) return;
      const fetchMs = performance.now() - started;
      const routes = this.applyFullSync(mapped);
      this.sink?.replace(routes, { leader });
      const ms = performance.now() - started;
      this.opts.metrics?.syncDuration.observe(ms / 1000);
      this.syncFailures = 0;
      this.log.info({ reason, apps: fetched.apps, tasks, routes: routes.length, bytes: fetched.bytes, leader, fetchMs: Math.round(fetchMs), ms: Math.round(ms) }, 'marathon sync');
      this.scheduleResync(this.opts.config.resyncInterval);
    } catch (err) {
      if (this.closed) return;
      this.opts.metrics?.marathonErrors.inc({ kind: 'sync' });
      this.sink?.failed(err instanceof Error ? err : new Error(String(err)));
      // Retry sooner than the resync interval while Marathon is down, backing off.
      const delay = Math.min(this.opts.config.resyncInterval, backoffDelay(this.syncFailures++, this.opts.config.reconnectBackoff, this.clock.random));
      this.log.warn({ reason, err: describe(err), retryInMs: delay, ms: Math.round(performance.now() - started) }, 'marathon sync failed; keeping last known routes');
      this.scheduleResync(delay);
    } finally {
      this.touched = null;
      this.resolveFirst();
    }
  }

  private scheduleResync(ms: number): void {
    this.clock.clearTimeout(this.resyncTimer);
    this.resyncTimer = this.clock.setTimeout(() => this.fullSync('resync interval'), ms);
  }

  /**
   * Builds the routes from a sync's mapped apps, in app order, and forgets what the sync no longer lists.
   * Runs once per sync, so mostly unoptimized: its loops are indexed or forEach, because for-of there allocates
   * an iterator result (and an entry pair) per step, 10,000s a sync.
   */
  private applyFullSync(apps: readonly MappedApp[]): RouteInput[] {
    const routes: RouteInput[] = [];
    const sync = ++this.syncCount;
    const seen = this.taskSeenIn;
    this.byApp.clear();
    this.nameOwner.clear();
    const touched = this.touched ?? new Map<string, Owned | null>();
    for (let i = 0; i < apps.length; i++) {
      const id = apps[i]!.id;
      const mapped = touched.has(id) ? (touched.get(id) ?? null) : apps[i]!.owned;
      touched.delete(id);
      if (!mapped) continue;
      const taskIds = mapped.taskIds;
      for (let t = 0; t < taskIds.length; t++) seen.set(taskIds[t]!, sync);
      if (this.claim(id, mapped.route.name)) {
        this.byApp.set(id, mapped);
        routes.push(mapped.route);
      }
    }
    // Apps that appeared after the sync's fetch.
    for (const [id, mapped] of touched) {
      if (!mapped || !this.claim(id, mapped.route.name)) continue;
      for (const t of mapped.taskIds) seen.set(t, sync);
      this.byApp.set(id, mapped);
      routes.push(mapped.route);
    }
    this.mapped.forEach((_m, id) => {
      if (!this.byApp.has(id)) this.mapped.delete(id);
    });
    seen.forEach((last, id) => {
      if (last !== sync) seen.delete(id);
    });
    this.health.forEach((_h, id) => {
      if (!seen.has(id)) this.health.delete(id);
    });
    const forgetBefore = Date.now() - this.opts.config.resyncInterval;
    for (const [id, at] of this.ended) if (at < forgetBefore) this.ended.delete(id);
    return routes;
  }

  private map(app: MarathonApp): Owned | null {
    try {
      // A task an event said ended is taken out below: such an app is mapped afresh, never from the cache.
      const keyLength = this.ended.size === 0 ? writeAppKey(app, this.health, this.keyScratch) : -1;
      const cached = keyLength >= 0 ? this.mapped.get(app.id) : undefined;
      if (cached && sameAppKey(cached.key, this.keyScratch, keyLength)) {
        cached.taskHealth.forEach((alive, task) => this.health.set(task, alive));
        return cached.owned;
      }
      const mapped = mapApp(app, { mastersGroup: this.opts.config.mastersGroup, serviceApps: this.serviceApps, lastHealth: this.health });
      if (!mapped) return null;
      for (const [task, alive] of mapped.taskHealth) this.health.set(task, alive);
      let taskIds = Array.isArray(app.tasks) ? app.tasks.map((t) => t.id) : [];
      let route = mapped.route;
      if (this.ended.size > 0) {
        for (const t of taskIds) {
          if (!this.ended.has(t)) continue;
          route = withoutTask(route, t, 'TASK_KILLED') ?? route;
        }
        taskIds = taskIds.filter((t) => !this.ended.has(t));
      }
      const owned = { route, taskIds };
      if (keyLength >= 0) this.mapped.set(app.id, { key: this.keyScratch.slice(0, keyLength), owned, taskHealth: mapped.taskHealth });
      else this.mapped.delete(app.id);
      return owned;
    } catch (err) {
      this.mapped.delete((app as { id?: string } | null)?.id ?? '');
      this.opts.metrics?.marathonErrors.inc({ kind: 'bad_app' });
      this.log.warn({ app: (app as { id?: unknown } | null)?.id, err: describe(err) }, 'skipping an app Marathon described badly');
      return null;
    }
  }

  private claim(appId: string, name: string): boolean {
    const owner = this.nameOwner.get(name);
    if (owner !== undefined && owner !== appId) {
      this.log.warn({ route: name, app: appId, owner }, 'route name already taken by another app; skipping');
      return false;
    }
    this.nameOwner.set(name, appId);
    return true;
  }

  // ---- events -------------------------------------------------------------------------------------------

  private onEvent(e: SseEvent): void {
    if (e.event === 'event_stream_attached' || this.closed) return;
    let body: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(e.data);
      if (!parsed || typeof parsed !== 'object') throw new Error('not a JSON object');
      body = parsed as Record<string, unknown>;
    } catch (err) {
      this.opts.metrics?.marathonErrors.inc({ kind: 'malformed_event' });
      this.log.warn({ event: e.event, err: (err as Error).message, data: e.data.slice(0, 200) }, 'skipping a malformed event');
      return;
    }
    const type = typeof body['eventType'] === 'string' ? body['eventType'] : e.event;
    for (const app of this.appsNamedBy(type, body)) {
      if (type === 'status_update_event') this.dropEndedTask(app, body);
      this.refresh(app);
    }
  }

  /** The app ids an event is about. Deployment events carry a plan; `deployment_success` may carry only its id. */
  private appsNamedBy(type: string, body: Record<string, unknown>): string[] {
    const str = (v: unknown) => (typeof v === 'string' && v.startsWith('/') ? v : null);
    const one = str(body['appId']) ?? str(body['runSpecId']) ?? str((body['appDefinition'] as { id?: unknown } | undefined)?.id);
    if (one) return [one];
    if (!type.startsWith('deployment_')) return [];
    const plan = (body['plan'] ?? null) as { id?: unknown; steps?: unknown } | null;
    const ids = new Set<string>();
    const visit = (node: unknown, depth: number): void => {
      if (!node || typeof node !== 'object' || depth > 6) return;
      if (Array.isArray(node)) return node.forEach((n) => visit(n, depth + 1));
      const rec = node as Record<string, unknown>;
      const app = str(rec['app']);
      if (app) ids.add(app);
      for (const k of ['steps', 'actions', 'currentStep']) visit(rec[k], depth + 1);
    };
    visit(plan, 0);
    visit(body['currentStep'], 0);
    const deploymentId = typeof plan?.id === 'string' ? plan.id : typeof body['id'] === 'string' ? body['id'] : null;
    if (deploymentId) {
      const key = `deployment:${deploymentId}`;
      if (ids.size > 0) this.cache.set(key, [...ids], deploymentPlanTtlSeconds);
      else for (const id of this.cache.get<string[]>(key) ?? []) ids.add(id);
      if (type === 'deployment_success' || type === 'deployment_failed') this.cache.del(key);
    }
    return [...ids];
  }

  /** marathon-lb#129, traefik#210: drop a dying task's endpoints now, not after the refetch, to avoid 5xx. */
  private dropEndedTask(appId: string, body: Record<string, unknown>): void {
    const status = body['taskStatus'];
    const taskId = body['taskId'];
    if (typeof status !== 'string' || typeof taskId !== 'string' || !endedTaskStates.has(status)) return;
    this.health.delete(taskId);
    this.ended.set(taskId, Date.now());
    const owned = this.byApp.get(appId);
    if (!owned) return;
    const next = withoutTask(owned.route, taskId, status);
    if (!next) return;
    this.byApp.set(appId, { route: next, taskIds: owned.taskIds.filter((t) => t !== taskId) });
    this.sink?.upsert(next);
    this.log.info({ route: next.name, task: taskId, status }, 'endpoint removed on task end');
  }

  /** Queue a targeted refresh of one app; events within `coalesce` ms cause one fetch per app. */
  private refresh(appId: string): void {
    this.cache.del(`fetched:${appId}`);
    this.pending.add(appId);
    if (this.flushTimer !== null) return;
    this.flushTimer = this.clock.setTimeout(() => {
      this.flushTimer = null;
      for (const id of this.pending) if (!this.queue.includes(id)) this.queue.push(id);
      this.pending.clear();
      this.pump();
    }, this.opts.config.coalesce);
  }

  private pump(): void {
    while (this.refreshing < refreshConcurrency && this.queue.length > 0 && !this.closed) {
      const id = this.queue.shift()!;
      this.refreshing++;
      this.refreshOne(id).finally(() => {
        this.refreshing--;
        this.pump();
      });
    }
  }

  private async refreshOne(appId: string): Promise<void> {
    const started = performance.now();
    let app: MarathonApp | null;
    try {
      app = await this.client.getApp(appId);
    } catch (err) {
      // Keep what we have; the next full sync settles it.
      this.opts.metrics?.marathonErrors.inc({ kind: 'refresh' });
      this.log.warn({ app: appId, err: describe(err) }, 'app refresh failed; keeping its route');
      return;
    }
    if (this.closed) return;
    const prev = this.byApp.get(appId);
    if (app === null) {
      this.touched?.set(appId, null);
      if (!prev) return;
      this.byApp.delete(appId);
      this.mapped.delete(appId);
      this.nameOwner.delete(prev.route.name);
      for (const t of prev.taskIds) this.health.delete(t);
      this.sink?.remove(prev.route.name);
      this.log.info({ app: appId, route: prev.route.name }, 'app removed from Marathon');
      return;
    }
    this.cache.set(`fetched:${appId}`, true, endpointRecheckSeconds);
    const mapped = this.map(app);
    this.touched?.set(appId, mapped);
    if (prev && (!mapped || mapped.route.name !== prev.route.name)) {
      this.byApp.delete(appId);
      this.nameOwner.delete(prev.route.name);
      this.sink?.remove(prev.route.name);
    }
    if (!mapped || !this.claim(appId, mapped.route.name)) return;
    const live = new Set(mapped.taskIds);
    for (const t of prev?.taskIds ?? []) if (!live.has(t)) this.health.delete(t);
    this.byApp.set(appId, mapped);
    this.sink?.upsert(mapped.route);
    this.log.debug({ app: appId, route: mapped.route.name, state: mapped.route.state, ms: Math.round(performance.now() - started) }, 'app refreshed');
  }
}
