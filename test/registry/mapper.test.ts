import { readFileSync } from 'node:fs';
import t from 'tap';
import { appFingerprint, appKey, BadAppError, mapApp, sameAppKey, withoutTask, writeAppKey, type MapContext } from '../../src/registry/marathon/mapper.js';
import type { MarathonApp } from '../../src/registry/marathon/types.js';
import type { RouteInput } from '../../src/registry/types.js';
import { marathonApp, masterApp } from '../helpers/marathon-sim.js';

const fixture = (name: string): { apps?: MarathonApp[]; app?: MarathonApp } =>
  JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8'));

const root: MapContext = { mastersGroup: '/', serviceApps: new Map() };
const masters: MapContext = { mastersGroup: '/masters', serviceApps: new Map() };

/** A whole expected route; only what differs from a plain running master is given. */
function expected(name: string, app: string, over: Partial<RouteInput>): RouteInput {
  return {
    name,
    kind: 'master',
    app,
    state: 'running',
    endpoints: { http: [], jnlp: [], ssh: [] },
    servicePorts: {},
    path: `/${name}`,
    stripPrefix: false,
    labels: {},
    source: 'marathon',
    ...over,
  };
}

const ep = (host: string, port: number, taskId: string) => ({ host, port, taskId });

t.test('real fixtures map to whole routes', async (t) => {
  const cases: { title: string; file: string; ctx: MapContext; want: RouteInput[] }[] = [
    {
      title: 'marathon-lb 1.5 bridge app, unrecognised port name "test" → index 0 is http, service port 10101',
      file: 'marathon15_apps.json',
      ctx: { mastersGroup: '/masters', serviceApps: new Map([['/pywebserver', { name: 'pyweb', stripPrefix: true }]]) },
      want: [
        expected('pyweb', '/pywebserver', {
          kind: 'service',
          stripPrefix: true,
          endpoints: { http: [ep('10.0.2.148', 1565, 'pywebserver.8cad6a69-6ca8-11e7-beb2-0e2beceebfcc')], jnlp: [], ssh: [] },
          servicePorts: { http: 10101 },
          labels: { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'myvhost.com' },
        }),
      ],
    },
    {
      title: 'marathon-lb 1.5 bridge app with MESOS_HTTP health checks, all alive (1.4+ instanceId results)',
      file: 'zdd_app_blue_marathon1.5.json',
      ctx: root,
      want: [
        expected('nginx-green', '/nginx-green', {
          endpoints: {
            http: [
              ep('10.0.6.25', 16916, 'nginx-green.01da9a15-68a7-11e7-a229-e6a514ca0c21'),
              ep('10.0.6.25', 31184, 'nginx-green.01dc95e6-68a7-11e7-a229-e6a514ca0c21'),
              ep('10.0.6.25', 23336, 'nginx-green.01bf22d4-68a7-11e7-a229-e6a514ca0c21'),
            ],
            jnlp: [],
            ssh: [],
          },
          servicePorts: { http: 10000 },
          labels: fixture('zdd_app_blue_marathon1.5.json').apps![0]!.labels!,
        }),
      ],
    },
    {
      title: '2016 docker BRIDGE apps: tasks without `state` but started, pre-1.4 taskId health results',
      file: 'zdd_apps.json',
      ctx: root,
      want: [
        expected('nginx-green', '/nginx-green', {
          endpoints: {
            http: [
              ep('10.0.6.25', 16916, 'nginx-green.1883a887-c931-11e5-9836-026ee08d9f6f'),
              ep('10.0.6.25', 31184, 'nginx-green.0dbabba6-c931-11e5-9836-026ee08d9f6f'),
              ep('10.0.6.25', 23336, 'nginx-green.23532518-c931-11e5-9836-026ee08d9f6f'),
            ],
            jnlp: [],
            ssh: [],
          },
          servicePorts: { http: 10000 },
          labels: fixture('zdd_apps.json').apps![0]!.labels!,
        }),
        expected('nginx-blue', '/nginx-blue', {
          endpoints: { http: [ep('10.0.1.147', 25724, 'nginx-blue.3a58a46a-c937-11e5-9836-026ee08d9f6f')], jnlp: [], ssh: [] },
          servicePorts: { http: 10001 },
          labels: fixture('zdd_apps.json').apps![1]!.labels!,
        }),
      ],
    },
    {
      title: '2015 docker BRIDGE app listed without tasks: no tasks, unnamed tcp+udp ports by index',
      file: 'legacy-2015-GET-v2-apps-docker-bridge-serviceport.json',
      ctx: root,
      want: [expected('bridged-webapp', '/bridged-webapp', { state: 'unhealthy', detail: 'no tasks', servicePorts: { http: 9000 } })],
    },
    {
      title: '2015 app with a staged task (startedAt null) and a deployment → starting, since when',
      file: 'legacy-2015-GET-v2-apps-embed-tasks-lastTaskFailure.json',
      ctx: root,
      want: [expected('ubuntu', '/ubuntu', { state: 'starting', detail: 'task staging since 05:36', servicePorts: { http: 10000 } })],
    },
    {
      title: '2015 single app (`{app}`) with two healthy tasks on host networking',
      file: 'legacy-2015-GET-v2-apps-toggle-embed-tasks-healthCheckResults.json',
      ctx: root,
      want: [
        expected('toggle', '/toggle', {
          endpoints: {
            http: [ep('10.141.141.10', 31045, 'toggle.802df2ae-3ad4-11e4-a400-56847afe9799'), ep('10.141.141.10', 31234, 'toggle.7c99814d-3ad4-11e4-a400-56847afe9799')],
            jnlp: [],
            ssh: [],
          },
          servicePorts: { http: 10000 },
        }),
      ],
    },
    {
      title: 'RAML app: named "http" BRIDGE portMapping with servicePort, no tasks',
      file: 'raml-app-docker-portmappings-labels.json',
      ctx: root,
      want: [expected('foo', '/foo', { state: 'unhealthy', detail: 'no tasks', servicePorts: { http: 10019 }, labels: { owner: 'zeus', note: 'Away from olympus' } })],
    },
    {
      title: 'RAML app list: deployment running, two unnamed ports → http and jnlp service ports',
      file: 'raml-apps-list.json',
      ctx: root,
      want: [expected('myapp', '/myapp', { state: 'starting', detail: 'deployment running', servicePorts: { http: 10013, jnlp: 10015 } })],
    },
    {
      title: 'system-test BRIDGE app with a named fixed hostPort and no service port',
      file: 'system-test-app-bridge-named-portmapping.json',
      ctx: root,
      want: [expected('pinger-bridge-app', '/pinger-bridge-app', { state: 'unhealthy', detail: 'no tasks' })],
    },
  ];
  for (const c of cases) {
    const doc = fixture(c.file);
    const apps = doc.apps ?? (doc.app ? [doc.app] : [doc as unknown as MarathonApp]);
    const got = apps.map((a) => mapApp(a, c.ctx)?.route ?? null);
    t.same(got, c.want, c.title);
  }
});

