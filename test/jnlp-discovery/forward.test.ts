import t, { type Test } from 'tap';
import { connect } from 'node:net';
import { Forwarders } from '../../src/jnlp-discovery/forward.js';
import { AgentLimits } from '../../src/jnlp-discovery/limits.js';
import { createMetrics } from '../../src/metrics.js';
import { openAgentConnection, pingAgentListener, writeUtf } from '../helpers/agent-resolver.js';
import { generateIdentityKey, startJenkinsStandin } from '../helpers/jenkins-standin.js';
import { masterRoute, testRegistry } from '../helpers/registry.js';
import { captureLog, eventually, freePort, jnlpConfig } from './fixtures.js';

const key = generateIdentityKey();

async function setup(t: Test, over: Parameters<typeof jnlpConfig>[0] = {}) {
  const { registry, source } = await testRegistry([]);
  const a = await startJenkinsStandin({ name: 'master1', key });
  const b = await startJenkinsStandin({ name: 'master1', key });
  const metrics = createMetrics();
  const { log, lines } = captureLog();
  let n = 0;
  const jnlp = jnlpConfig({ mode: 'gateway', advertiseHost: '127.0.0.1', ...over });
  const fw = new Forwarders({
    jnlp,
    registry,
    log,
    metrics,
    nextId: () => `t${++n}`,
    limits: new AgentLimits(() => jnlp.limits),
  });
  fw.start();
  t.teardown(async () => {
    await fw.close(Date.now());
    await a.close();
    await b.close();
    await registry.close();
  });
  const open = async () => (await metrics.jnlpForwardsOpen.get()).values.find((v) => v.labels.via === 'gateway')?.value ?? 0;
  return { registry, source, a, b, fw, lines, open, metrics };
}

const JNLP4 = writeUtf('Protocol:JNLP4-connect');

t.test('a master with a stable port gets a forwarder that follows it when it moves', async (t) => {
  const { source, a, b, fw, lines, open } = await setup(t);
  const port = await freePort();
  source.set(masterRoute('master1', { http: [{ host: '127.0.0.1', port: a.httpPort }], jnlp: [{ host: '127.0.0.1', port: a.agentPort }] }, { servicePorts: { jnlp: port } }));
  await fw.settled();
  t.equal(fw.addresses()['agent.master1']?.port, port, 'listening on the servicePort');
  t.equal(await pingAgentListener('127.0.0.1', port), true, 'Protocol:Ping answered by the master through the forwarder');

  const first = await openAgentConnection('127.0.0.1', port, [JNLP4, Buffer.from('hello-a')]);
  t.equal((await first.waitFor(7)).toString(), 'hello-a', 'echoed by master at its first place');
  t.equal(await open(), 1, 'jnlpForwardsOpen{via="gateway"}');

  // Marathon restarts the master elsewhere: same stable port, new task endpoint.
  source.set(masterRoute('master1', { http: [{ host: '127.0.0.1', port: b.httpPort }], jnlp: [{ host: '127.0.0.1', port: b.agentPort }] }, { servicePorts: { jnlp: port } }));
  await fw.settled();
  const second = await openAgentConnection('127.0.0.1', port, [JNLP4, Buffer.from('hello-b')]);
  t.equal((await second.waitFor(7)).toString(), 'hello-b');
  await b.waitForConnections(1);
  t.equal(b.connections[0]!.received.toString(), 'hello-b', 'the new connection reached the moved master');
  first.socket.write('again');
  t.equal((await first.waitFor(12)).toString(), 'hello-aagain', 'the connection made before the move keeps running');
  t.equal(a.connections.length, 1);

  first.socket.end();
  second.socket.end();
  await first.closed();
  await second.closed();
  const forwarded = await eventually(() => {
    const l = lines().filter((x) => x['msg'] === 'agent connection forwarded');
    return l.length === 3 && l;
  }, 'three forwarded-connection lines');
  t.equal(await open(), 0);
  t.equal(forwarded.length, 3, 'one log line per forwarded connection (ping, first, second)');
  const line = forwarded.find((l) => l['endpoint'] === `127.0.0.1:${b.agentPort}`)!;
  t.match(line, { via: 'gateway', route: 'master1', port: 'jnlp', bytesIn: JNLP4.length + 7, bytesOut: 7, outcome: 'closed' });
  t.type(line['id'], 'string');
  t.type(line['ms'], 'number');
});

