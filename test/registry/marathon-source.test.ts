import t from 'tap';
import { subscribedEvents } from '../../src/registry/marathon/source.js';
import { masterApp, serviceApp, startMarathonSim, type MarathonApp } from '../helpers/marathon-sim.js';
import { capturingLogger, httpOf, marathonConfig, settled, startSource, until, waitFor } from './harness.js';

const ready = (h: { registry: { current(): { status: { ready: boolean } } } }) => h.registry.current().status.ready;

t.test('first full sync: whole snapshot, leader, filtered event stream, one log line', async (t) => {
  const m1 = masterApp('master1', { host: '127.0.0.1', ports: { http: 8081, jnlp: 50001, ssh: 2201 }, servicePorts: { jnlp: 10002 } });
  const m2 = masterApp('master2', { host: '127.0.0.2', ports: { http: 8082 }, state: 'TASK_STAGING' });
  const cjoc = serviceApp('/cjoc', { host: '127.0.0.3', ports: [8888] });
  const other = serviceApp('/not-ours', { host: '127.0.0.4', ports: [1] });
  const sim = await startMarathonSim({ apps: [m1, m2, cjoc, other] });
  t.teardown(() => sim.close());
  const { log, lines } = capturingLogger();
  const h = await startSource(marathonConfig([sim.url]), { log, serviceApps: new Map([['/cjoc', { name: 'cjoc', stripPrefix: true }]]) });
  t.teardown(() => h.close());
  const snap = await waitFor(h.registry, (s) => s.status.ready, 'first sync');

  const routes = [...snap.routes.values()].map(({ changedAt: _c, ...r }) => r);
  const task = (a: MarathonApp) => a.tasks![0]!.id;
  t.same(routes, [
    {
      name: 'master1',
      kind: 'master',
      app: '/masters/master1',
      state: 'running',
      endpoints: {
        http: [{ host: '127.0.0.1', port: 8081, taskId: task(m1) }],
        jnlp: [{ host: '127.0.0.1', port: 50001, taskId: task(m1) }],
        ssh: [{ host: '127.0.0.1', port: 2201, taskId: task(m1) }],
      },
      servicePorts: { jnlp: 10002 },
      path: '/master1',
      stripPrefix: false,
      labels: {},
      source: 'marathon',
    },
    {
      name: 'master2',
      kind: 'master',
      app: '/masters/master2',
      state: 'starting',
      detail: 'task staging since 17:34',
      endpoints: { http: [], jnlp: [], ssh: [] },
      servicePorts: {},
      path: '/master2',
      stripPrefix: false,
      labels: {},
      source: 'marathon',
    },
    {
      name: 'cjoc',
      kind: 'service',
      app: '/cjoc',
      state: 'running',
      endpoints: { http: [{ host: '127.0.0.3', port: 8888, taskId: task(cjoc) }], jnlp: [], ssh: [] },
      servicePorts: {},
      path: '/cjoc',
      stripPrefix: true,
      labels: {},
      source: 'marathon',
    },
  ]);
  t.same({ ...snap.status, syncedAt: typeof snap.status.syncedAt }, { ready: true, stale: false, syncedAt: 'string', marathonLeader: sim.hostPort, lastError: null });

  await sim.waitForStream(1);
  const ev = sim.requests.find((r) => r.path === '/v2/events')!;
  t.equal(ev.accept, 'text/event-stream', 'Accept exactly text/event-stream (else Marathon answers 405)');
  t.same(ev.query.getAll('event_type'), [...subscribedEvents], 'server-side event_type filter');
  t.equal(sim.requests.find((r) => r.path === '/v2/apps')!.query.get('embed'), 'apps.tasks');

  const sync = lines.find((l) => l['msg'] === 'marathon sync')!;
  t.same([sync['apps'], sync['tasks'], sync['routes'], sync['leader'], typeof sync['ms']], [4, 4, 3, sim.hostPort, 'number'], 'pino line per sync with apps, tasks, ms');
});

