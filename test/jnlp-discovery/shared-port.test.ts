import t, { type Test } from 'tap';
import { DiscoveryLog } from '../../src/jnlp-discovery/attribution.js';
import { AgentLimits } from '../../src/jnlp-discovery/limits.js';
import { SharedPort } from '../../src/jnlp-discovery/shared-port.js';
import { createMetrics } from '../../src/metrics.js';
import { isPortVisible, openAgentConnection, pingAgentListener, proxyPreamble, writeUtf } from '../helpers/agent-resolver.js';
import { generateIdentityKey, startJenkinsStandin } from '../helpers/jenkins-standin.js';
import { masterRoute, testRegistry } from '../helpers/registry.js';
import { captureLog, eventually, jnlpConfig } from './fixtures.js';

const key = generateIdentityKey();
const JNLP4 = writeUtf('Protocol:JNLP4-connect');

async function setup(t: Test, over: Parameters<typeof jnlpConfig>[0] = {}) {
  const a = await startJenkinsStandin({ name: 'master1', key });
  const b = await startJenkinsStandin({ name: 'master2', key });
  const { registry } = await testRegistry([
    masterRoute('master1', { http: [{ host: '127.0.0.1', port: a.httpPort }], jnlp: [{ host: '127.0.0.1', port: a.agentPort }] }),
    masterRoute('master2', { http: [{ host: '127.0.0.1', port: b.httpPort }], jnlp: [{ host: '127.0.0.1', port: b.agentPort }] }),
    masterRoute('master3', {}, { state: 'starting' }),
  ]);
  const discoveries = new DiscoveryLog({ ttl: 60_000 });
  const { log, lines } = captureLog();
  const metrics = createMetrics();
  let n = 0;
  const jnlp = jnlpConfig({ advertiseHost: '127.0.0.1', sharedPort: 50000, ...over });
  const limits = new AgentLimits(() => jnlp.limits);
  const shared = new SharedPort({ jnlp, port: 0, registry, discoveries, log, metrics, nextId: () => `s${++n}`, limits });
  const port = (await shared.start()).port;
  t.teardown(async () => {
    await shared.close(Date.now());
    await a.close();
    await b.close();
    await registry.close();
  });
  const refused = () => lines().filter((l) => l['code'] === 'E_JNLP_UNATTRIBUTED');
  return { a, b, port, discoveries, lines, refused, metrics, limits };
}

t.test('JNLP4-connect-proxy: the preamble is consumed, every byte after it reaches the master intact', async (t) => {
  const { a, port, discoveries, lines } = await setup(t);
  discoveries.record('agent1', '127.0.0.1', 'master1');
  const payload = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff));
  const pre = proxyPreamble('agent1');
  // Split inside the length, inside the header line, then the blank line together with the real protocol.
  const parts = [pre.subarray(0, 1), pre.subarray(1, 20), pre.subarray(20, pre.length - 1), Buffer.concat([pre.subarray(pre.length - 1), JNLP4, payload.subarray(0, 10)]), payload.subarray(10)];
  const s = await openAgentConnection('127.0.0.1', port, parts);
  t.ok((await s.waitFor(payload.length)).equals(payload), 'the master echoed every byte back');
  await a.waitForConnections(1);
  t.equal(a.connections[0]!.protocol, 'JNLP4-connect', 'the master saw a plain JNLP4-connect, not the proxy protocol');
  t.ok(a.connections[0]!.received.equals(payload));
  s.socket.end();
  await s.closed();
  const line = await eventually(() => lines().find((l) => l['msg'] === 'agent connection forwarded'), 'forward log line');
  t.match(line, { via: 'shared', route: 'master1', node: 'agent1', protocol: 'JNLP4-connect-proxy', attributedBy: 'node-and-address', outcome: 'closed' });
  t.equal(line['bytesIn'], pre.length + JNLP4.length + payload.length);
});

