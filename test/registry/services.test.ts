import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import type { ServiceConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { Registry } from '../../src/registry/registry.js';
import { ServiceSource } from '../../src/registry/services.js';
import { startMarathonSim } from '../helpers/marathon-sim.js';
import { httpOf, waitFor } from './harness.js';

/** A Mesos master stand-in: `/master/redirect` (307 to the leader) or, with `redirect: false`, only `/master/state`. */
async function mesosMaster(o: { leader: () => string; redirect: boolean }): Promise<{ url: string; server: Server; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    if (req.url === '/master/redirect' && o.redirect) return res.writeHead(307, { location: `//${o.leader()}/master/redirect` }).end();
    if (req.url === '/master/state') {
      return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ version: '1.11.0', leader: `master@${o.leader()}`, leader_info: {} }));
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, hits };
}

const svc = (over: Partial<ServiceConfig>): ServiceConfig => ({ upstreams: [], leader: null, app: null, stripPrefix: true, ...over });

t.test('static upstreams, Mesos and Marathon leaders, re-checked when a front door reports a failure', async (t) => {
  let mesosLeader = 'pending';
  const m1 = await mesosMaster({ leader: () => mesosLeader, redirect: true });
  const m2 = await mesosMaster({ leader: () => mesosLeader, redirect: false });
  t.teardown(() => (m1.server.close(), m2.server.close()));
  mesosLeader = new URL(m2.url).host;
  const ma = await startMarathonSim();
  const mb = await startMarathonSim({ leader: ma.url });
  t.teardown(() => (ma.close(), mb.close()));

  const source = new ServiceSource({
    services: {
      es: svc({ upstreams: ['http://es1:9200', 'https://es2'], stripPrefix: false }),
      mesos: svc({ upstreams: [m1.url, m2.url], leader: 'mesos' }),
      marathon: svc({ upstreams: [mb.url, ma.url], leader: 'marathon' }),
      cjoc: svc({ app: '/cjoc' }),
    },
    requestTimeout: 1_000,
    recheckInterval: 60_000,
    recheckThrottle: 0,
    log: silentLogger(),
  });
  const registry = new Registry({ log: silentLogger() }).add(source);
  t.teardown(() => registry.close());
  await registry.start();
  const snap = await waitFor(registry, (s) => s.status.ready, 'leaders found');

  t.same([...snap.routes.keys()], ['es', 'mesos', 'marathon'], 'app services come from Marathon, not here');
  const { changedAt: _c, ...es } = snap.routes.get('es')!;
  t.same(es, {
    name: 'es',
    kind: 'service',
    app: null,
    state: 'running',
    endpoints: { http: [{ host: 'es1', port: 9200 }, { host: 'es2', port: 443 }], jnlp: [], ssh: [] },
    servicePorts: {},
    path: '/es',
    stripPrefix: false,
    labels: {},
    source: 'service',
  });
  t.same(httpOf(snap.routes.get('mesos')), [mesosLeader], 'Mesos leader from /master/redirect');
  t.same(httpOf(snap.routes.get('marathon')), [ma.hostPort], 'Marathon leader from /v2/leader of a standby');
  t.same(m1.hits, ['/master/redirect']);

  // The Mesos leader moves to m1; the router reports m2 failing.
  mesosLeader = new URL(m1.url).host;
  registry.endpointFailed('mesos', snap.routes.get('mesos')!.endpoints.http[0]!);
  const moved = await waitFor(registry, (s) => httpOf(s.routes.get('mesos'))?.[0] === mesosLeader, 'new Mesos leader');
  t.same(httpOf(moved.routes.get('mesos')), [new URL(m1.url).host]);

  t.same(m2.hits, [], 'm1 answered every time');
});

t.test('a leader never found: every upstream serves, with a detail saying why', async (t) => {
  const source = new ServiceSource({
    services: { mesos: svc({ upstreams: ['http://127.0.0.1:1'], leader: 'mesos' }) },
    requestTimeout: 500,
    recheckInterval: 60_000,
    log: silentLogger(),
  });
  const registry = new Registry({ log: silentLogger() }).add(source);
  t.teardown(() => registry.close());
  await registry.start();
  const snap = await waitFor(registry, (s) => s.status.ready, 'first round of checks');
  const r = snap.routes.get('mesos')!;
  t.same(httpOf(r), ['127.0.0.1:1']);
  t.match(r.detail, /^leader unknown, using every upstream: cannot find the leader of mesos: http:\/\/127\.0\.0\.1:1: ECONNREFUSED/);
});

t.test('Mesos without /master/redirect: the leader PID from /master/state', async (t) => {
  const m = await mesosMaster({ leader: () => '127.0.0.1:5051', redirect: false });
  t.teardown(() => m.server.close());
  const source = new ServiceSource({ services: { mesos: svc({ upstreams: [m.url], leader: 'mesos' }) }, requestTimeout: 1_000, recheckInterval: 60_000, log: silentLogger() });
  const registry = new Registry({ log: silentLogger() }).add(source);
  t.teardown(() => registry.close());
  await registry.start();
  const snap = await waitFor(registry, (s) => s.status.ready, 'leader found');
  t.same(httpOf(snap.routes.get('mesos')), ['127.0.0.1:5051']);
  t.same(m.hits, ['/master/redirect', '/master/state']);
});