t.test('events: a moved task refreshes only its app, coalesced into one fetch', async (t) => {
  const sim = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: 8081 } }), masterApp('master2', { host: '127.0.0.1', ports: { http: 8082 } })] });
  t.teardown(() => sim.close());
  const h = await startSource(marathonConfig([sim.url], { coalesce: 50 }));
  t.teardown(() => h.close());
  await settled(sim, h);
  const fullSyncs = sim.count('/v2/apps');

  sim.moveTask('/masters/master1', { host: '127.0.0.9', ports: [9091] });
  const snap = await waitFor(h.registry, (s) => httpOf(s.routes.get('master1'))?.[0] === '127.0.0.9:9091', 'master1 moved');
  t.same(httpOf(snap.routes.get('master1')), ['127.0.0.9:9091']);
  t.same(httpOf(snap.routes.get('master2')), ['127.0.0.1:8082'], 'the other master untouched');
  t.equal(sim.count('/v2/apps/masters/master1'), 1, 'TASK_KILLED + TASK_RUNNING: one fetch');
  t.equal(sim.count('/v2/apps/masters/master2'), 0);
  t.equal(sim.count('/v2/apps'), fullSyncs, 'no full refetch per event (traefik#3812)');
});

t.test('a task that ends loses its endpoint at once, before any refetch answers', async (t) => {
  const app = masterApp('master1', { host: '127.0.0.1', ports: { http: 8081 }, extraTasks: [{ host: '127.0.0.2', ports: [8082] }] });
  const sim = await startMarathonSim({ apps: [app] });
  t.teardown(() => sim.close());
  const h = await startSource(marathonConfig([sim.url], { requestTimeout: 500 }));
  t.teardown(() => h.close());
  await settled(sim, h);

  sim.setMode('hang'); // the refetch will not answer
  const first = app.tasks![0]!;
  sim.emit('status_update_event', { appId: '/masters/master1', taskId: first.id, taskStatus: 'TASK_KILLING', host: first.host, ports: first.ports });
  const snap = await waitFor(h.registry, (s) => httpOf(s.routes.get('master1'))?.length === 1, 'endpoint dropped');
  t.same(httpOf(snap.routes.get('master1')), ['127.0.0.2:8082']);
  t.equal(snap.routes.get('master1')!.state, 'running');

  const second = app.tasks![1]!;
  sim.emit('status_update_event', { appId: '/masters/master1', taskId: second.id, taskStatus: 'TASK_LOST' });
  const empty = await waitFor(h.registry, (s) => s.routes.get('master1')?.state === 'starting', 'last endpoint dropped');
  t.same([empty.routes.get('master1')!.detail, httpOf(empty.routes.get('master1'))], ['task lost; waiting for a replacement', []]);
});

t.test('app removal: only Marathon saying the app is gone removes the route', async (t) => {
  const sim = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: 8081 } }), masterApp('master2', { host: '127.0.0.1', ports: { http: 8082 } })] });
  t.teardown(() => sim.close());
  const h = await startSource(marathonConfig([sim.url]));
  t.teardown(() => h.close());
  await settled(sim, h);

  sim.removeApp('/masters/master2');
  const snap = await waitFor(h.registry, (s) => !s.routes.has('master2'), 'master2 removed');
  t.same([...snap.routes.keys()], ['master1']);
  t.equal(sim.count('/v2/apps/masters/master2'), 1, 'confirmed with Marathon (404 "does not exist")');
});

t.test('SSE cut: reconnect with backoff, then a full sync picks up what the stream missed', async (t) => {
  const sim = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: 8081 } })] });
  t.teardown(() => sim.close());
  const h = await startSource(marathonConfig([sim.url]));
  t.teardown(() => h.close());
  await waitFor(h.registry, (s) => s.status.ready, 'first sync');
  await sim.waitForStream(1);

  sim.cutStreams();
  sim.upsertApp(masterApp('master3', { host: '127.0.0.3', ports: { http: 8083 } }), { silent: true });
  await sim.waitForStream(2);
  const snap = await waitFor(h.registry, (s) => s.routes.has('master3'), 'master3 from the resync');
  t.same(httpOf(snap.routes.get('master3')), ['127.0.0.3:8083']);
  t.equal(sim.count('/v2/apps/masters/master3'), 0, 'found by the full sync, not by an event');
  t.equal((await h.metrics.sseReconnects.get()).values[0]?.value, 1);

  sim.cutStreams({ graceful: true }); // Marathon closes streams on losing leadership
  await sim.waitForStream(3);
  t.equal(sim.streams, 1);
});