t.test('the 100-app 1.5+ benchmark list: every app suspended, nested group uses the last segment', async (t) => {
  const apps = fixture('benchmark-apps-list-1.5plus-format-100apps.json').apps!;
  const routes = apps.map((a) => mapApp(a, { mastersGroup: '/cudcos', serviceApps: new Map() })!.route);
  t.equal(routes.length, 100);
  t.same(new Set(routes.map((r) => `${r.state}: ${r.detail}`)), new Set(['unhealthy: suspended (instances: 0)']));
  t.same(routes[0], expected('mactest1', '/cudcos/mactest1', { state: 'unhealthy', detail: 'suspended (instances: 0)', servicePorts: { http: 10003 } }));
});

t.test('builder apps: networking modes, port names, health', async (t) => {
  const only = (app: MarathonApp, ctx: MapContext = masters) => mapApp(app, ctx)!.route;
  const tid = (app: MarathonApp, i = 0) => app.tasks![i]!.id;

  const host = masterApp('master1', { host: '10.0.0.5', ports: { http: 31001, jnlp: 31002, ssh: 31003 }, servicePorts: { http: 10001, jnlp: 10002, ssh: 10003 } });
  t.same(
    only(host),
    expected('master1', '/masters/master1', {
      endpoints: { http: [ep('10.0.0.5', 31001, tid(host))], jnlp: [ep('10.0.0.5', 31002, tid(host))], ssh: [ep('10.0.0.5', 31003, tid(host))] },
      servicePorts: { http: 10001, jnlp: 10002, ssh: 10003 },
    }),
    'host networking: task host and host ports, service ports from portDefinitions',
  );

  const bridge = masterApp('master2', { host: '10.0.0.6', ports: { http: 31011, ssh: 31013 }, networking: 'bridge' });
  t.same(only(bridge).endpoints, { http: [ep('10.0.0.6', 31011, tid(bridge))], jnlp: [], ssh: [ep('10.0.0.6', 31013, tid(bridge))] }, 'bridge: task host and host ports by name');

  const user = masterApp('master3', { host: '9.0.0.7', ports: { http: 8080, jnlp: 50000 }, networking: 'user' });
  t.same(only(user).endpoints, { http: [ep('9.0.0.7', 8080, tid(user))], jnlp: [ep('9.0.0.7', 50000, tid(user))], ssh: [] }, 'USER networking: task IP and container ports');

  const unnamed = masterApp('master4', { host: '10.0.0.8', ports: { http: 1, jnlp: 2, ssh: 3 }, unnamedPorts: true });
  t.same(only(unnamed).endpoints, { http: [ep('10.0.0.8', 1, tid(unnamed))], jnlp: [ep('10.0.0.8', 2, tid(unnamed))], ssh: [ep('10.0.0.8', 3, tid(unnamed))] }, 'unnamed: index 0/1/2');

  const agent = marathonApp('/masters/master5', { portNames: ['ssh', 'agent', 'http'], tasks: [{ host: 'h', ports: [22, 50000, 8080] }] });
  t.same(only(agent).endpoints, { http: [ep('h', 8080, tid(agent))], jnlp: [ep('h', 50000, tid(agent))], ssh: [ep('h', 22, tid(agent))] }, 'names in any order; "agent" is jnlp');

  const healthy = masterApp('m6', { host: 'h', ports: { http: 1 }, healthy: true });
  t.equal(only(healthy).state, 'running', 'health checks all alive');

  const sick = masterApp('m7', { host: 'h', ports: { http: 1 }, healthy: false });
  t.same([only(sick).state, only(sick).detail, only(sick).endpoints.http], ['unhealthy', '1 task failing health checks (ConnectionRefused)', []]);

  const unchecked = marathonApp('/masters/m8', { portNames: ['http'], healthChecks: true, tasks: [{ host: 'h', ports: [1] }] });
  t.same([only(unchecked).state, only(unchecked).detail], ['starting', 'task running, waiting for its first health check'], 'no results yet');
  const remembered = mapApp(unchecked, { ...masters, lastHealth: new Map([[tid(unchecked), true]]) })!;
  t.same([remembered.route.state, remembered.route.endpoints.http], ['running', [ep('h', 1, tid(unchecked))]], 'traefik#653: empty results after failover keep the last known health');
  t.same([...remembered.taskHealth], [[tid(unchecked), true]]);

  const staging = masterApp('m9', { host: 'h', ports: { http: 1 }, state: 'TASK_STAGING' });
  t.same([only(staging).state, only(staging).detail], ['starting', 'task staging since 17:34']);

  const killing = masterApp('m10', { host: 'h', ports: { http: 1 }, state: 'TASK_KILLING' });
  t.same([only(killing).state, only(killing).detail, only(killing).endpoints.http], ['unhealthy', 'no running task', []]);
});