t.test('Windows agents end the header lines with CRLF; all of it may come in one packet', async (t) => {
  const { a, port, discoveries } = await setup(t);
  discoveries.record('win-agent', '127.0.0.1', 'master1');
  const s = await openAgentConnection('127.0.0.1', port, [Buffer.concat([proxyPreamble('win-agent', '\r\n'), JNLP4, Buffer.from('\r\n\r\nx')])]);
  t.equal((await s.waitFor(5)).toString(), '\r\n\r\nx', 'bytes after the blank line that look like headers are still data');
  await a.waitForConnections(1);
  t.equal(a.connections[0]!.received.toString(), '\r\n\r\nx');
  s.socket.destroy();
});

t.test('two agents with the same name on two masters are routed by client address', async (t) => {
  const { a, b, port, discoveries } = await setup(t);
  discoveries.record('agent1', '127.0.0.1', 'master1');
  discoveries.record('agent1', '127.0.0.2', 'master2');
  const one = await openAgentConnection('127.0.0.1', port, [proxyPreamble('agent1'), JNLP4, Buffer.from('from-1')], '127.0.0.1');
  const two = await openAgentConnection('127.0.0.1', port, [proxyPreamble('agent1'), JNLP4, Buffer.from('from-2')], '127.0.0.2');
  t.equal((await one.waitFor(6)).toString(), 'from-1');
  t.equal((await two.waitFor(6)).toString(), 'from-2');
  t.same(a.connections.map((c) => c.received.toString()), ['from-1']);
  t.same(b.connections.map((c) => c.received.toString()), ['from-2']);
  t.equal(b.connections[0]!.remoteAddress, '127.0.0.1', 'ci-edge, not the agent, connects to the master');
  one.socket.destroy();
  two.socket.destroy();
});

/** `ci_edge_jnlp_connections_total{via="shared"}` by outcome. */
async function outcomes(metrics: ReturnType<typeof createMetrics>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metrics.jnlpConnections.get()).values) if (v.labels.via === 'shared') out[String(v.labels.outcome)] = v.value;
  return out;
}

t.test('a connection it cannot attribute is closed with a logged reason', async (t) => {
  const { a, b, port, discoveries, refused, metrics } = await setup(t);
  discoveries.record('agent1', '127.0.0.1', 'master1');
  discoveries.record('agent1', '127.0.0.2', 'master2');
  discoveries.record('builder', '127.0.0.1', 'master3');
  const cases: [string, Buffer[], string][] = [
    ['unknown node', [proxyPreamble('stranger'), JNLP4], 'agent "stranger" from 127.0.0.1 never discovered a master through ci-edge'],
    ['ambiguous node', [proxyPreamble('agent1'), JNLP4], 'agent "agent1" from 127.0.0.3 is known on several masters (master1, master2)'],
    ['no Node-Name', [Buffer.concat([writeUtf('Protocol:JNLP4-connect-proxy'), Buffer.from('Other: x\n\n')])], 'JNLP4-connect-proxy preamble without Node-Name'],
    ['master down', [proxyPreamble('builder'), JNLP4], 'master3 has no healthy agent port (starting)'],
    ['not an agent', [Buffer.from('GET / HTTP/1.1\r\n\r\n')], 'an HTTP request, not an agent protocol'],
  ];
  for (const [what, parts, reason] of cases) {
    const from = what === 'ambiguous node' ? '127.0.0.3' : '127.0.0.1';
    const s = await openAgentConnection('127.0.0.1', port, parts, from);
    t.equal((await s.closed()).length, 0, `${what}: closed without a byte`);
    const line = await eventually(() => refused().find((l) => l['reason'] === reason), `${what} log line`);
    t.match(line, { level: 40, via: 'shared', client: from, msg: `cannot tell which master agent connection belongs to: ${reason}` }, what);
  }
  t.same(await outcomes(metrics), { unattributed: 3, refused: 1, 'bad-preamble': 1 }, 'ci_edge_jnlp_connections_total by outcome');
  t.equal(a.connections.length + b.connections.length, 0, 'nothing reached a master');
});