t.test('a silent stream (no heartbeat) is declared dead after eventsIdleTimeout and reopened (marathon-lb#238)', async (t) => {
  const sim = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: 8081 } })], heartbeatMs: 3_600_000 });
  t.teardown(() => sim.close());
  const { log, lines } = capturingLogger();
  const h = await startSource(marathonConfig([sim.url], { eventsIdleTimeout: 150 }), { log });
  t.teardown(() => h.close());
  await sim.waitForStream(2);
  const down = lines.find((l) => l['msg'] === 'event stream down; reconnecting')!;
  t.equal(down['reason'], 'no bytes for 150 ms (dead stream)');
  await until(() => sim.count('/v2/apps') >= 2, 'full sync after the reconnect');
});

t.test('heartbeats keep an idle stream alive', async (t) => {
  const sim = await startMarathonSim({ apps: [], heartbeatMs: 10 });
  t.teardown(() => sim.close());
  const { log, lines } = capturingLogger();
  const h = await startSource(marathonConfig([sim.url], { eventsIdleTimeout: 300 }), { log });
  t.teardown(() => h.close());
  await sim.waitForStream(1);
  // 60 heartbeats 10 ms apart span twice the idle timeout.
  await until(() => sim.heartbeats >= 60, '60 heartbeats');
  t.equal(sim.streamsOpened, 1);
  t.equal(lines.filter((l) => l['msg'] === 'event stream down; reconnecting').length, 0);
});

t.test('leader failover across two Marathons; health results emptied by the failover are not "dead" (traefik#653)', async (t) => {
  const app = masterApp('master1', { host: '127.0.0.1', ports: { http: 8081 }, healthy: true });
  const a = await startMarathonSim({ apps: [app] });
  t.teardown(() => a.close());
  // The standby knows the same tasks; after it takes over, their health results are empty until re-checked.
  const afterFailover = structuredClone(app);
  afterFailover.tasks![0]!.healthCheckResults = [];
  const b = await startMarathonSim({ apps: [afterFailover], leader: a.url });
  t.teardown(() => b.close());
  const h = await startSource(marathonConfig([b.url, a.url], { requestTimeout: 500 }));
  t.teardown(() => h.close());
  const first = await waitFor(h.registry, (s) => s.status.ready, 'first sync');
  t.equal(first.status.marathonLeader, a.hostPort, '/v2/leader names A');
  await a.waitForStream(1);
  t.equal(h.source.client.baseUrl, a.url, 'requests go to the leader');

  await a.close(); // A dies; B is elected
  b.setLeader(null);
  const snap = await waitFor(h.registry, (s) => s.status.marathonLeader === b.hostPort, 'B is the leader');
  await b.waitForStream(1);
  t.equal(h.source.client.baseUrl, b.url);
  t.same([snap.routes.get('master1')!.state, httpOf(snap.routes.get('master1'))], ['running', ['127.0.0.1:8081']], 'last known health kept');
});

