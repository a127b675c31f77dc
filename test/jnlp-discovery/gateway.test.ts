/**
 * JNLP discovery end to end: startGateway (registry + HTTP router + JNLP front door) in front of Jenkins
 * stand-ins, driven by an agent that applies remoting's own checks (test/helpers/agent-resolver.ts).
 */
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { parseConfig } from '../../src/config/schema.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { fixedLookup, httpGet, openAgentConnection, pingAgentListener, proxyPreamble, resolveAgentEndpoint, writeUtf } from '../helpers/agent-resolver.js';
import { generateIdentityKey, startJenkinsStandin, type JenkinsStandin } from '../helpers/jenkins-standin.js';
import { masterApp, startMarathonSim, type MarathonSim } from '../helpers/marathon-sim.js';
import { captureLog, directDiscovery, eventually, freePort } from './fixtures.js';

const DOMAIN = 'pse.example.com';
const hosts = { [DOMAIN]: '127.0.0.1', [`master1.${DOMAIN}`]: '127.0.0.1', [`master2.${DOMAIN}`]: '127.0.0.1' };
const JNLP4 = writeUtf('Protocol:JNLP4-connect');
const keys = [generateIdentityKey(), generateIdentityKey()] as const;

interface Edge {
  gw: Gateway;
  http: number;
  lines: () => Record<string, unknown>[];
  pathUrl(name: string): string;
  domainUrl(name: string): string;
}

async function edge(t: Test, raw: Record<string, unknown>): Promise<Edge> {
  const config = parseConfig({ domains: [DOMAIN], http: { listen: '127.0.0.1:0' }, ...raw });
  const { log, lines } = captureLog();
  const gw = await startGateway(config, { log, metrics: (await import('../../src/metrics.js')).createMetrics() });
  t.teardown(() => gw.close(0));
  const http = gw.addresses()['http.http']!.port;
  return {
    gw,
    http,
    lines,
    pathUrl: (name) => `http://${DOMAIN}:${http}/${name}/`,
    domainUrl: (name) => `http://${name}.${DOMAIN}:${http}/`,
  };
}

/** A master as a static route: the task's ports are the stand-in's, the in-container port it advertises is 50000. */
function staticMaster(name: string, m: JenkinsStandin, extra: Record<string, unknown> = {}) {
  return { name, endpoints: { http: [`127.0.0.1:${m.httpPort}`], jnlp: [`127.0.0.1:${m.agentPort}`], ssh: ['127.0.0.1:2201'] }, ...extra };
}

async function standin(t: Test, name: string, opts: Parameters<typeof startJenkinsStandin>[0] = {}) {
  const m = await startJenkinsStandin({ name, key: keys[name === 'master2' ? 1 : 0], advertisedPort: 50000, ...opts });
  t.teardown(() => m.close());
  return m;
}

t.test('direct mode: path and domain URLs advertise the task host and mapped port; identity and body untouched', async (t) => {
  const m1 = await standin(t, 'master1');
  const e = await edge(t, { jnlp: { mode: 'direct' }, routes: [staticMaster('master1', m1)] });
  for (const url of [e.pathUrl('master1'), e.domainUrl('master1')]) {
    const ep = await resolveAgentEndpoint(url, { nodeName: 'agent1', hosts });
    t.same(
      { host: ep.host, port: ep.port, identity: ep.identityBase64, protocols: ep.protocols, min: ep.minimumVersion },
      { host: '127.0.0.1', port: m1.agentPort, identity: m1.identity, protocols: ['JNLP4-connect', 'Ping'], min: '3107.v665000b_51092' },
      url,
    );
    t.equal(ep.headers['x-hudson-jnlp-port'], String(m1.agentPort), 'legacy header rewritten too');
    t.ok(ep.identity.equals(m1.publicKey), 'the pinned key is the master\'s');
    t.equal(await pingAgentListener(ep.host, ep.port), true, 'Protocol:Ping through the advertised endpoint');
  }
  t.same(m1.requests.filter((r) => r.url.endsWith('tcpSlaveAgentListener/')).map((r) => [r.url, r.headers['node-name']]), [
    ['/master1/tcpSlaveAgentListener/', 'agent1'],
    ['/tcpSlaveAgentListener/', 'agent1'],
  ]);
  const page = await httpGet(`${e.pathUrl('master1')}tcpSlaveAgentListener/`, {}, undefined, hosts);
  t.equal(page.body, 'Jenkins');
});

