/**
 * Marathon app JSON → RouteInput. Pure: everything it needs comes in, everything it learned goes out
 * (the health per task, which the source remembers across leader failovers, traefik#653).
 */
import { appIdToMasterName, isRouteName } from '../naming.js';
import { emptyEndpoints, portNames, type Endpoint, type PortName, type RouteInput, type RouteState } from '../types.js';
import { endedTaskStates, type MarathonApp, type MarathonTask } from './types.js';

export interface ServiceApp {
  readonly name: string;
  readonly stripPrefix: boolean;
}

export interface MapContext {
  readonly mastersGroup: string;
  /** Marathon app id → infrastructure service (config `services.<name>.app`). */
  readonly serviceApps: ReadonlyMap<string, ServiceApp>;
  /** Last known health per task id: Marathon returns no results until it re-checks after a failover. */
  readonly lastHealth?: ReadonlyMap<string, boolean>;
}

export interface MappedApp {
  readonly route: RouteInput;
  /** Health per task id where known (fresh results, or remembered ones still in force). */
  readonly taskHealth: ReadonlyMap<string, boolean>;
}

export class BadAppError extends Error {
  override readonly name = 'BadAppError';
}

type Networking = 'host' | 'bridge' | 'user';

interface PortSpec {
  readonly name: string | undefined;
  readonly servicePort: number | undefined;
  readonly containerPort: number | undefined;
}

const startingStates = new Set(['TASK_STAGING', 'TASK_STARTING', 'TASK_PROVISIONING', 'TASK_CREATED']);
const portAliases: Readonly<Record<PortName, readonly string[]>> = { http: ['http'], jnlp: ['jnlp', 'agent'], ssh: ['ssh'] };

/** Returns null for apps that are neither masters nor configured services. Throws BadAppError on nonsense. */
export function mapApp(app: MarathonApp, ctx: MapContext): MappedApp | null {
  if (!app || typeof app.id !== 'string' || !app.id.startsWith('/')) throw new BadAppError(`app without a valid id: ${JSON.stringify(app?.id)}`);
  const labels = stringLabels(app.labels);
  const identity = identify(app.id, labels, ctx);
  if (!identity) return null;

  const networking = networkingOf(app);
  const specs = portSpecs(app, networking);
  const index = portIndexes(specs, labels);
  const hasHealthChecks = Array.isArray(app.healthChecks) && app.healthChecks.length > 0;
  const tasks = Array.isArray(app.tasks) ? app.tasks : [];
  const endpoints = emptyEndpoints() as Record<PortName, Endpoint[]>;
  const taskHealth = new Map<string, boolean>();
  let running = 0;
  let unknownHealth = 0;
  let failing: MarathonTask | undefined;
  let staging: MarathonTask | undefined;

  for (const task of tasks) {
    if (!task || typeof task.id !== 'string') throw new BadAppError(`${app.id}: task without an id`);
    const state = taskState(task);
    if (startingStates.has(state)) {
      staging ??= task;
      continue;
    }
    if (state !== 'TASK_RUNNING') continue;
    running++;
    if (hasHealthChecks) {
      const alive = healthOf(task, ctx.lastHealth);
      if (alive === undefined) {
        unknownHealth++;
        continue;
      }
      taskHealth.set(task.id, alive);
      if (!alive) {
        failing ??= task;
        continue;
      }
    }
    for (const p of portNames) {
      const i = index[p];
      if (i === undefined) continue;
      const ep = endpointOf(task, i, specs[i], networking);
      if (ep) endpoints[p].push(ep);
    }
  }

  const healthy = portNames.some((p) => endpoints[p].length > 0);
  const { state, detail } = healthy
    ? { state: 'running' as RouteState, detail: undefined }
    : notRunning(app, { running, unknownHealth, failing, staging, tasks: tasks.length });
  const route: RouteInput = {
    name: identity.name,
    kind: identity.kind,
    app: app.id,
    state,
    ...(detail ? { detail } : {}),
    endpoints,
    servicePorts: servicePortsOf(specs, index, labels, tasks),
    path: labels['ci-edge.path'] ?? `/${identity.name}`,
    stripPrefix: identity.stripPrefix,
    labels,
    source: 'marathon',
  };
  return { route, taskHealth };
}