t.test('Marathon down: routes kept, stale with an age, recovered on the next sync', async (t) => {
  const sim = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: 8081 } })] });
  t.teardown(() => sim.close());
  const h = await startSource(marathonConfig([sim.url], { resyncInterval: 100, requestTimeout: 300 }));
  t.teardown(() => h.close());
  const good = await waitFor(h.registry, (s) => s.status.ready, 'first sync');

  sim.setMode('error');
  const stale = await waitFor(h.registry, (s) => s.status.stale, 'stale');
  t.same([...stale.routes.keys()], ['master1'], 'routes kept');
  t.equal(stale.routes.get('master1'), good.routes.get('master1'), 'the very same route object');
  t.match(stale.status.lastError, /Marathon is unreachable: .*HTTP 500/);
  t.ok(stale.status.syncedAt, 'age is measured from the last good sync');

  sim.setMode('hang');
  await until(() => sim.count('/v2/leader') >= 4, 'a hanging sync times out and retries', 5_000);
  t.equal(h.registry.current().routes.size, 1);

  sim.setMode('ok');
  const fresh = await waitFor(h.registry, (s) => !s.status.stale, 'recovered');
  t.equal(fresh.status.lastError, null);
});

t.test('a lost event stream marks the table stale at once, not at the next resync', async (t) => {
  const sim = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: 8081 } })] });
  t.teardown(() => sim.close());
  // An hour between resyncs: only the stream can tell that Marathon went away.
  const h = await startSource(marathonConfig([sim.url], { resyncInterval: 3_600_000, requestTimeout: 300, reconnectBackoff: { min: 50, max: 100 } }));
  t.teardown(() => h.close());
  await waitFor(h.registry, (s) => s.status.ready, 'first sync');
  await sim.waitForStream(1);
  // A Marathon that stops answering: the reconnect times out (requestTimeout) and no sync runs before the resync.
  sim.setMode('hang');
  sim.cutStreams();
  const stale = await waitFor(h.registry, (s) => s.status.stale, 'stale');
  t.match(stale.status.lastError, /^Marathon is unreachable: /);
  t.same([...stale.routes.keys()], ['master1'], 'routes kept');
  sim.setMode('ok');
  const fresh = await waitFor(h.registry, (s) => !s.status.stale, 'the reconnect syncs and clears it');
  t.equal(fresh.status.lastError, null);
});

t.test('malformed JSON, a malformed event and one bad app are logged and skipped', async (t) => {
  const bad = masterApp('bad', { host: '127.0.0.1', ports: { http: 1 }, labels: { 'ci-edge.name': 'Not_A_Label' } });
  const sim = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: 8081 } }), bad] });
  t.teardown(() => sim.close());
  const { log, lines } = capturingLogger();
  const h = await startSource(marathonConfig([sim.url], { resyncInterval: 100 }), { log });
  t.teardown(() => h.close());
  const first = await waitFor(h.registry, (s) => s.status.ready, 'first sync');
  t.same([...first.routes.keys()], ['master1'], 'the bad app is skipped, the good one served');
  t.equal(lines.find((l) => l['msg'] === 'skipping an app Marathon described badly')?.['app'], '/masters/bad');

  await sim.waitForStream(1);
  sim.writeRaw('event: status_update_event\r\ndata: {"appId":"/masters/master1",\r\n\r\n');
  sim.moveTask('/masters/master1', { ports: [9999] });
  await waitFor(h.registry, (s) => httpOf(s.routes.get('master1'))?.[0] === '127.0.0.1:9999', 'events still flow after a malformed one');
  t.ok(lines.some((l) => l['msg'] === 'skipping a malformed event'));

  sim.setMode('malformed');
  const stale = await waitFor(h.registry, (s) => s.status.stale, 'malformed /v2/apps marks stale');
  t.match(stale.status.lastError, /malformed JSON/);
  t.same(httpOf(stale.routes.get('master1')), ['127.0.0.1:9999'], 'routes kept');
});

t.test('a standby answers /v2/events with a redirect: the stream follows it to the leader', async (t) => {
  const app = masterApp('master1', { host: '127.0.0.1', ports: { http: 8081 } });
  const leader = await startMarathonSim({ apps: [app] });
  t.teardown(() => leader.close());
  for (const status of [307, 302] as const) {
    const standby = await startMarathonSim({ apps: [app], leader: leader.url, redirectStatus: status });
    // Only the standby is configured (a VIP in front of the Marathons does this).
    const h = await startSource(marathonConfig([standby.url]));
    await waitFor(h.registry, (s) => s.status.ready, 'first sync');
    await leader.waitForStream(status === 307 ? 1 : 2);
    t.equal(standby.count('/v2/events'), 1, `${status}: asked the standby once`);
    t.ok(leader.requests.some((r) => r.path === '/v2/events' && r.query.getAll('event_type').length === subscribedEvents.length), 'filter kept');
    leader.moveTask('/masters/master1', { ports: [status] });
    await waitFor(h.registry, (s) => httpOf(s.routes.get('master1'))?.[0] === `127.0.0.1:${status}`, 'event from the leader applied');
    await h.close();
    await standby.close();
  }
});