t.test('labels: name, path, strip-prefix, port selection and service ports', async (t) => {
  const app = marathonApp('/ci/tools/jenkins-ci', {
    portNames: ['admin', 'web', 'agents'],
    labels: { 'ci-edge.name': 'ci', 'ci-edge.path': '/ci', 'ci-edge.strip-prefix': 'true', 'ci-edge.http.port': 'web', 'ci-edge.jnlp.port': '50000' },
    tasks: [{ host: 'h', ports: [9, 80, 5] }],
  });
  const r = mapApp(app, masters)!.route;
  t.same(
    { name: r.name, path: r.path, stripPrefix: r.stripPrefix, endpoints: r.endpoints, servicePorts: r.servicePorts },
    { name: 'ci', path: '/ci', stripPrefix: true, endpoints: { http: [ep('h', 80, app.tasks![0]!.id)], jnlp: [], ssh: [] }, servicePorts: { jnlp: 50000 } },
  );
  t.equal(mapApp(marathonApp('/elsewhere/app', { tasks: [] }), masters), null, 'outside the masters group, no label: not ours');
  t.throws(() => mapApp(marathonApp('/x', { labels: { 'ci-edge.name': 'Not A Label' }, tasks: [] }), masters), BadAppError);
  t.throws(() => mapApp({ instances: 1 } as unknown as MarathonApp, masters), BadAppError);
});