/**
 * Everything `mapApp` reads from one app, flattened into primitives: equal keys map to equal routes, so a full
 * sync re-maps only the apps that changed (2000 apps, 10,000 tasks: mapping was a third of a sync).
 * Marathon bumps `version` on every change of the app definition (ports, labels, health checks,
 * instances); what changes without a new version is runtime: deployments and the tasks. Null when the
 * app has no version (then it is always mapped).
 *
 * A flat array compared element by element (sameAppKey), not a string: building and comparing a ~1.5 KB
 * string per app cost ~20 ms of a 2000-app sync in string concatenation, cons-string flattening and the
 * garbage it left (issue #2, bench/registry.ts). Every list is prefixed by its length (or `notAList` and the
 * raw value), so equal keys have equal structure; an object where a primitive is expected never equals
 * one from another parse, which only means "re-map", never a wrong reuse.
 */
export type AppKey = readonly unknown[];

/** Stands before a value that should have been an array; never equal to anything JSON.parse returns. */
const notAList: unique symbol = Symbol('not a list');

export function appKey(app: MarathonApp, lastHealth?: ReadonlyMap<string, boolean>): AppKey | null {
  const k: unknown[] = [];
  return writeAppKey(app, lastHealth, k) < 0 ? null : k;
}

/**
 * Writes appKey into `into` from index 0 (entries past the returned length are left over from earlier use) and
 * returns its length, or -1 for no key. A full sync writes every app's key into one reused array and copies it
 * only for the apps that changed: growing a fresh ~90-entry array per app was ~5 MB of garbage per sync, and
 * each scavenge during a sync also copies the just-parsed /v2/apps body (issue #2).
 */
export function writeAppKey(app: MarathonApp, lastHealth: ReadonlyMap<string, boolean> | undefined, into: unknown[]): number {
  if (!app || typeof app.version !== 'string') return -1;
  const k = into;
  let n = 0;
  k[n++] = app.version;
  k[n++] = app.instances;
  const deployments: unknown = app.deployments;
  if (Array.isArray(deployments)) {
    k[n++] = deployments.length;
    for (const d of deployments) k[n++] = (d as { id?: unknown } | null)?.id;
  } else k[n++] = notAList;
  const tasks: unknown = app.tasks;
  if (!Array.isArray(tasks)) {
    k[n++] = notAList;
    return n;
  }
  k[n++] = tasks.length;
  for (const t of tasks as (MarathonTask | null)[]) {
    if (!t) return -1;
    k[n++] = t.id;
    k[n++] = t.state;
    k[n++] = t.host;
    n = writeList(k, n, t.ports);
    n = writeList(k, n, t.servicePorts);
    k[n++] = t.stagedAt;
    k[n++] = t.startedAt;
    k[n++] = t.ipAddresses?.[0]?.ipAddress;
    const results: unknown = t.healthCheckResults;
    if (Array.isArray(results) && results.length > 0) {
      k[n++] = results.length;
      for (const r of results as ({ alive?: unknown; lastFailureCause?: unknown } | null)[]) {
        k[n++] = r?.alive;
        k[n++] = r?.lastFailureCause;
      }
    } else {
      // No results (e.g. just after a leader failover): the remembered health decides (traefik#653).
      k[n++] = 0;
      k[n++] = lastHealth?.get(t.id);
    }
  }
  return n;
}

function writeList(k: unknown[], n: number, v: unknown): number {
  if (Array.isArray(v)) {
    k[n++] = v.length;
    for (const x of v) k[n++] = x;
  } else {
    k[n++] = notAList;
    k[n++] = v;
  }
  return n;
}

/** Whether `key` equals the first `length` entries of `written` (by default all of it). */
export function sameAppKey(key: AppKey, written: readonly unknown[], length = written.length): boolean {
  if (key.length !== length) return false;
  for (let i = 0; i < length; i++) if (key[i] !== written[i]) return false;
  return true;
}

/** appKey as one string, for logs and tests; the source compares keys with sameAppKey. */
export function appFingerprint(app: MarathonApp, lastHealth?: ReadonlyMap<string, boolean>): string | null {
  const key = appKey(app, lastHealth);
  if (!key) return null;
  return JSON.stringify(key.map((v) => (v === notAList ? '<not a list>' : v === undefined ? '<undefined>' : v)));
}