t.test('404 (listener disabled) passes through; a master that is not running answers 503; agents keep polling', async (t) => {
  const off = await standin(t, 'master1', { agentListener: false });
  const e = await edge(t, {
    jnlp: { mode: 'direct' },
    routes: [staticMaster('master1', off), { name: 'master2', endpoints: { http: [], jnlp: [], ssh: [] } }],
  });
  await t.rejects(resolveAgentEndpoint(e.pathUrl('master1'), { hosts }), { message: `${e.pathUrl('master1')}tcpSlaveAgentListener/ is invalid: 404 Not Found` });
  const down = await httpGet(`${e.pathUrl('master2')}tcpSlaveAgentListener/`, {}, undefined, hosts);
  t.equal(down.status, 503);
  await t.rejects(resolveAgentEndpoint(e.domainUrl('master2'), { hosts }), { message: /tcpSlaveAgentListener\/ is invalid: 503 / });
  off.setAgentListener(true);
  const ep = await resolveAgentEndpoint(e.pathUrl('master1'), { hosts });
  t.equal(ep.port, off.agentPort, 'the next poll succeeds once the listener is on');
});

t.test('JSON discovery API and X-SSH-Endpoint through the router', async (t) => {
  const m1 = await standin(t, 'master1');
  const e = await edge(t, { jnlp: { mode: 'direct' }, routes: [staticMaster('master1', m1)] });
  const api = await httpGet(`http://${DOMAIN}:${e.http}/_ci-edge/jnlp/master1`, {}, undefined, hosts);
  t.equal(api.status, 200);
  t.same(JSON.parse(api.body), directDiscovery('master1', m1));
  const missing = await httpGet(`http://${DOMAIN}:${e.http}/_ci-edge/jnlp/master9`, {}, undefined, hosts);
  t.same([missing.status, JSON.parse(missing.body)], [404, { name: 'master9', code: 'E_NO_ROUTE', reason: 'no master named "master9"' }]);
  const login = await httpGet(`${e.pathUrl('master1')}login`, {}, undefined, hosts);
  t.equal(login.status, 200);
  t.equal(login.headers['x-ssh-endpoint'], '127.0.0.1:2201', 'was master1.marathon.mesos:22 (in-container)');
});

t.test('WebSocket agents: remoting headers pass the router both ways', async (t) => {
  const m1 = await standin(t, 'master1');
  const e = await edge(t, { jnlp: { mode: 'direct' }, routes: [staticMaster('master1', m1)] });
  t.equal((await httpGet(`${e.pathUrl('master1')}login`, {}, undefined, hosts)).status, 200, 'the -webSocket agent first GETs <url>login');
  for (const url of [`ws://${DOMAIN}:${e.http}/master1/wsagents/`, `ws://master1.${DOMAIN}:${e.http}/wsagents/`]) {
    const ws = new WebSocket(url, {
      headers: { 'Node-Name': 'ws-agent', 'Secret-Key': 's3cr3t', 'X-Remoting-Capability': 'rO0ABXNyABpodWRzb24ucmVtb3RpbmcuQ2FwYWJpbGl0eQ==' },
      lookup: fixedLookup(hosts) as never,
    });
    const upgrade = new Promise<Record<string, unknown>>((resolve, reject) => {
      ws.once('upgrade', (res) => resolve(res.headers));
      ws.once('error', reject);
    });
    const headers = await upgrade;
    await new Promise((r) => (ws.readyState === WebSocket.OPEN ? r(null) : ws.once('open', r)));
    const first = new Promise<string>((resolve) => ws.once('message', (m) => resolve(String(m))));
    ws.send('headers?');
    t.match(headers, { 'x-remoting-capability': 'rO0ABXNyABpodWRzb24ucmVtb3RpbmcuQ2FwYWJpbGl0eQ==', 'x-remoting-minimum-version': '3107.v665000b_51092', 'connection-cookie': 'cookie-master1' }, url);
    t.same(JSON.parse(await first), { master: 'master1', nodeName: 'ws-agent', secretKey: 's3cr3t', capability: 'rO0ABXNyABpodWRzb24ucmVtb3RpbmcuQ2FwYWJpbGl0eQ==' });
    ws.send('frame');
    t.equal(String(await new Promise((r) => ws.once('message', r))), 'frame');
    ws.close();
  }
});

