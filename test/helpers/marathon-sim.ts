/**
 * A Marathon simulator: a real HTTP server on 127.0.0.1:0 speaking Marathon's wire formats, with controls.
 *
 *   const sim = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: 8081 } })] });
 *   sim.url                                   // http://127.0.0.1:PORT
 *   sim.upsertApp(app)                        // emits api_post_event + status_update_event for changed tasks
 *   sim.removeApp('/masters/master1')         // emits app_terminated_event
 *   sim.moveTask('/masters/master1', { host, ports: [http, jnlp, ssh] })  // TASK_KILLED old, TASK_RUNNING new
 *   sim.emit('deployment_success', { id })    // any event, verbatim
 *   sim.cutStreams()                          // destroys every open /v2/events stream
 *   sim.setMode('ok' | 'error' | 'hang' | 'malformed')
 *   sim.requests / sim.count('/v2/apps')      // what was asked, to assert call counts
 *   await sim.close()
 *
 * Endpoints: `GET /v2/apps` (honours `embed=apps.tasks`), `GET /v2/apps/<id>` (`embed=app.tasks`; 404
 * `{"message":"App '/x' does not exist"}`), `GET /v2/apps/<id>/tasks`, `GET /v2/leader`, `GET /v2/info`, and
 * `GET /v2/events`: 405 unless `Accept: text/event-stream` exactly; CRLF line ends; `event_stream_attached`
 * first; a bare CRLF heartbeat every `heartbeatMs` (Marathon: 10 s); `event_type=` filters. A standby
 * (`leader` set to another sim's URL) answers /v2/events with a redirect to the leader and proxies the rest
 * of the API to it, as Marathon does.
 * Payload shapes are copied from ../shared/fixtures/marathon (third-party/marathon-lb/marathon15_apps.json,
 * zdd_app_blue_marathon1.5.json, raml-info.json, raml-events-sse.txt).
 */
import { randomUUID } from 'node:crypto';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { MarathonApp, MarathonPortMapping, MarathonTask } from '../../src/registry/marathon/types.js';

export type { MarathonApp, MarathonTask } from '../../src/registry/marathon/types.js';

export type SimMode = 'ok' | 'error' | 'hang' | 'malformed';

export interface SimOptions {
  apps?: MarathonApp[];
  /** Heartbeat interval of /v2/events (a bare CRLF). Marathon's is 10 s. */
  heartbeatMs?: number;
  /** URL of the leader when this sim plays a standby; default: itself. */
  leader?: string;
  /** Status of the standby's /v2/events redirect. */
  redirectStatus?: 302 | 307;
}

export interface SimRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly accept: string | undefined;
  readonly authorization: string | undefined;
}

export interface MarathonSim {
  readonly url: string;
  /** `host:port`, as /v2/leader reports it. */
  readonly hostPort: string;
  readonly requests: SimRequest[];
  /** Requests for exactly this path (`/v2/apps`, `/v2/apps/masters/master1`, `/v2/events`). */
  count(path: string): number;
  /** Event streams open right now. */
  readonly streams: number;
  /** Resolves when the n-th stream (counted since start, 1-based) has attached. */
  waitForStream(n: number, timeoutMs?: number): Promise<void>;
  readonly streamsOpened: number;
  /** Heartbeats written, over all streams. */
  readonly heartbeats: number;
  apps(): MarathonApp[];
  app(id: string): MarathonApp | undefined;
  upsertApp(app: MarathonApp, opts?: { silent?: boolean }): void;
  removeApp(id: string): void;
  moveTask(appId: string, to?: { host?: string; ports?: number[] }): MarathonTask;
  /** Patches one task (by index or id) and emits the status or health event Marathon would. */
  updateTask(appId: string, task: number | string, patch: Partial<MarathonTask>): MarathonTask;
  emit(eventType: string, body?: Record<string, unknown>): void;
  cutStreams(opts?: { graceful?: boolean }): void;
  setMode(mode: SimMode): void;
  setLeader(leaderUrl: string | null): void;
  /** Writes raw bytes to every open stream (wire-format tests). */
  writeRaw(bytes: string | Buffer): void;
  close(): Promise<void>;
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
};