t.test('basic auth goes with every request, the event stream included', async (t) => {
  const sim = await startMarathonSim({ apps: [] });
  t.teardown(() => sim.close());
  const h = await startSource(marathonConfig([sim.url], { auth: { basic: 'ci:s3cret' } }));
  t.teardown(() => h.close());
  await waitFor(h.registry, (s) => s.status.ready, 'first sync');
  await sim.waitForStream(1);
  const want = `Basic ${Buffer.from('ci:s3cret').toString('base64')}`;
  t.same([...new Set(sim.requests.map((r) => r.authorization))], [want]);
});

t.test('readiness waits for the first good sync', async (t) => {
  const sim = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: 8081 } })] });
  t.teardown(() => sim.close());
  sim.setMode('error');
  const h = await startSource(marathonConfig([sim.url]));
  t.teardown(() => h.close());
  await h.source.firstSync;
  t.same([ready(h), h.registry.current().status.stale], [false, true], 'a failed first sync is not ready');
  sim.setMode('ok');
  await waitFor(h.registry, (s) => s.status.ready, 'ready after a retry');
});

t.test('deployment events: the plan names the apps; deployment_success with only its id uses the cached plan', async (t) => {
  const sim = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: 8081 } })] });
  t.teardown(() => sim.close());
  const h = await startSource(marathonConfig([sim.url]));
  t.teardown(() => h.close());
  await settled(sim, h);

  sim.upsertApp(masterApp('master1', { host: '127.0.0.1', ports: { http: 8082 } }), { silent: true });
  sim.emit('deployment_info', {
    plan: { id: 'd-1', steps: [{ actions: [{ action: 'RestartApplication', app: '/masters/master1' }] }], version: '2017-07-19T17:34:41.967Z' },
    currentStep: { actions: [{ action: 'RestartApplication', app: '/masters/master1' }] },
  });
  await waitFor(h.registry, (s) => httpOf(s.routes.get('master1'))?.[0] === '127.0.0.1:8082', 'refresh from deployment_info');

  sim.upsertApp(masterApp('master1', { host: '127.0.0.1', ports: { http: 8083 } }), { silent: true });
  sim.emit('deployment_success', { id: 'd-1' }); // the doc's shape: no plan
  await waitFor(h.registry, (s) => httpOf(s.routes.get('master1'))?.[0] === '127.0.0.1:8083', 'refresh from the cached plan');
  t.equal(sim.count('/v2/apps/masters/master1'), 2);
});

t.test('a front door reporting a failing endpoint re-checks that app, at most once per second', async (t) => {
  const sim = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: 8081 } })] });
  t.teardown(() => sim.close());
  const h = await startSource(marathonConfig([sim.url]));
  t.teardown(() => h.close());
  await settled(sim, h);

  sim.upsertApp(masterApp('master1', { host: '127.0.0.1', ports: { http: 8084 } }), { silent: true });
  const ep = h.registry.current().routes.get('master1')!.endpoints.http[0]!;
  h.registry.endpointFailed('master1', ep);
  await waitFor(h.registry, (s) => httpOf(s.routes.get('master1'))?.[0] === '127.0.0.1:8084', 're-checked');
  h.registry.endpointFailed('master1', ep);
  h.registry.endpointFailed('master1', ep);
  await new Promise((r) => setTimeout(r, 50)); // longer than the coalesce window: a refetch would have started
  t.equal(sim.count('/v2/apps/masters/master1'), 1, 'later reports within the TTL are answered from the cache');
});
