import t from 'tap';
import { parseConfig } from '../../src/config/schema.js';
import { startGateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';
import { masterApp, startMarathonSim } from '../helpers/marathon-sim.js';
import { until } from './harness.js';

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

t.test('admin contract over a gateway fed by the Marathon simulator', async (t) => {
  const app = masterApp('master1', { host: '127.0.0.1', ports: { http: 8081, jnlp: 50001, ssh: 2201 } });
  const sim = await startMarathonSim({ apps: [app] });
  t.teardown(() => sim.close());
  sim.setMode('hang'); // the first sync cannot finish yet
  const config = parseConfig({
    domains: ['pse.example.com'],
    marathon: { urls: [sim.url], requestTimeout: '300ms', resyncInterval: '200ms', reconnectBackoff: { min: '10ms', max: '50ms' } },
    admin: { listen: '127.0.0.1:0' },
  });
  const gw = await startGateway(config, { log: silentLogger() });
  t.teardown(() => gw.close(1_000));
  const admin = `http://127.0.0.1:${gw.addresses()['admin.admin']!.port}`;

  const before = await getJson(`${admin}/ready`);
  t.same([before.status, before.body['ready'], before.body['reason']], [503, false, 'waiting for the first sync'], '503 before the first sync');
  t.equal((await getJson(`${admin}/health`)).status, 200);

  sim.setMode('ok');
  await until(() => gw.registry.current().status.ready, 'first sync');
  const after = await getJson(`${admin}/ready`);
  t.same([after.status, after.body['ready'], after.body['stale']], [200, true, false]);

  const routes = await getJson(`${admin}/routes`);
  t.equal(routes.status, 200);
  t.same([routes.body['stale'], typeof routes.body['syncedAt'], routes.body['marathonLeader']], [false, 'string', sim.hostPort]);
  const list = routes.body['routes'] as Record<string, unknown>[];
  t.same(
    list.map((r) => ({ name: r['name'], kind: r['kind'], app: r['app'], state: r['state'], endpoints: r['endpoints'] })),
    [
      {
        name: 'master1',
        kind: 'master',
        app: '/masters/master1',
        state: 'running',
        endpoints: { http: [{ host: '127.0.0.1', port: 8081 }], jnlp: [{ host: '127.0.0.1', port: 50001 }], ssh: [{ host: '127.0.0.1', port: 2201 }] },
      },
    ],
  );
  const one = await getJson(`${admin}/routes/master1`);
  t.same([one.status, one.body['name'], one.body['source']], [200, 'master1', 'marathon']);
  t.equal((await getJson(`${admin}/routes/nope`)).status, 404);

  // Marathon down: still ready (the routes are kept), reported stale with the age of the last good sync.
  sim.setMode('error');
  await until(() => gw.registry.current().status.stale, 'a failed resync');
  const stale = await getJson(`${admin}/routes`);
  t.same([stale.body['stale'], typeof stale.body['ageSeconds'], (stale.body['routes'] as unknown[]).length], [true, 'number', 1]);
  // Syncs run every 200 ms here: the one that fails may have asked /v2/leader already, and fail on /v2/apps.
  t.match(stale.body['lastError'], new RegExp(`^Marathon is unreachable: ${sim.url}/v2/(leader|apps\\?embed=apps\\.tasks): HTTP 500$`));
  const stillReady = await getJson(`${admin}/ready`);
  t.same([stillReady.status, stillReady.body['stale']], [200, true]);

});
