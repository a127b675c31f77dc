/**
 * Worker-per-core mode (issue #3, `http.workers`): the router runs in cluster workers fed by the primary's
 * registry; their requests show in the primary's /metrics, and close() leaves no process behind.
 */
import cluster, { type Worker } from 'node:cluster';
import { request } from 'node:http';
import { Writable } from 'node:stream';
import t from 'tap';
import { availableParallelism } from 'node:os';
import { parseConfig } from '../../src/config/schema.js';
import { startGateway } from '../../src/gateway.js';
import type { FromWorker } from '../../src/http-router/workers.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { RemoteRegistry, toWire } from '../../src/registry/remote.js';
import type { Endpoint } from '../../src/registry/types.js';
import { openAgentConnection, proxyPreamble, resolveAgentEndpoint, writeUtf } from '../helpers/agent-resolver.js';
import { startBackend } from '../helpers/backends.js';
import { generateIdentityKey, startJenkinsStandin } from '../helpers/jenkins-standin.js';
import { freePort } from '../helpers/ports.js';
import { testRegistry, masterRoute } from '../helpers/registry.js';

const DOMAIN = 'pse.example.com';

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // A connection per request, so cluster's round-robin hands them to every worker.
    const req = request({ host: '127.0.0.1', port, path, headers: { host: DOMAIN, connection: 'close' }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** ci_edge_http_requests_total summed, from one worker's own registry (the primary's IPC question, asked directly). */
function workerRequests(w: Worker, id: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('worker did not answer')), 5_000);
    const onMessage = (msg: FromWorker) => {
      if (msg.type !== 'ci-edge:metrics' || msg.id !== id) return;
      clearTimeout(timer);
      w.off('message', onMessage);
      const m = msg.metrics.find((x) => x.name === 'ci_edge_http_requests_total');
      resolve((m?.values ?? []).reduce((s, v) => s + v.value, 0));
    };
    w.on('message', onMessage);
    w.send({ type: 'ci-edge:metrics', id });
  });
}

t.test('RemoteRegistry: rebuilds the Map, tells subscribers, ignores stale versions, reports failed endpoints', async (t) => {
  const { registry, source } = await testRegistry([masterRoute('master1', { http: [{ host: '10.0.0.1', port: 8080 }] })]);
  t.teardown(() => registry.close());
  const failed: string[] = [];
  const remote = new RemoteRegistry((name: string, ep: Endpoint) => failed.push(`${name} ${ep.host}:${ep.port}`));
  t.equal(remote.current().routes.size, 0);
  const seen: number[] = [];
  const off = remote.subscribe((next, prev) => seen.push(next.version, prev.version));
  // Through JSON, as IPC carries it.
  remote.apply(JSON.parse(JSON.stringify(toWire(registry.current()))));
  const v1 = registry.current().version;
  t.same(remote.current().routes.get('master1')?.endpoints.http, [{ host: '10.0.0.1', port: 8080 }]);
  t.same(remote.current().status, registry.current().status);
  source.set(masterRoute('master2', { http: [{ host: '10.0.0.2', port: 8080 }] }));
  const newer = toWire(registry.current());
  t.ok(newer.version > v1);
  remote.apply(newer);
  t.same([...remote.current().routes.keys()].sort(), ['master1', 'master2']);
  remote.apply({ ...toWire(registry.current()), version: v1, routes: [] });
  t.equal(remote.current().routes.size, 2, 'an older snapshot arriving late is ignored');
  t.same(seen, [v1, 0, newer.version, v1]);
  off();
  remote.endpointFailed('master1', { host: '10.0.0.1', port: 8080, taskId: 't1' });
  t.same(failed, ['master1 10.0.0.1:8080']);
});