t.test('plain protocols: Ping is answered, JNLP4-connect routes by an unambiguous address, a bare probe is quiet', async (t) => {
  const { a, port, discoveries, refused, lines, metrics } = await setup(t);
  t.equal(await pingAgentListener('127.0.0.1', port), true);
  t.equal(await isPortVisible('127.0.0.1', port, 5000), true, "remoting's isPortVisible check");
  discoveries.record('old-agent', '127.0.0.1', 'master1');
  const s = await openAgentConnection('127.0.0.1', port, [JNLP4, Buffer.from('legacy')]);
  t.equal((await s.waitFor(6)).toString(), 'legacy');
  await a.waitForConnections(1);
  t.equal(a.connections[0]!.protocol, 'JNLP4-connect', 'the protocol line was replayed to the master');
  s.socket.destroy();
  await eventually(() => lines().some((l) => l['msg'] === 'port probe'), 'probe logged at debug');
  t.equal(refused().length, 0, 'neither the ping nor the probe was a refusal');
  t.match(await eventually(() => lines().find((l) => l['attributedBy'] === 'address'), 'address-routed line'), { route: 'master1', protocol: 'JNLP4-connect', node: null });
  t.same(await outcomes(metrics), { ping: 1, probe: 1, forwarded: 1 }, 'ci_edge_jnlp_connections_total by outcome');
});

t.test('the preamble is bounded in time and size', async (t) => {
  const { port, refused, metrics } = await setup(t, { headerTimeout: 100, maxHeaderSize: 256 });
  const slow = await openAgentConnection('127.0.0.1', port, [writeUtf('Protocol:JNLP4-connect-proxy'), Buffer.from('Node-Na')]);
  await slow.closed();
  t.match(await eventually(() => refused()[0], 'timeout refusal'), { reason: 'no complete preamble within 100 ms' });
  const big = await openAgentConnection('127.0.0.1', port, [writeUtf('Protocol:JNLP4-connect-proxy'), Buffer.from(`Node-Name: ${'n'.repeat(300)}`)]);
  await big.closed();
  t.match(await eventually(() => refused()[1], 'size refusal'), { reason: 'proxy header exceeds 256 bytes' });
  t.same(await outcomes(metrics), { 'bad-preamble': 2 });
});

t.test('jnlp.limits.maxPendingPerClient: silent connections from one address are bounded, other addresses and finished preambles are not', async (t) => {
  const { a, port, discoveries, lines, metrics, limits } = await setup(t, { limits: { maxConnections: 100, maxPendingPerClient: 2 } });
  discoveries.record('agent1', '127.0.0.1', 'master1');
  discoveries.record('agent2', '127.0.0.2', 'master1');
  const silent = [await openAgentConnection('127.0.0.1', port, []), await openAgentConnection('127.0.0.1', port, [Buffer.from([0])])];
  await eventually(() => limits.counts().open === 2, 'two connections admitted');
  const third = await openAgentConnection('127.0.0.1', port, [proxyPreamble('agent1'), JNLP4]);
  t.equal((await third.closed()).length, 0, 'a third from the same address is closed at once');
  t.match(await eventually(() => lines().find((l) => l['code'] === 'E_JNLP_LIMIT'), 'the limit line'), {
    via: 'shared',
    client: '127.0.0.1',
    msg: 'agent connection refused: 2 connections from 127.0.0.1 are still in their preamble (jnlp.limits.maxPendingPerClient 2)',
  });
  const other = await openAgentConnection('127.0.0.1', port, [proxyPreamble('agent2'), JNLP4, Buffer.from('x')], '127.0.0.2');
  t.equal((await other.waitFor(1)).toString(), 'x', 'another address is not held back');
  // One silent connection finishes its preamble: it is forwarded, and its place is free.
  silent[1]!.socket.write(Buffer.concat([proxyPreamble('agent1').subarray(1), JNLP4, Buffer.from('y')]));
  t.equal((await silent[1]!.waitFor(1)).toString(), 'y', 'the finished preamble was forwarded');
  const fourth = await openAgentConnection('127.0.0.1', port, [proxyPreamble('agent1'), JNLP4, Buffer.from('z')]);
  t.equal((await fourth.waitFor(1)).toString(), 'z', 'a new connection from that address is admitted again');
  await a.waitForConnections(3);
  const limited = (await metrics.jnlpConnections.get()).values.find((v) => v.labels.outcome === 'limited')?.value;
  t.equal(limited, 1, 'ci_edge_jnlp_connections_total{via="shared",outcome="limited"}');
  for (const s of [...silent, other, fourth]) s.socket.destroy();
  await eventually(() => limits.counts().open === 0 && limits.counts().pendingClients === 0, 'every count released');
});