function identify(id: string, labels: Record<string, string>, ctx: MapContext): { name: string; kind: 'master' | 'service'; stripPrefix: boolean } | null {
  const service = ctx.serviceApps.get(id);
  const stripLabel = labels['ci-edge.strip-prefix'];
  const strip = (dflt: boolean) => (stripLabel === undefined ? dflt : stripLabel === 'true');
  if (service) return { name: service.name, kind: 'service', stripPrefix: strip(service.stripPrefix) };
  const labelName = labels['ci-edge.name'];
  if (labelName !== undefined) {
    if (!isRouteName(labelName)) throw new BadAppError(`${id}: label ci-edge.name ${JSON.stringify(labelName)} is not a DNS label`);
    return { name: labelName, kind: 'master', stripPrefix: strip(false) };
  }
  const name = appIdToMasterName(id, ctx.mastersGroup);
  // Jenkins masters run with --prefix=/<name>, so their path is passed unchanged by default.
  return name ? { name, kind: 'master', stripPrefix: strip(false) } : null;
}

function stringLabels(labels: unknown): Record<string, string> {
  if (!labels || typeof labels !== 'object') return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** 1.5+: `networks[0].mode`; before: `container.docker.network` or an `ipAddress` block (USER). */
function networkingOf(app: MarathonApp): Networking {
  const mode = app.networks?.[0]?.mode;
  if (mode === 'container/bridge') return 'bridge';
  if (mode === 'container') return 'user';
  if (mode === 'host') return 'host';
  const legacy = app.container?.docker?.network;
  if (legacy === 'BRIDGE') return 'bridge';
  if (legacy === 'USER' || app.ipAddress) return 'user';
  return 'host';
}

function portSpecs(app: MarathonApp, networking: Networking): PortSpec[] {
  const mappings = app.container?.portMappings ?? app.container?.docker?.portMappings;
  if (networking !== 'host' && Array.isArray(mappings) && mappings.length > 0) {
    return mappings.map((m) => ({ name: m?.name, servicePort: positive(m?.servicePort), containerPort: positive(m?.containerPort) }));
  }
  const discovery = app.ipAddress?.discovery?.ports;
  if (networking === 'user' && Array.isArray(discovery) && discovery.length > 0) {
    return discovery.map((d) => ({ name: d?.name, servicePort: undefined, containerPort: positive(d?.number) }));
  }
  if (Array.isArray(app.portDefinitions) && app.portDefinitions.length > 0) {
    // Host networking: portDefinitions[].port is the service port; the task's ports are the host ports.
    return app.portDefinitions.map((d) => ({ name: d?.name, servicePort: positive(d?.port), containerPort: undefined }));
  }
  if (Array.isArray(app.ports)) return app.ports.map((p) => ({ name: undefined, servicePort: positive(p), containerPort: undefined }));
  const n = Math.max(0, ...(app.tasks ?? []).map((t) => t?.ports?.length ?? 0));
  return Array.from({ length: n }, () => ({ name: undefined, servicePort: undefined, containerPort: undefined }));
}

const positive = (n: unknown): number | undefined => (typeof n === 'number' && Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined);

/**
 * Port name → index into the app's ports. Names win; without any recognised name, index 0/1/2 in the order
 * http, jnlp, ssh. The label `ci-edge.<port>.port` may name another port (`web`) to use.
 */
function portIndexes(specs: readonly PortSpec[], labels: Record<string, string>): Partial<Record<PortName, number>> {
  const out: Partial<Record<PortName, number>> = {};
  const lower = specs.map((s) => s.name?.toLowerCase());
  let named = false;
  for (const p of portNames) {
    const wanted = labels[`ci-edge.${p}.port`];
    const byLabel = wanted !== undefined && !/^\d+$/.test(wanted) ? lower.indexOf(wanted.toLowerCase()) : -1;
    const i = byLabel !== -1 ? byLabel : lower.findIndex((n) => n !== undefined && portAliases[p].includes(n));
    if (i !== -1) {
      out[p] = i;
      named = true;
    }
  }
  if (named) return out;
  portNames.forEach((p, i) => {
    if (i < specs.length) out[p] = i;
  });
  return out;
}

/** Tasks from Marathon < 1.0 carry no `state`; a started task was running. */
function taskState(task: MarathonTask): string {
  if (typeof task.state === 'string') return task.state;
  return task.startedAt ? 'TASK_RUNNING' : 'TASK_STAGING';
}

function healthOf(task: MarathonTask, lastHealth: ReadonlyMap<string, boolean> | undefined): boolean | undefined {
  const results = Array.isArray(task.healthCheckResults) ? task.healthCheckResults : [];
  if (results.length === 0) return lastHealth?.get(task.id);
  return results.every((r) => r?.alive === true);
}

function endpointOf(task: MarathonTask, i: number, spec: PortSpec | undefined, networking: Networking): Endpoint | null {
  if (networking === 'user') {
    const ip = task.ipAddresses?.[0]?.ipAddress;
    const port = spec?.containerPort;
    return ip && port ? { host: ip, port, taskId: task.id } : null;
  }
  const port = positive(task.ports?.[i]);
  return task.host && port ? { host: task.host, port, taskId: task.id } : null;
}

function servicePortsOf(
  specs: readonly PortSpec[],
  index: Partial<Record<PortName, number>>,
  labels: Record<string, string>,
  tasks: readonly MarathonTask[],
): Partial<Record<PortName, number>> {
  const out: Partial<Record<PortName, number>> = {};
  for (const p of portNames) {
    const wanted = labels[`ci-edge.${p}.port`];
    const fromLabel = wanted !== undefined && /^\d+$/.test(wanted) ? positive(Number(wanted)) : undefined;
    const i = index[p];
    const sp = fromLabel ?? (i === undefined ? undefined : (specs[i]?.servicePort ?? positive(tasks[0]?.servicePorts?.[i])));
    if (sp !== undefined) out[p] = sp;
  }
  return out;
}

/** `12:03` (UTC) from an ISO time, for details like "task staging since 12:03". */
function hhmm(iso: string | null | undefined): string {
  return typeof iso === 'string' && iso.length >= 16 ? iso.slice(11, 16) : 'an unknown time';
}

function notRunning(
  app: MarathonApp,
  c: { running: number; unknownHealth: number; failing: MarathonTask | undefined; staging: MarathonTask | undefined; tasks: number },
): { state: RouteState; detail: string } {
  if (c.staging) {
    const st = taskState(c.staging).slice('TASK_'.length).toLowerCase();
    return { state: 'starting', detail: `task ${st} since ${hhmm(c.staging.stagedAt)}` };
  }
  if (c.unknownHealth > 0) return { state: 'starting', detail: 'task running, waiting for its first health check' };
  if (c.failing) {
    const cause = c.failing.healthCheckResults?.find((r) => r?.alive === false)?.lastFailureCause;
    return { state: 'unhealthy', detail: `${c.running} task${c.running === 1 ? '' : 's'} failing health checks${cause ? ` (${cause})` : ''}` };
  }
  if (Array.isArray(app.deployments) && app.deployments.length > 0) return { state: 'starting', detail: 'deployment running' };
  if (c.running > 0) return { state: 'unhealthy', detail: 'running tasks expose none of the http, jnlp, ssh ports' };
  if (app.instances === 0) return { state: 'unhealthy', detail: 'suspended (instances: 0)' };
  return { state: 'unhealthy', detail: c.tasks === 0 ? 'no tasks' : 'no running task' };
}

/** For a status_update_event that ends a task: the route without that task's endpoints, before any refetch. */
export function withoutTask(route: RouteInput, taskId: string, taskStatus: string): RouteInput | null {
  if (!portNames.some((p) => route.endpoints[p].some((e) => e.taskId === taskId))) return null;
  const endpoints = emptyEndpoints() as Record<PortName, Endpoint[]>;
  for (const p of portNames) endpoints[p] = route.endpoints[p].filter((e) => e.taskId !== taskId);
  const left = portNames.some((p) => endpoints[p].length > 0);
  const { detail: _d, ...rest } = route;
  return left
    ? { ...rest, endpoints, ...(route.detail ? { detail: route.detail } : {}) }
    : { ...rest, endpoints, state: 'starting', detail: `task ${taskStatus.slice('TASK_'.length).toLowerCase()}; waiting for a replacement` };
}

export { endedTaskStates };