t.test('http.workers: 2 routes through both workers, follows route changes, counts in /metrics, stops every worker', async (t) => {
  const b1 = await startBackend('b1');
  const b2 = await startBackend('b2');
  t.teardown(() => Promise.all([b1.close(), b2.close()]));
  const route = (name: string, port: number) => ({ name, kind: 'master', endpoints: { http: [`127.0.0.1:${port}`], jnlp: [], ssh: [] } });
  const raw = { domains: [DOMAIN], http: { listen: '127.0.0.1:0', workers: 2 }, admin: { listen: '127.0.0.1:0' }, routes: [route('master1', b1.port)] };
  let next = raw;
  const gw = await startGateway(parseConfig(raw), { log: silentLogger(), metrics: createMetrics(), reloadConfig: async () => parseConfig(next) });
  let closed = false;
  t.teardown(() => (closed ? undefined : gw.close(0)));
  const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
  t.equal(workers.length, 2, 'two workers forked');
  const port = gw.addresses()['http.http']!.port;
  t.ok(port > 0, 'a real port, shared by both workers');

  const N = 20;
  for (let i = 0; i < N; i++) {
    const r = await get(port, '/master1/x');
    t.equal(r.status, 200, `request ${i}`);
  }
  t.equal(b1.requests.length, N);
  const perWorker = await Promise.all(workers.map((w, i) => workerRequests(w, 1_000 + i)));
  t.equal(perWorker.reduce((a, b) => a + b, 0), N);
  t.ok(perWorker.every((c) => c > 0), `both workers answered (${perWorker.join(' + ')})`);

  const admin = gw.addresses()['admin.admin']!.port;
  const metrics = await fetch(`http://127.0.0.1:${admin}/metrics`).then((r) => r.text());
  t.match(metrics, new RegExp(`^ci_edge_http_requests_total\\{route="master1",code="2xx"\\} ${N}$`, 'm'), "the primary's /metrics counts the workers' requests");
  // This primary collects no process metrics (the test passes its own registry), so these are the workers'.
  const rss = Number(/^ci_edge_process_resident_memory_bytes (\d+)/m.exec(metrics)?.[1]);
  t.ok(rss > 2 * 20e6, `the workers' resident memory, summed: ${(rss / 1e6).toFixed(0)} MB`);
  t.match(metrics, /^ci_edge_process_cpu_seconds_total [\d.e+-]+$/m, "the workers' CPU time");

  // A route change in the primary's registry (here through reload of file routes) reaches every worker.
  t.equal((await get(port, '/master2/')).status, 404);
  next = { ...raw, routes: [route('master1', b1.port), route('master2', b2.port)] };
  t.match(await gw.reload(), { ok: true, changed: ['routes'] });
  let hits = 0;
  for (let i = 0; i < 100 && hits < 6; i++) {
    const r = await get(port, '/master2/y');
    if (r.status === 200) hits++;
    else await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(hits, 6, 'master2 answers through the workers');
  t.equal(b2.requests.length, 6);

  const pids = workers.map((w) => w.process.pid!);
  closed = true;
  await gw.close(1_000);
  t.same(Object.keys(cluster.workers ?? {}), [], 'no worker left in the cluster');
  for (const pid of pids) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} is gone`);
});

t.test('http.workers config: default 1, "auto" is one per core, 1..64 otherwise', async (t) => {
  const workers = (w: unknown) => parseConfig({ domains: [DOMAIN], http: w === undefined ? {} : { workers: w } }).http!.workers;
  t.equal(workers(undefined), 1);
  t.equal(workers(3), 3);
  t.equal(workers('auto'), Math.min(64, availableParallelism()));
  for (const bad of [0, 65, 1.5, 'many']) {
    t.throws(() => workers(bad), { code: 'E_CONFIG_INVALID', message: `invalid configuration: http.workers: expected "auto" or a whole number from 1 to 64, got ${JSON.stringify(bad)}` }, `refuses ${JSON.stringify(bad)}`);
  }
});

t.test('http.workers: a worker that dies is replaced; JNLP discoveries in a worker reach the shared port', async (t) => {
  const m1 = await startJenkinsStandin({ name: 'master1', key: generateIdentityKey(), advertisedPort: 50000 });
  t.teardown(() => m1.close());
  const shared = await freePort();
  const config = parseConfig({
    domains: [DOMAIN],
    http: { listen: '127.0.0.1:0', workers: 2 },
    jnlp: { mode: 'direct', advertiseHost: '127.0.0.1', bindHost: '127.0.0.1', sharedPort: shared },
    routes: [{ name: 'master1', endpoints: { http: [`127.0.0.1:${m1.httpPort}`], jnlp: [`127.0.0.1:${m1.agentPort}`], ssh: [] } }],
  });
  const gw = await startGateway(config, { log: silentLogger(), metrics: createMetrics() });
  t.teardown(() => gw.close(0));
  const port = gw.addresses()['http.http']!.port;

  const victim = Object.values(cluster.workers ?? {})[0]!;
  const victimPid = victim.process.pid;
  victim.process.kill('SIGKILL');
  let replaced: Worker[] = [];
  for (let i = 0; i < 250 && replaced.length < 2; i++) {
    await new Promise((r) => setTimeout(r, 20));
    replaced = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.process.pid !== victimPid && !w.isDead());
  }
  t.equal(replaced.length, 2, 'a new worker took the dead one\'s place');

  // The agent's discovery GET is answered by a worker; the shared port in the primary routes by it.
  const ep = await resolveAgentEndpoint(`http://${DOMAIN}:${port}/master1/`, { nodeName: 'agent1', hosts: { [DOMAIN]: '127.0.0.1' } });
  t.same([ep.host, ep.port, ep.identityBase64], ['127.0.0.1', shared, m1.identity]);
  const s1 = await openAgentConnection('127.0.0.1', shared, [Buffer.concat([proxyPreamble('agent1'), writeUtf('Protocol:JNLP4-connect'), Buffer.from('hi')])], '127.0.0.1');
  t.equal((await s1.waitFor(2)).toString(), 'hi', 'attributed to master1 and relayed');
  t.equal(m1.connections.length, 1);
  s1.socket.destroy();
});