t.test('jnlp.proxyProtocol: behind a TCP balancer the PROXY header names the agent; without one nothing is guessed', async (t) => {
  const { a, b, port, discoveries, lines, refused, metrics } = await setup(t, { proxyProtocol: true, limits: { maxConnections: 100, maxPendingPerClient: 1 } });
  // The same name on two masters, discovered from two client addresses behind the balancer (127.0.0.1 here).
  discoveries.record('agent1', '203.0.113.7', 'master1');
  discoveries.record('agent1', '2001:db8::7', 'master2');
  const v2 = Buffer.concat([
    Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x21, 0x00, 0x24]),
    Buffer.from([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]),
    Buffer.alloc(16),
    Buffer.from([0xdc, 0x04, 0x01, 0xbb]),
  ]);
  const one = await openAgentConnection('127.0.0.1', port, [Buffer.from('PROXY TCP4 203.0.113.7 127.0.0.1 56324 50000\r\n'), proxyPreamble('agent1'), JNLP4, Buffer.from('one')]);
  const two = await openAgentConnection('127.0.0.1', port, [Buffer.concat([v2, proxyPreamble('agent1'), JNLP4, Buffer.from('two')])]);
  t.equal((await one.waitFor(3)).toString(), 'one');
  t.equal((await two.waitFor(3)).toString(), 'two');
  t.same([a.connections.map((c) => c.received.toString()), b.connections.map((c) => c.received.toString())], [['one'], ['two']], 'each routed by the address its header named');
  t.equal(a.connections[0]!.protocol, 'JNLP4-connect', 'the master sees no PROXY header and no proxy preamble');
  one.socket.destroy();
  two.socket.destroy();
  const forwarded = await eventually(() => lines().filter((l) => l['msg'] === 'agent connection forwarded').length === 2 && lines().filter((l) => l['msg'] === 'agent connection forwarded'), 'both log lines');
  t.same(forwarded.map((l) => [l['client'], l['attributedBy']]).sort(), [['2001:db8::7', 'node-and-address'], ['203.0.113.7', 'node-and-address']], 'logged under the agents\' addresses');

  const bare = await openAgentConnection('127.0.0.1', port, [proxyPreamble('agent1'), JNLP4]);
  t.equal((await bare.closed()).length, 0, 'a connection without a header is closed');
  t.match(await eventually(() => refused().find((l) => String(l['reason']).startsWith('no PROXY')), 'its refusal'), { reason: 'no PROXY protocol header' });

  // The per-address bound counts the agent behind the header: one silent agent does not block another.
  const silent = await openAgentConnection('127.0.0.1', port, [Buffer.from('PROXY TCP4 198.51.100.1 127.0.0.1 1000 50000\r\n')]);
  const sameAgent = await openAgentConnection('127.0.0.1', port, [Buffer.from('PROXY TCP4 198.51.100.1 127.0.0.1 1001 50000\r\n')]);
  t.equal((await sameAgent.closed()).length, 0, 'a second pending connection of that agent is over maxPendingPerClient');
  t.match(await eventually(() => lines().find((l) => l['code'] === 'E_JNLP_LIMIT'), 'the limit line'), { client: '198.51.100.1' });
  const other = await openAgentConnection('127.0.0.1', port, [Buffer.from('PROXY TCP4 203.0.113.7 127.0.0.1 1002 50000\r\n'), proxyPreamble('agent1'), JNLP4, Buffer.from('x')]);
  t.equal((await other.waitFor(1)).toString(), 'x', 'another agent behind the same balancer goes through');
  silent.socket.destroy();
  other.socket.destroy();
  const outcomes = Object.fromEntries((await metrics.jnlpConnections.get()).values.map((v) => [v.labels.outcome, v.value]));
  t.match(outcomes, { forwarded: 3, 'bad-preamble': 1, limited: 1 });
});
