import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApiHandler, describeMaster } from '../../src/jnlp-discovery/api.js';
import { ListenerProbe } from '../../src/jnlp-discovery/master-listener.js';
import { silentLogger } from '../../src/log.js';
import { httpGet } from '../helpers/agent-resolver.js';
import { generateIdentityKey, startJenkinsStandin } from '../helpers/jenkins-standin.js';
import { masterRoute, testRegistry } from '../helpers/registry.js';
import { directDiscovery, jnlpConfig } from './fixtures.js';

const key = generateIdentityKey();

t.test('GET /_ci-edge/jnlp/<name>: the discovery document, and 404/503 with a reason', async (t) => {
  const m1 = await startJenkinsStandin({ name: 'master1', key });
  const off = await startJenkinsStandin({ name: 'master4', key, agentListener: false });
  const { registry } = await testRegistry([
    masterRoute('master1', { http: [{ host: '127.0.0.1', port: m1.httpPort }], jnlp: [{ host: '127.0.0.1', port: m1.agentPort }] }),
    masterRoute('master2', {}, { state: 'starting', detail: 'task staging since 12:03' }),
    masterRoute('master3', { http: [{ host: '127.0.0.1', port: 1 }], jnlp: [{ host: '127.0.0.1', port: 2 }] }),
    masterRoute('master4', { http: [{ host: '127.0.0.1', port: off.httpPort }], jnlp: [{ host: '127.0.0.1', port: off.agentPort }] }),
    { ...masterRoute('mesos', { http: [{ host: '127.0.0.1', port: 5050 }] }), kind: 'service' },
  ]);
  const probe = new ListenerProbe({ ttl: 60_000, timeout: 2000 });
  const handler = createApiHandler(jnlpConfig(), registry, probe, silentLogger());
  const server = createServer((req, res) => {
    if (!handler(req, res)) {
      res.writeHead(418);
      res.end('not mine');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(async () => {
    probe.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await m1.close();
    await off.close();
    await registry.close();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const get = async (path: string) => {
    const r = await httpGet(base + path);
    return { status: r.status, type: r.headers['content-type'], body: r.body.startsWith('{') ? JSON.parse(r.body) : r.body };
  };

  t.same(await get('/_ci-edge/jnlp/master1'), {
    status: 200,
    type: 'application/json; charset=utf-8',
    body: directDiscovery('master1', m1),
  });
  t.same(await get('/_ci-edge/jnlp/nope'), { status: 404, type: 'application/json; charset=utf-8', body: { name: 'nope', code: 'E_NO_ROUTE', reason: 'no master named "nope"' } });
  t.same((await get('/_ci-edge/jnlp/mesos')).status, 404, 'services are not masters');
  t.same(await get('/_ci-edge/jnlp/master2'), {
    status: 503,
    type: 'application/json; charset=utf-8',
    body: { name: 'master2', state: 'starting', detail: 'task staging since 12:03', code: 'E_NO_HEALTHY_ENDPOINT', reason: 'master2 is task staging since 12:03' },
  });
  t.same((await get('/_ci-edge/jnlp/master3')).body, {
    name: 'master3',
    state: 'running',
    code: 'E_UPSTREAM_REFUSED',
    reason: '127.0.0.1:1 refused the connection',
  });
  t.same((await get('/_ci-edge/jnlp/master4')).body, { name: 'master4', state: 'running', code: 'E_JNLP_DISABLED', reason: 'master4 has its TCP agent listener disabled' });
  t.equal((await get('/_ci-edge/jnlp/master4')).status, 404);
  t.equal((await get('/elsewhere')).status, 418, 'other paths are left to the router');
});

t.test('shared port and gateway mode in the document; identity is cached for the TTL (fake clock)', async (t) => {
  const m1 = await startJenkinsStandin({ name: 'master1', key });
  const { registry, source } = await testRegistry([
    masterRoute('master1', { http: [{ host: '127.0.0.1', port: m1.httpPort }], jnlp: [{ host: '127.0.0.1', port: m1.agentPort }] }, { servicePorts: { jnlp: 10002 } }),
  ]);
  const probe = new ListenerProbe({ ttl: 60_000, timeout: 2000 });
  const realNow = Date.now;
  let now = realNow();
  Date.now = () => now;
  t.teardown(async () => {
    Date.now = realNow;
    probe.close();
    await m1.close();
    await registry.close();
  });
  const shared = await describeMaster('master1', registry, probe, jnlpConfig({ advertiseHost: 'edge.example.com', sharedPort: 50000 }));
  t.match(shared, { status: 200, body: { host: 'edge.example.com', port: 50000, tunnel: 'edge.example.com:50000', protocols: ['JNLP4-connect-proxy', 'JNLP4-connect', 'Ping'] } });
  const gw = await describeMaster('master1', registry, probe, jnlpConfig({ mode: 'gateway', advertiseHost: 'edge.example.com' }));
  t.match(gw, { status: 200, body: { host: 'edge.example.com', port: 10002, tunnel: 'edge.example.com:10002' } });
  const asked = () => m1.requests.filter((r) => r.url === '/master1/tcpSlaveAgentListener/').length;
  t.equal(asked(), 1, 'asked the master once, at its --prefix path');
  now += 59_000;
  await describeMaster('master1', registry, probe, jnlpConfig());
  t.equal(asked(), 1, 'still cached inside the TTL');
  now += 2_000;
  await describeMaster('master1', registry, probe, jnlpConfig());
  t.equal(asked(), 2, 'asked again after the TTL');
  source.set(masterRoute('master1', {}, { state: 'unhealthy', detail: 'health check failing' }));
  t.match(await describeMaster('master1', registry, probe, jnlpConfig()), { status: 503, body: { state: 'unhealthy', reason: 'master1 is health check failing' } });
});

t.test('before the first sync an unknown master is a 503 (agents keep polling), not a 404', async (t) => {
  const { Registry } = await import('../../src/registry/registry.js');
  const registry = new Registry({ log: silentLogger() }).add({ id: 'pending', start: async () => undefined, close: async () => undefined });
  await registry.start();
  const probe = new ListenerProbe({ ttl: 60_000, timeout: 2000 });
  t.teardown(() => probe.close());
  t.same(await describeMaster('master1', registry, probe, jnlpConfig()), {
    status: 503,
    body: { name: 'master1', code: 'E_ROUTES_LOADING', reason: 'ci-edge is starting: the route table is not loaded yet (looking for "master1")' },
  });
});