t.test('withoutTask drops one task; the last one leaves the route starting', async (t) => {
  const app = masterApp('m1', { host: 'a', ports: { http: 1, ssh: 2 }, extraTasks: [{ host: 'b', ports: [3, 4] }] });
  const r = mapApp(app, masters)!.route;
  const [t1, t2] = [app.tasks![0]!.id, app.tasks![1]!.id];
  const one = withoutTask(r, t1, 'TASK_KILLED')!;
  t.same([one.state, one.endpoints.http, one.endpoints.ssh], ['running', [ep('b', 3, t2)], [ep('b', 4, t2)]]);
  const none = withoutTask(one, t2, 'TASK_FAILED')!;
  t.same([none.state, none.detail, none.endpoints], ['starting', 'task failed; waiting for a replacement', { http: [], jnlp: [], ssh: [] }]);
  t.equal(withoutTask(none, 'unknown', 'TASK_KILLED'), null);
});

t.test('appFingerprint changes with everything mapApp reads, and only then', async (t) => {
  const json = JSON.stringify(masterApp('master1', { host: '10.0.0.1', ports: { http: 31000, jnlp: 31001, ssh: 31002 }, healthy: true }));
  const base = (): MarathonApp => JSON.parse(json) as MarathonApp;
  const fp = appFingerprint(base());
  t.type(fp, 'string');
  t.equal(appFingerprint(base()), fp, 'the same JSON, the same fingerprint');
  const task = (a: MarathonApp) => a.tasks![0]!;
  const changes: [string, (a: MarathonApp) => void][] = [
    ['a new app version (ports, labels, health checks…)', (a) => (a.version = '2030-01-01T00:00:00.000Z')],
    ['instances', (a) => (a.instances = 7)],
    ['a deployment', (a) => (a.deployments = [{ id: 'd1' }])],
    ['task state', (a) => (task(a).state = 'TASK_STAGING')],
    ['task host', (a) => (task(a).host = '10.0.0.2')],
    ['task ports', (a) => (task(a).ports = [1, 2, 3])],
    ['task id (replaced)', (a) => (task(a).id = 'other')],
    ['health flips', (a) => (task(a).healthCheckResults![0]!.alive = false)],
    ['health results gone (failover)', (a) => (task(a).healthCheckResults = [])],
    ['a task more', (a) => a.tasks!.push({ ...task(a), id: 'second' })],
    ['task IP (USER networking)', (a) => (task(a).ipAddresses = [{ ipAddress: '172.17.0.9' }])],
  ];
  for (const [what, change] of changes) {
    const a = base();
    change(a);
    t.not(appFingerprint(a), fp, what);
  }
  const noResults = base();
  task(noResults).healthCheckResults = [];
  t.not(appFingerprint(noResults, new Map([[task(noResults).id, true]])), appFingerprint(noResults, new Map([[task(noResults).id, false]])), 'remembered health counts when results are empty');
  const unversioned = base();
  delete unversioned.version;
  t.equal(appFingerprint(unversioned), null, 'no version: always mapped');
});