t.test('http.workers: a reload that changes the http section replaces the workers without a failed request', async (t) => {
  const backend = await startBackend('master1');
  t.teardown(() => backend.close());
  const port = await freePort();
  const raw = (idle: string) => ({
    domains: [DOMAIN],
    http: { listen: `127.0.0.1:${port}`, workers: 2, timeouts: { idle } },
    routes: [{ name: 'master1', endpoints: { http: [`127.0.0.1:${backend.port}`] } }],
  });
  let next = parseConfig(raw('90s'));
  const gw = await startGateway(parseConfig(raw('60s')), { log: silentLogger(), metrics: createMetrics(), reloadConfig: async () => next });
  t.teardown(() => gw.close(0));
  const before = new Set(Object.values(cluster.workers ?? {}).map((w) => w!.process.pid));
  t.equal(before.size, 2);
  // Requests keep going while the workers are swapped; none may fail.
  let stop = false;
  const statuses: number[] = [];
  const loop = (async () => {
    for (let i = 0; i < 2000 && !stop; i++) statuses.push((await get(port, '/master1/x')).status);
  })();
  t.match(await gw.reload(), { ok: true, changed: ['http'] });
  next = parseConfig(raw('120s'));
  await new Promise((r) => setTimeout(r, 200));
  stop = true;
  await loop;
  t.ok(statuses.length > 0);
  t.same([...new Set(statuses)], [200], `${statuses.length} requests across the reload, all 200`);
  for (let i = 0; i < 100 && Object.values(cluster.workers ?? {}).length > 2; i++) await new Promise((r) => setTimeout(r, 50));
  const now = Object.values(cluster.workers ?? {}).map((w) => w!.process.pid);
  t.equal(now.length, 2, 'the old workers are gone once their work is done');
  t.ok(now.every((pid) => !before.has(pid)), 'the workers serving now are new ones');
});

t.test('http.workers: a reload that changes log.level reaches the running workers; none is replaced', async (t) => {
  // Worker output piped to this process (instead of inherited), to read their access log lines.
  cluster.setupPrimary({ silent: true });
  t.teardown(() => cluster.setupPrimary({ silent: false }));
  const backend = await startBackend('master1');
  t.teardown(() => backend.close());
  const port = await freePort();
  const raw = (level: string) => ({
    domains: [DOMAIN],
    http: { listen: `127.0.0.1:${port}`, workers: 2 },
    routes: [{ name: 'master1', endpoints: { http: [`127.0.0.1:${backend.port}`] } }],
    log: { level },
  });
  const log = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const gw = await startGateway(parseConfig(raw('warn')), { log, metrics: createMetrics(), reloadConfig: async () => parseConfig(raw('info')) });
  t.teardown(() => gw.close(0));
  const workers = Object.values(cluster.workers ?? {}).map((w) => w!);
  t.equal(workers.length, 2);
  let accessLines = 0;
  for (const w of workers) w.process.stdout?.on('data', (c: Buffer) => (accessLines += c.toString().split('\n').filter((l) => l.includes('"msg":"request"')).length));
  for (let i = 0; i < 6; i++) t.equal((await get(port, '/master1/x')).status, 200);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(accessLines, 0, 'no access lines at warn');
  t.match(await gw.reload(), { ok: true, changed: ['log'], restartRequired: [] });
  for (let i = 0; i < 100 && accessLines < 6; i++) {
    if (i < 6) t.equal((await get(port, '/master1/x')).status, 200);
    else await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(accessLines, 6, 'one access line per request at info, from both workers');
  t.same(Object.values(cluster.workers ?? {}).map((w) => w!.process.pid).sort(), workers.map((w) => w.process.pid).sort(), 'the same workers');
});