t.test('a master moving on Marathon: direct-mode advertisement and gateway forwarder follow it', async (t) => {
  const a = await standin(t, 'master1');
  const b = await standin(t, 'master1');
  const stable = await freePort();
  const app = masterApp('master1', { host: '127.0.0.1', ports: { http: a.httpPort, jnlp: a.agentPort }, servicePorts: { jnlp: stable } });
  const sim: MarathonSim = await startMarathonSim({ apps: [app] });
  t.teardown(() => sim.close());
  const direct = await edge(t, { marathon: { urls: [sim.url] }, jnlp: { mode: 'direct' } });
  const gateway = await edge(t, { marathon: { urls: [sim.url] }, jnlp: { mode: 'gateway', advertiseHost: '127.0.0.1', bindHost: '127.0.0.1' } });
  await eventually(() => gateway.gw.addresses()['jnlp.agent.master1'], 'forwarder open');

  t.equal((await resolveAgentEndpoint(direct.pathUrl('master1'), { hosts })).port, a.agentPort);
  const viaGw = await resolveAgentEndpoint(gateway.pathUrl('master1'), { hosts });
  t.same([viaGw.host, viaGw.port], ['127.0.0.1', stable], 'gateway mode: advertiseHost and the servicePort');
  const before = await openAgentConnection(viaGw.host, viaGw.port, [JNLP4, Buffer.from('on-a')]);
  t.equal((await before.waitFor(4)).toString(), 'on-a');

  sim.moveTask('/masters/master1', { host: '127.0.0.1', ports: [b.httpPort, b.agentPort] });
  for (const g of [direct, gateway]) {
    await eventually(() => g.gw.registry.current().routes.get('master1')?.endpoints.jnlp[0]?.port === b.agentPort, 'registry sees the move', 500);
  }
  t.equal((await resolveAgentEndpoint(direct.pathUrl('master1'), { hosts })).port, b.agentPort, 'direct mode advertises the new task port');
  const again = await resolveAgentEndpoint(gateway.pathUrl('master1'), { hosts });
  t.equal(again.port, stable, 'gateway mode keeps the stable port');
  const after = await openAgentConnection(again.host, again.port, [JNLP4, Buffer.from('on-b')]);
  t.equal((await after.waitFor(4)).toString(), 'on-b');
  await b.waitForConnections(1);
  t.equal(b.connections[0]!.received.toString(), 'on-b', 'the forwarder took the new connection to the moved master');
  before.socket.write('+');
  t.equal((await before.waitFor(5)).toString(), 'on-a+', 'the old connection was not cut');
  before.socket.destroy();
  after.socket.destroy();
});

t.test('shared port: JNLP4-connect-proxy to the master each agent discovered, told apart by client address', async (t) => {
  const m1 = await standin(t, 'master1');
  const m2 = await standin(t, 'master2');
  const shared = await freePort();
  const e = await edge(t, {
    jnlp: { mode: 'direct', advertiseHost: '127.0.0.1', bindHost: '127.0.0.1', sharedPort: shared },
    routes: [staticMaster('master1', m1), staticMaster('master2', m2)],
  });
  // The same agent name on two masters, from two hosts (127.0.0.1 and 127.0.0.2).
  const ep1 = await resolveAgentEndpoint(e.pathUrl('master1'), { nodeName: 'agent1', localAddress: '127.0.0.1', hosts });
  const ep2 = await resolveAgentEndpoint(e.domainUrl('master2'), { nodeName: 'agent1', localAddress: '127.0.0.2', hosts });
  t.same([ep1.host, ep1.port, ep1.protocols], ['127.0.0.1', shared, ['JNLP4-connect-proxy', 'JNLP4-connect', 'Ping']]);
  t.same([ep2.port, ep2.identityBase64], [shared, m2.identity], 'one port, each master\'s own identity');
  const payload = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31) & 0xff));
  const pre = proxyPreamble('agent1');
  const s1 = await openAgentConnection('127.0.0.1', shared, [Buffer.concat([pre, JNLP4, payload])], '127.0.0.1');
  const s2 = await openAgentConnection('127.0.0.1', shared, [pre.subarray(0, 5), pre.subarray(5), JNLP4, Buffer.from('two')], '127.0.0.2');
  t.ok((await s1.waitFor(payload.length)).equals(payload), 'every byte after the header arrived intact and came back');
  t.equal((await s2.waitFor(3)).toString(), 'two');
  t.same([m1.connections.length, m2.connections.length], [1, 1]);
  t.ok(m1.connections[0]!.received.equals(payload));
  t.equal(m2.connections[0]!.received.toString(), 'two');

  const stranger = await openAgentConnection('127.0.0.1', shared, [proxyPreamble('stranger'), JNLP4]);
  t.equal((await stranger.closed()).length, 0, 'an unattributable connection is closed');
  t.match(await eventually(() => e.lines().find((l) => l['code'] === 'E_JNLP_UNATTRIBUTED'), 'refusal logged'), {
    reason: 'agent "stranger" from 127.0.0.1 never discovered a master through ci-edge',
  });
  s1.socket.destroy();
  s2.socket.destroy();
});