t.test('forwarders close when the master goes, and refuse while it has no endpoint', async (t) => {
  const { source, a, fw, lines, metrics } = await setup(t);
  const port = await freePort();
  source.set(masterRoute('master2', {}, { state: 'starting', servicePorts: { jnlp: port } }));
  await fw.settled();
  t.equal(fw.addresses()['agent.master2']?.port, port, 'open while the master is starting (agents poll HTTP meanwhile)');
  const s = await openAgentConnection('127.0.0.1', port, [JNLP4]);
  await s.closed();
  t.match(lines().find((l) => l['msg'] === 'agent connection refused'), { route: 'master2', reason: 'master is starting', via: 'gateway' });

  source.set(masterRoute('master2', { jnlp: [{ host: '127.0.0.1', port: a.agentPort }] }, { servicePorts: { jnlp: port } }));
  await fw.settled();
  t.equal(await pingAgentListener('127.0.0.1', port), true);
  const agent = await openAgentConnection('127.0.0.1', port, [JNLP4, Buffer.from('still')]);
  await agent.waitFor(5);
  source.remove('master2');
  await fw.settled();
  t.same(fw.addresses(), {}, 'no forwarder left');
  agent.socket.write('-here');
  t.equal((await agent.waitFor(10)).toString(), 'still-here', 'an agent connected before the master went is not cut by the listener closing');
  await fw.close(Date.now());
  t.equal((await agent.closed()).toString(), 'still-here', 'shutdown past its deadline cuts it');
  const counted = (await metrics.jnlpConnections.get()).values.map((v) => [v.labels.via, v.labels.outcome, v.value]);
  t.same(counted, [['gateway', 'refused', 1], ['gateway', 'forwarded', 2]], 'the refusal, the ping and the agent counted');
  const err = await new Promise<string>((resolve) => {
    const c = connect({ host: '127.0.0.1', port });
    c.on('connect', () => resolve('connected'));
    c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
  t.equal(err, 'ECONNREFUSED');
});

t.test('ssh servicePort is forwarded too; a port two masters claim goes to the first', async (t) => {
  const { source, a, fw, lines } = await setup(t);
  const [p1, p2] = [await freePort(), await freePort()];
  source.set(masterRoute('m1', { jnlp: [{ host: '127.0.0.1', port: a.agentPort }], ssh: [{ host: '127.0.0.1', port: a.agentPort }] }, { servicePorts: { jnlp: p1, ssh: p2 } }));
  source.set(masterRoute('m2', { jnlp: [{ host: '127.0.0.1', port: a.agentPort }] }, { servicePorts: { jnlp: p1 } }));
  await fw.settled();
  t.same(Object.keys(fw.addresses()).sort(), ['agent.m1', 'ssh.m1']);
  t.match(lines().find((l) => l['msg'] === 'two masters claim the same stable port; keeping the first'), { port: p1, route: 'm2', other: 'm1' });
});

t.test('jnlp.limits.maxConnections: over it a new agent connection is closed at once, counted and logged', async (t) => {
  const { source, a, fw, lines, metrics } = await setup(t, { limits: { maxConnections: 1, maxPendingPerClient: 100 } });
  const port = await freePort();
  source.set(masterRoute('m1', { jnlp: [{ host: '127.0.0.1', port: a.agentPort }] }, { servicePorts: { jnlp: port } }));
  await fw.settled();
  const first = await openAgentConnection('127.0.0.1', port, [JNLP4, Buffer.from('one')]);
  await first.waitFor(3);
  const second = await openAgentConnection('127.0.0.1', port, [JNLP4, Buffer.from('two')]);
  t.equal((await second.closed()).length, 0, 'the second is closed without a byte');
  t.match(await eventually(() => lines().find((l) => l['code'] === 'E_JNLP_LIMIT'), 'the limit line'), {
    level: 40,
    via: 'gateway',
    route: 'm1',
    client: '127.0.0.1',
    msg: 'agent connection refused: 1 agent connections are open (jnlp.limits.maxConnections 1)',
  });
  t.equal(a.connections.length, 1, 'only the first reached the master');
  first.socket.destroy();
  await first.closed();
  // Its slot is free once ci-edge closed it too: its log line is written after that.
  await eventually(() => lines().find((l) => l['msg'] === 'agent connection forwarded'), "the first connection's line");
  const third = await openAgentConnection('127.0.0.1', port, [JNLP4, Buffer.from('three')]);
  t.equal((await third.waitFor(5)).toString(), 'three', 'a connection after the first closed is forwarded');
  third.socket.destroy();
  const limited = (await metrics.jnlpConnections.get()).values.filter((v) => v.labels.outcome === 'limited').reduce((n, v) => n + v.value, 0);
  t.ok(limited >= 1, `ci_edge_jnlp_connections_total{outcome="limited"} counted (${limited})`);
});