t.test('appKey: equal for the same JSON, different for every change mapApp would see; written in place', async (t) => {
  const json = JSON.stringify(masterApp('master1', { host: '10.0.0.1', ports: { http: 31000, jnlp: 31001, ssh: 31002 }, healthy: true }));
  const base = (): MarathonApp => JSON.parse(json) as MarathonApp;
  const key = appKey(base())!;
  t.ok(sameAppKey(key, appKey(base())!), 'the same JSON, an equal key (a new parse, other objects)');
  const task = (a: MarathonApp) => a.tasks![0]!;
  const changes: [string, (a: MarathonApp) => void][] = [
    ['a new app version', (a) => (a.version = '2030-01-01T00:00:00.000Z')],
    ['instances', (a) => (a.instances = 7)],
    ['a deployment', (a) => (a.deployments = [{ id: 'd1' }])],
    ['task state', (a) => (task(a).state = 'TASK_STAGING')],
    ['task host', (a) => (task(a).host = '10.0.0.2')],
    ['task ports', (a) => (task(a).ports = [1, 2, 3])],
    ['one port fewer', (a) => (task(a).ports = task(a).ports!.slice(0, 2))],
    ['service ports', (a) => (task(a).servicePorts = [9])],
    ['task id (replaced)', (a) => (task(a).id = 'other')],
    ['task staged again', (a) => (task(a).stagedAt = '2030-01-01T00:00:00.000Z')],
    ['health flips', (a) => (task(a).healthCheckResults![0]!.alive = false)],
    ['a failure cause', (a) => (task(a).healthCheckResults![0]!.lastFailureCause = 'timeout')],
    ['health results gone (failover)', (a) => (task(a).healthCheckResults = [])],
    ['a task more', (a) => a.tasks!.push({ ...task(a), id: 'second' })],
    ['task IP (USER networking)', (a) => (task(a).ipAddresses = [{ ipAddress: '172.17.0.9' }])],
    ['ports not a list', (a) => ((task(a) as { ports: unknown }).ports = '31000,31001,31002')],
    ['tasks not a list', (a) => ((a as { tasks: unknown }).tasks = {})],
  ];
  for (const [what, change] of changes) {
    const a = base();
    change(a);
    t.notOk(sameAppKey(key, appKey(a)!), what);
  }
  const odd = base();
  (task(odd) as { ports: unknown }).ports = [[31000]];
  t.notOk(sameAppKey(appKey(odd)!, appKey(structuredClone(odd))!), 'an object where a number belongs: never equal across parses (re-mapped)');
  const noResults = base();
  task(noResults).healthCheckResults = [];
  t.notOk(sameAppKey(appKey(noResults, new Map([[task(noResults).id, true]]))!, appKey(noResults, new Map([[task(noResults).id, false]]))!), 'remembered health counts when results are empty');
  const unversioned = base();
  delete unversioned.version;
  t.equal(appKey(unversioned), null, 'no version: always mapped');
  const nullTask = base();
  (nullTask.tasks as unknown[]).push(null);
  t.equal(appKey(nullTask), null, 'a null task: always mapped');

  // A full sync writes every key into one scratch array; what is left past the length does not count.
  const scratch: unknown[] = [];
  const bigger = base();
  bigger.tasks!.push({ ...task(bigger), id: 'second' });
  const n1 = writeAppKey(bigger, undefined, scratch);
  t.ok(sameAppKey(appKey(bigger)!, scratch, n1));
  const n2 = writeAppKey(base(), undefined, scratch);
  t.ok(n2 < n1 && scratch.length === n1, 'the scratch keeps its size');
  t.ok(sameAppKey(key, scratch, n2), 'the first n2 entries are the smaller key');
  t.notOk(sameAppKey(key, scratch), 'the whole scratch is not');
  t.equal(writeAppKey(unversioned, undefined, scratch), -1);
});