t.test('behind a load balancer (http.trustedProxies): discoveries are recorded under the client X-Forwarded-For names', async (t) => {
  const m1 = await standin(t, 'master1');
  const m2 = await standin(t, 'master2');
  const start = async (trustedProxies: string[]) => {
    const shared = await freePort();
    const e = await edge(t, {
      http: { listen: '127.0.0.1:0', trustedProxies },
      jnlp: { mode: 'direct', advertiseHost: '127.0.0.1', bindHost: '127.0.0.1', sharedPort: shared },
      routes: [staticMaster('master1', m1), staticMaster('master2', m2)],
    });
    return { ...e, shared };
  };
  // An ALB in front of the router (it connects from 127.0.0.1 and adds X-Forwarded-For); the agent port is behind
  // an NLB that keeps the client's own address (the agents connect from 127.0.0.2 and 127.0.0.3).
  const discoverVia = (e: Edge, master: string, client: string) =>
    httpGet(`${e.pathUrl(master)}tcpSlaveAgentListener/`, { 'Node-Name': 'agent1', 'X-Forwarded-For': client }, '127.0.0.1', hosts);
  const connectFrom = (shared: number, client: string, data: string) => openAgentConnection('127.0.0.1', shared, [Buffer.concat([proxyPreamble('agent1'), JNLP4, Buffer.from(data)])], client);

  const trusting = await start(['127.0.0.1']);
  t.equal((await discoverVia(trusting, 'master1', '127.0.0.2')).status, 200);
  t.equal((await discoverVia(trusting, 'master2', '127.0.0.3')).status, 200);
  const s1 = await connectFrom(trusting.shared, '127.0.0.2', 'to-1');
  const s2 = await connectFrom(trusting.shared, '127.0.0.3', 'to-2');
  t.equal((await s1.waitFor(4)).toString(), 'to-1');
  t.equal((await s2.waitFor(4)).toString(), 'to-2');
  t.same([m1.connections.map((c) => c.received.toString()), m2.connections.map((c) => c.received.toString())], [['to-1'], ['to-2']], 'the same agent name on two masters, each routed by its own address');
  t.match(trusting.lines().filter((l) => l['msg'] === 'request').map((l) => l['client']), ['127.0.0.2', '127.0.0.3'], 'the access log names the clients too');
  s1.socket.destroy();
  s2.socket.destroy();

  // Without trusting the balancer both discoveries are recorded under its address, the second over the first:
  // the agent that discovered master1 is sent to master2 (where its TLS pinning then fails).
  const plain = await start([]);
  await discoverVia(plain, 'master1', '127.0.0.2');
  await discoverVia(plain, 'master2', '127.0.0.3');
  const misrouted = await connectFrom(plain.shared, '127.0.0.2', 'meant-for-1');
  t.equal((await misrouted.waitFor(11)).toString(), 'meant-for-1');
  t.same([m1.connections.length, m2.connections.at(-1)?.received.toString()], [1, 'meant-for-1'], 'without trustedProxies it reaches the wrong master');
  misrouted.socket.destroy();
});