function withoutTasks(app: MarathonApp): MarathonApp {
  const { tasks: _t, ...rest } = app;
  return rest;
}

function sseFrame(eventType: string, data: unknown): string {
  return `event: ${eventType}\r\ndata: ${JSON.stringify(data)}\r\n\r\n`;
}

export async function startMarathonSim(opts: SimOptions = {}): Promise<MarathonSim> {
  const apps = new Map<string, MarathonApp>();
  for (const a of opts.apps ?? []) apps.set(a.id, structuredClone(a));
  const heartbeatMs = opts.heartbeatMs ?? 10_000;
  let mode: SimMode = 'ok';
  let leader: string | null = opts.leader ?? null;
  const requests: SimRequest[] = [];
  const sockets = new Set<Socket>();
  const streams = new Set<{ res: ServerResponse; filter: Set<string> | null; timer: NodeJS.Timeout }>();
  let streamsOpened = 0;
  let heartbeats = 0;
  const streamWaiters: { n: number; resolve: () => void }[] = [];
  // The big /v2/apps body is serialized once per change, so a bench measures the client, not the sim.
  const bodyCache = new Map<string, string>();
  const dirty = () => bodyCache.clear();

  const server = createServer((req, res) => handle(req, res));
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const hostPort = `127.0.0.1:${port}`;

  function appsBody(embedTasks: boolean): string {
    const key = embedTasks ? 'tasks' : 'plain';
    let body = bodyCache.get(key);
    if (body === undefined) {
      body = JSON.stringify({ apps: [...apps.values()].map((a) => (embedTasks ? a : withoutTasks(a))) });
      bodyCache.set(key, body);
    }
    return body;
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const u = new URL(req.url ?? '/', url);
    const path = u.pathname;
    requests.push({ method: req.method ?? 'GET', path, query: u.searchParams, accept: req.headers.accept, authorization: req.headers.authorization });
    if (mode === 'hang') return; // the socket stays open until the client gives up or close()
    if (mode === 'error') return json(res, 500, { message: 'An unexpected server error occurred.' });
    if (req.method !== 'GET') return json(res, 405, { message: 'HTTP 405 Method Not Allowed' });
    if (path === '/v2/events') return events(req, res, u);
    if (mode === 'malformed') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"apps":[{"id":"/masters/broken","tasks":[{');
      return;
    }
    if (path === '/v2/leader') {
      if (leader === 'none') return json(res, 404, { message: 'There is no leader' });
      return json(res, 200, { leader: leader ? new URL(leader).host : hostPort });
    }
    if (path === '/v2/info') return json(res, 200, info());
    // A standby Marathon proxies the REST API to the leader (its LeaderProxyFilter); only /v2/events redirects.
    if (leader && leader !== 'none') return proxy(req, res, `${leader}${u.pathname}${u.search}`);
    if (path === '/v2/apps' || path === '/v2/apps/') {
      const embed = u.searchParams.getAll('embed');
      const body = appsBody(embed.includes('apps.tasks') || embed.includes('tasks'));
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(body);
      return;
    }
    if (path.startsWith('/v2/apps/')) {
      let id = decodeURIComponent(path.slice('/v2/apps'.length)).replace(/\/+$/, '');
      const tasksOnly = id.endsWith('/tasks') && !apps.has(id);
      if (tasksOnly) id = id.slice(0, -'/tasks'.length);
      const app = apps.get(id);
      if (!app) return json(res, 404, { message: `App '${id}' does not exist` });
      if (tasksOnly) return json(res, 200, { tasks: app.tasks ?? [] });
      const embed = u.searchParams.getAll('embed');
      return json(res, 200, { app: embed.includes('app.tasks') || embed.includes('tasks') ? app : withoutTasks(app) });
    }
    json(res, 404, { message: `HTTP 404 Not Found: ${path}` });
  }

  function proxy(req: IncomingMessage, res: ServerResponse, target: string): void {
    const out = request(target, { method: req.method, headers: { ...req.headers, host: new URL(target).host } }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    out.on('error', () => json(res, 503, { message: 'Could not proxy to the leader' }));
    req.pipe(out);
  }

  function info() {
    const l = leader && leader !== 'none' ? new URL(leader).host : hostPort;
    return {
      name: 'marathon',
      version: '1.5.0',
      buildref: 'unknown',
      elected: leader === null,
      leader: leader === 'none' ? null : l,
      frameworkId: '96d7da70-b731-4cfb-96a7-0ee877af615d-0000',
      marathon_config: { ha: true, hostname: '127.0.0.1', master: 'zk://localhost:2181/mesos', mesos_leader_ui_url: 'http://localhost:5050/', webui_url: url },
      zookeeper_config: { zk: 'zk://localhost:2181/marathon' },
      http_config: { http_port: port, https_port: 8443 },
    };
  }

  function events(req: IncomingMessage, res: ServerResponse, u: URL): void {
    // Marathon's EventsResource only produces text/event-stream; Jersey answers anything else with 405.
    if (req.headers.accept !== 'text/event-stream') return json(res, 405, { message: 'HTTP 405 Method Not Allowed' });
    if (leader && leader !== 'none') {
      res.writeHead(opts.redirectStatus ?? 307, { location: `${leader}${u.pathname}${u.search}` }).end();
      return;
    }
    if (mode === 'malformed') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: status_update_event\r\ndata: {"appId":\r\n\r\n');
    } else {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-store, must-revalidate' });
    }
    res.flushHeaders();
    const types = u.searchParams.getAll('event_type');
    const timer = setInterval(() => {
      heartbeats++;
      res.write('\r\n');
    }, heartbeatMs);
    const stream = { res, filter: types.length ? new Set(types) : null, timer };
    streams.add(stream);
    const drop = () => {
      clearInterval(timer);
      streams.delete(stream);
    };
    res.on('close', drop);
    req.socket.setNoDelay(true);
    // Marathon applies the event_type filter to its own attach notice too.
    if (!stream.filter || stream.filter.has('event_stream_attached')) res.write(sseFrame('event_stream_attached', { remoteAddress: req.socket.remoteAddress, eventType: 'event_stream_attached', timestamp: new Date().toISOString() }));
    streamsOpened++;
    for (const w of [...streamWaiters]) {
      if (streamsOpened >= w.n) {
        streamWaiters.splice(streamWaiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  function emit(eventType: string, body: Record<string, unknown> = {}): void {
    const frame = sseFrame(eventType, { ...body, eventType, timestamp: new Date().toISOString() });
    for (const s of streams) if (!s.filter || s.filter.has(eventType)) s.res.write(frame);
  }

  function statusEvent(app: MarathonApp, task: MarathonTask, status: string): void {
    emit('status_update_event', {
      slaveId: task.slaveId,
      taskId: task.id,
      taskStatus: status,
      message: '',
      appId: app.id,
      host: task.host,
      ipAddresses: task.ipAddresses,
      ports: task.ports,
      version: app.version,
    });
  }

  function must(appId: string): MarathonApp {
    const app = apps.get(appId);
    if (!app) throw new Error(`sim: no app ${appId}`);
    return app;
  }

  const sim: MarathonSim = {
    url,
    hostPort,
    requests,
    count: (p) => requests.filter((r) => r.path === p).length,
    get streams() {
      return streams.size;
    },
    get streamsOpened() {
      return streamsOpened;
    },
    get heartbeats() {
      return heartbeats;
    },
    waitForStream(n, timeoutMs = 10_000) {
      if (streamsOpened >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const w = { n, resolve: () => (clearTimeout(t), resolve()) };
        const t = setTimeout(() => {
          streamWaiters.splice(streamWaiters.indexOf(w), 1);
          reject(new Error(`sim: stream ${n} did not attach within ${timeoutMs} ms (opened ${streamsOpened})`));
        }, timeoutMs);
        streamWaiters.push(w);
      });
    },
    apps: () => [...apps.values()].map((a) => structuredClone(a)),
    app: (id) => {
      const a = apps.get(id);
      return a && structuredClone(a);
    },
    upsertApp(app, o = {}) {
      const prev = apps.get(app.id);
      const next = structuredClone(app);
      apps.set(app.id, next);
      dirty();
      if (o.silent) return;
      emit('api_post_event', { clientIp: '127.0.0.1', uri: `/v2/apps${app.id}`, appDefinition: withoutTasks(next) });
      const before = new Map((prev?.tasks ?? []).map((t) => [t.id, t]));
      for (const t of next.tasks ?? []) if (before.get(t.id)?.state !== t.state) statusEvent(next, t, t.state ?? 'TASK_RUNNING');
      const now = new Set((next.tasks ?? []).map((t) => t.id));
      for (const t of prev?.tasks ?? []) if (!now.has(t.id)) statusEvent(next, t, 'TASK_KILLED');
    },
    removeApp(id) {
      const app = apps.get(id);
      if (!app) return;
      apps.delete(id);
      dirty();
      for (const t of app.tasks ?? []) statusEvent(app, t, 'TASK_KILLED');
      emit('app_terminated_event', { appId: id });
    },
    moveTask(appId, to = {}) {
      const app = must(appId);
      const old = app.tasks?.[0];
      if (!old) throw new Error(`sim: ${appId} has no task`);
      const fresh: MarathonTask = {
        ...structuredClone(old),
        id: taskId(appId),
        host: to.host ?? old.host,
        ports: to.ports ?? old.ports,
        stagedAt: new Date().toISOString(),
        startedAt: new Date().toISOString(),
        state: 'TASK_RUNNING',
      };
      if (fresh.healthCheckResults) fresh.healthCheckResults = fresh.healthCheckResults.map((r) => ({ ...r, instanceId: instanceIdOf(fresh.id) }));
      app.tasks![0] = fresh;
      dirty();
      statusEvent(app, old, 'TASK_KILLED');
      statusEvent(app, fresh, 'TASK_RUNNING');
      return structuredClone(fresh);
    },
    updateTask(appId, which, patch) {
      const app = must(appId);
      const tasks = app.tasks ?? [];
      const i = typeof which === 'number' ? which : tasks.findIndex((t) => t.id === which);
      const old = tasks[i];
      if (!old) throw new Error(`sim: ${appId} has no task ${which}`);
      const next = { ...old, ...structuredClone(patch) };
      tasks[i] = next;
      dirty();
      if (patch.state && patch.state !== old.state) statusEvent(app, next, patch.state);
      if (patch.healthCheckResults) {
        emit('health_status_changed_event', {
          appId,
          taskId: next.id,
          instanceId: instanceIdOf(next.id),
          version: app.version,
          alive: patch.healthCheckResults.every((r) => r.alive),
        });
      }
      return structuredClone(next);
    },
    emit,
    cutStreams(o = {}) {
      for (const s of [...streams]) {
        clearInterval(s.timer);
        if (o.graceful) s.res.end();
        else s.res.destroy();
        streams.delete(s);
      }
    },
    setMode(m) {
      mode = m;
    },
    setLeader(l) {
      leader = l;
    },
    writeRaw(bytes) {
      for (const s of streams) s.res.write(bytes);
    },
    async close() {
      sim.cutStreams();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return sim;
}

// ---------------------------------------------------------------------------------------------------------
// Builders: Marathon 1.5+ app JSON with embedded tasks, in the shapes of the fixtures.

export type Networking = 'host' | 'bridge' | 'user';

export interface TaskSpec {
  /** Agent host (host/bridge networking) or container IP (USER networking). */
  host: string;
  /** Host ports (host/bridge) or container ports (USER), in port order. */
  ports: number[];
  state?: string;
  /** undefined: the app has no health checks; otherwise the one result's `alive`. */
  healthy?: boolean | undefined;
  id?: string;
}

export interface AppSpec {
  networking?: Networking;
  /** Port names, in order; `null` leaves a port unnamed. */
  portNames?: (string | null)[];
  servicePorts?: number[];
  labels?: Record<string, string>;
  tasks: TaskSpec[];
  /** Whether the app has health checks (default: when a task gives `healthy`). */
  healthChecks?: boolean;
  deployments?: { id: string }[];
}


/** Marathon 1.5 task ids: the app id's path with `_` for `/`, a dot, a UUID. */
export function taskId(appId: string): string {
  return `${appId.replace(/^\//, '').replace(/\//g, '_')}.${randomUUID()}`;
}

/** Marathon 1.4+ health results carry the instance id: `<app>.marathon-<uuid>` for a task `<app>.<uuid>`. */
function instanceIdOf(id: string): string {
  const dot = id.indexOf('.');
  return `${id.slice(0, dot)}.marathon-${id.slice(dot + 1)}`;
}

const stamp = '2017-07-19T17:34:41.967Z';

export function marathonApp(id: string, spec: AppSpec): MarathonApp {
  const networking = spec.networking ?? 'host';
  const nPorts = Math.max(spec.portNames?.length ?? 0, ...spec.tasks.map((t) => t.ports.length), 0);
  const names = Array.from({ length: nPorts }, (_, i) => spec.portNames?.[i] ?? null);
  const servicePorts = names.map((_, i) => spec.servicePorts?.[i] ?? 0);
  const withHealth = spec.healthChecks ?? spec.tasks.some((t) => t.healthy !== undefined);
  const app: MarathonApp = {
    id,
    backoffFactor: 1.15,
    backoffSeconds: 1,
    cmd: null,
    cpus: 1,
    disk: 0,
    executor: '',
    instances: spec.tasks.length,
    labels: { ...spec.labels },
    maxLaunchDelaySeconds: 3600,
    mem: 2048,
    gpus: 0,
    requirePorts: false,
    upgradeStrategy: { maximumOverCapacity: 1, minimumHealthCapacity: 1 },
    version: stamp,
    versionInfo: { lastScalingAt: stamp, lastConfigChangeAt: stamp },
    killSelection: 'YOUNGEST_FIRST',
    unreachableStrategy: { inactiveAfterSeconds: 300, expungeAfterSeconds: 600 },
  };
  if (networking === 'host') {
    app.networks = [{ mode: 'host' }];
    app.portDefinitions = names.map((name, i) => ({ port: servicePorts[i] ?? 0, protocol: 'tcp', ...(name ? { name } : {}), labels: {} }));
    app.container = null;
  } else {
    app.networks = networking === 'bridge' ? [{ mode: 'container/bridge' }] : [{ mode: 'container', name: 'dcos' }];
    app.portDefinitions = [];
    const mappings: MarathonPortMapping[] = names.map((name, i) => ({
      // Bridge: the container listens on fixed ports, Mesos picks host ports (`hostPort: 0`). USER: the task's
      // own IP and container port are the endpoint; there is no host port.
      containerPort: networking === 'user' ? (spec.tasks[0]?.ports[i] ?? 8080 + i) : [8080, 50000, 2222][i] ?? 9000 + i,
      ...(networking === 'bridge' ? { hostPort: 0 } : {}),
      labels: {},
      ...(name ? { name } : {}),
      protocol: 'tcp',
      servicePort: servicePorts[i] ?? 0,
    }));
    app.container = {
      type: 'DOCKER',
      docker: { forcePullImage: false, image: 'jenkins/jenkins:lts', parameters: [], privileged: false },
      volumes: [],
      portMappings: mappings,
    };
  }
  if (withHealth) {
    app.healthChecks = [
      { gracePeriodSeconds: 300, intervalSeconds: 60, maxConsecutiveFailures: 3, path: '/login', portIndex: 0, protocol: 'MESOS_HTTP', timeoutSeconds: 20, delaySeconds: 15 },
    ];
  }
  const tasks = spec.tasks.map((t, idx) => buildTask(id, t, networking, servicePorts, withHealth, idx));
  app.tasksStaged = tasks.filter((t) => t.state === 'TASK_STAGING' || t.state === 'TASK_STARTING').length;
  app.tasksRunning = tasks.filter((t) => t.state === 'TASK_RUNNING').length;
  app.tasksHealthy = withHealth ? tasks.filter((t) => t.healthCheckResults?.every((r) => r.alive) && t.healthCheckResults.length > 0).length : 0;
  app.tasksUnhealthy = withHealth ? tasks.filter((t) => t.healthCheckResults?.some((r) => !r.alive)).length : 0;
  app.deployments = spec.deployments ?? [];
  app.tasks = tasks;
  return app;
}

function buildTask(appId: string, t: TaskSpec, networking: Networking, servicePorts: number[], withHealth: boolean, idx: number): MarathonTask {
  const id = t.id ?? taskId(appId);
  const state = t.state ?? 'TASK_RUNNING';
  const running = state === 'TASK_RUNNING';
  const task: MarathonTask = {
    // USER networking: the container IP is the address; the agent is somewhere else.
    ipAddresses: [{ ipAddress: networking === 'user' ? t.host : `172.17.0.${2 + (idx % 250)}`, protocol: 'IPv4' }],
    stagedAt: '2017-07-19T17:34:43.039Z',
    state,
    ports: networking === 'user' ? [] : t.ports,
    startedAt: running ? '2017-07-19T17:35:15.654Z' : null,
    version: stamp,
    id,
    appId,
    slaveId: 'db7b40e2-791c-445f-b373-183e2a648a86-S1',
    host: networking === 'user' ? '10.0.2.148' : t.host,
    servicePorts,
  };
  if (withHealth && running && t.healthy !== undefined) {
    task.healthCheckResults = [
      {
        alive: t.healthy,
        consecutiveFailures: t.healthy ? 0 : 3,
        firstSuccess: '2017-07-19T17:36:01.000Z',
        lastFailure: t.healthy ? null : '2017-07-19T17:40:01.000Z',
        lastSuccess: '2017-07-19T17:39:01.000Z',
        lastFailureCause: t.healthy ? undefined : 'ConnectionRefused',
        instanceId: instanceIdOf(id),
      },
    ];
  } else if (withHealth && running) {
    task.healthCheckResults = [];
  }
  return task;
}

export interface MasterOptions {
  host: string;
  ports: { http: number; jnlp?: number; ssh?: number };
  group?: string;
  state?: string;
  healthy?: boolean | undefined;
  networking?: Networking;
  servicePorts?: { http?: number; jnlp?: number; ssh?: number };
  labels?: Record<string, string>;
  /** More tasks of the same app (scaled masters are rare, but services are not). */
  extraTasks?: TaskSpec[];
  /** Leave ports unnamed, so the mapper falls back to index 0/1/2. */
  unnamedPorts?: boolean;
}

/** A Jenkins master `/masters/<name>` with named ports http, jnlp, ssh (those given). */
export function masterApp(name: string, o: MasterOptions): MarathonApp {
  const group = (o.group ?? '/masters').replace(/\/$/, '');
  const which = (['http', 'jnlp', 'ssh'] as const).filter((p) => o.ports[p] !== undefined);
  const ports = which.map((p) => o.ports[p]!);
  return marathonApp(`${group}/${name}`, {
    networking: o.networking ?? 'host',
    portNames: which.map((p) => (o.unnamedPorts ? null : p)),
    servicePorts: which.map((p) => o.servicePorts?.[p] ?? 0),
    labels: o.labels ?? {},
    tasks: [{ host: o.host, ports, state: o.state ?? 'TASK_RUNNING', healthy: o.healthy }, ...(o.extraTasks ?? [])],
  });
}

/** Any app: `serviceApp('/cjoc', { host, ports: [8888] })`, or several tasks. */
export function serviceApp(
  id: string,
  o: { host?: string; ports?: number[]; tasks?: TaskSpec[]; portNames?: (string | null)[]; networking?: Networking; healthy?: boolean; labels?: Record<string, string>; servicePorts?: number[] },
): MarathonApp {
  const tasks = o.tasks ?? (o.host ? [{ host: o.host, ports: o.ports ?? [], healthy: o.healthy }] : []);
  return marathonApp(id, {
    networking: o.networking ?? 'host',
    portNames: o.portNames ?? (o.ports ?? tasks[0]?.ports ?? []).map((_, i) => (i === 0 ? 'http' : null)),
    labels: o.labels ?? {},
    tasks,
    ...(o.servicePorts ? { servicePorts: o.servicePorts } : {}),
  });
}