t.test('reload: http and jnlp changes keep the JNLP listeners, its agent connections and its discoveries', async (t) => {
  const m1 = await standin(t, 'master1');
  const shared = await freePort();
  const raw = {
    domains: [DOMAIN],
    http: { listen: '127.0.0.1:0' },
    jnlp: { mode: 'direct', advertiseHost: '127.0.0.1', bindHost: '127.0.0.1', sharedPort: shared },
    routes: [staticMaster('master1', m1)],
  };
  const { log, lines } = captureLog();
  const configs = [
    parseConfig({ ...raw, http: { listen: '127.0.0.1:0', timeouts: { idle: '90s' } } }),
    parseConfig({ ...raw, http: { listen: '127.0.0.1:0', timeouts: { idle: '90s' } }, jnlp: { ...raw.jnlp, cacheTtl: '30s', advertiseHost: 'edge.example.com', limits: { maxConnections: 3 } } }),
  ];
  const metrics = (await import('../../src/metrics.js')).createMetrics();
  const gw = await startGateway(parseConfig(raw), { log, metrics, reloadConfig: async () => configs.shift()! });
  t.teardown(() => gw.close(0));
  const discoverAndConnect = async (node: string, data: string, advertised = '127.0.0.1') => {
    const http = gw.addresses()['http.http']!.port;
    const ep = await resolveAgentEndpoint(`http://${DOMAIN}:${http}/master1/`, { nodeName: node, localAddress: '127.0.0.1', hosts: { ...hosts, 'edge.example.com': '127.0.0.1' } });
    t.same([ep.host, ep.port], [advertised, shared]);
    const s = await openAgentConnection('127.0.0.1', shared, [Buffer.concat([proxyPreamble(node), JNLP4, Buffer.from(data)])], '127.0.0.1');
    t.equal((await s.waitFor(data.length)).toString(), data, `${node} attributed to master1`);
    return s;
  };
  const agent = await discoverAndConnect('agent1', 'before');

  t.match(await gw.reload(), { ok: true, changed: ['http'] });
  const reconfigured = () =>
    lines()
      .filter((l) => l['msg'] === 'front door reconfigured by reload')
      .map((l) => `${String(l['frontDoor'])}${l['restarted'] ? ' restarted' : ' in place'}`);
  t.same(reconfigured(), ['http in place'], 'only the router, and in place');
  agent.socket.write('+');
  t.equal((await agent.waitFor(7)).toString(), 'before+', 'the agent connection made before the reload still runs');
  (await discoverAndConnect('agent2', 'after-http')).socket.destroy();
  // Gone in ci-edge too (its line is written once both legs closed), so it holds no place under the limit below.
  await eventually(() => lines().find((l) => l['msg'] === 'agent connection forwarded' && l['node'] === 'agent2'), "agent2's line");

  t.match(await gw.reload(), { ok: true, changed: ['jnlp'] });
  t.same(reconfigured(), ['http in place', 'jnlp in place', 'http in place'], 'JNLP keeps its listeners too');
  agent.socket.write('+');
  t.equal((await agent.waitFor(8)).toString(), 'before++', 'and the agent connection survives a jnlp change');
  // The discovery the router records must reach the shared port's log, whichever front door changed.
  // Remoting's port probe before it (isPortVisible) held a place only while it was open.
  const agent3 = await discoverAndConnect('agent3', 'after-jnlp', 'edge.example.com');
  // The new limit applies from the next connection on; the ones open are not cut.
  const silent = await openAgentConnection('127.0.0.1', shared, [], '127.0.0.1');
  const fourth = await openAgentConnection('127.0.0.1', shared, [Buffer.concat([proxyPreamble('agent3'), JNLP4])], '127.0.0.1');
  t.equal((await fourth.closed()).length, 0, 'a fourth connection is over the reloaded jnlp.limits.maxConnections');
  t.match(await eventually(() => lines().find((l) => l['code'] === 'E_JNLP_LIMIT'), 'the limit line'), { msg: 'agent connection refused: 3 agent connections are open (jnlp.limits.maxConnections 3)' });
  silent.socket.destroy();
  agent.socket.write('+');
  t.equal((await agent.waitFor(9)).toString(), 'before+++', 'the first agent still runs');
  agent3.socket.destroy();
  agent.socket.destroy();
});
