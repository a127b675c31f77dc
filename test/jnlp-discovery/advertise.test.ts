import t from 'tap';
import type { ResponseContext } from '../../src/extension.js';
import { silentLogger } from '../../src/log.js';
import {
  createAdvertiseHook,
  isAgentListenerPath,
  rewriteAgentListenerHeaders,
  rewriteSshEndpoint,
  withProxyProtocol,
} from '../../src/jnlp-discovery/advertise.js';
import { DiscoveryLog } from '../../src/jnlp-discovery/attribution.js';
import { stablePort } from '../../src/jnlp-discovery/reachable.js';
import { jnlpConfig, route } from './fixtures.js';

const IDENTITY = 'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtest';

/** Headers as http-proxy hands them over (lower-case names), the way Jenkins' listener page sends them. */
function jenkinsHeaders(): Record<string, string | string[] | undefined> {
  return {
    'content-type': 'text/plain;charset=utf-8',
    'x-hudson-jnlp-port': '50000',
    'x-jenkins-jnlp-port': '50000',
    'x-instance-identity': IDENTITY,
    'x-jenkins-agent-protocols': 'JNLP4-connect, Ping',
    'x-remoting-minimum-version': '3107.v665000b_51092',
    'content-length': '7',
  };
}

const master1 = route(
  'master1',
  { http: [{ host: '10.0.0.5', port: 31001 }], jnlp: [{ host: '10.0.0.5', port: 31002 }], ssh: [{ host: '10.0.0.5', port: 31003 }] },
  { servicePorts: { http: 10001, jnlp: 10002, ssh: 10003 } },
);

t.test('direct mode advertises the task host and mapped host port, leaving the rest untouched', async (t) => {
  const h = jenkinsHeaders();
  const out = rewriteAgentListenerHeaders(master1, 200, h, jnlpConfig());
  t.same(out, { kind: 'rewritten', host: '10.0.0.5', port: 31002, via: 'direct' });
  t.strictSame(h, {
    ...jenkinsHeaders(),
    'x-jenkins-jnlp-host': '10.0.0.5',
    'x-jenkins-jnlp-port': '31002',
    'x-hudson-jnlp-port': '31002',
  });
  t.equal(h['x-instance-identity'], IDENTITY);
  t.equal(h['x-jenkins-agent-protocols'], 'JNLP4-connect, Ping');
  t.equal(h['x-remoting-minimum-version'], '3107.v665000b_51092');
  t.equal(Object.keys(h).filter((k) => /jnlp/i.test(k)).length, 3, 'one spelling of each header');
});

t.test('gateway mode advertises advertiseHost and the servicePort, or the ci-edge.jnlp.port label', async (t) => {
  const h = jenkinsHeaders();
  const cfg = jnlpConfig({ mode: 'gateway', advertiseHost: 'edge.example.com' });
  t.same(rewriteAgentListenerHeaders(master1, 200, h, cfg), { kind: 'rewritten', host: 'edge.example.com', port: 10002, via: 'gateway' });
  t.equal(h['x-jenkins-jnlp-host'], 'edge.example.com');
  t.equal(h['x-hudson-jnlp-port'], '10002');

  const labelled = route('master2', { jnlp: [{ host: '10.0.0.6', port: 31005 }] }, { labels: { 'ci-edge.jnlp.port': '20002' } });
  t.equal(stablePort(labelled, 'jnlp'), 20002);
  const h2 = jenkinsHeaders();
  t.same(rewriteAgentListenerHeaders(labelled, 200, h2, cfg), { kind: 'rewritten', host: 'edge.example.com', port: 20002, via: 'gateway' });
  t.equal(stablePort(route('x', {}, { labels: { 'ci-edge.jnlp.port': '70000' } }), 'jnlp'), undefined, 'out-of-range label ignored');
});

t.test('shared port advertises one port and puts JNLP4-connect-proxy in front of the protocols', async (t) => {
  const h = jenkinsHeaders();
  const cfg = jnlpConfig({ mode: 'direct', advertiseHost: 'edge.example.com', sharedPort: 50000 });
  t.same(rewriteAgentListenerHeaders(master1, 200, h, cfg), { kind: 'rewritten', host: 'edge.example.com', port: 50000, via: 'shared' });
  t.equal(h['x-jenkins-agent-protocols'], 'JNLP4-connect-proxy, JNLP4-connect, Ping');
  t.equal(h['x-instance-identity'], IDENTITY);
  t.equal(withProxyProtocol('JNLP4-connect-proxy, JNLP4-connect'), 'JNLP4-connect-proxy, JNLP4-connect', 'not added twice');
});

t.test('404 (listener disabled), 503 and non-Jenkins answers pass through untouched', async (t) => {
  for (const status of [404, 503, 302]) {
    const h = jenkinsHeaders();
    t.same(rewriteAgentListenerHeaders(master1, status, h, jnlpConfig()), { kind: 'untouched' }, `status ${status}`);
    t.same(h, jenkinsHeaders());
  }
  const plain: Record<string, string> = { 'content-type': 'text/html' };
  t.same(rewriteAgentListenerHeaders(master1, 200, plain, jnlpConfig()), { kind: 'untouched' });
  t.same(plain, { 'content-type': 'text/html' }, 'no port header: not Jenkins, nothing added');
});

t.test('no reachable agent port: the in-container port is withdrawn, not advertised', async (t) => {
  const noJnlp = route('master3', { http: [{ host: '10.0.0.7', port: 31010 }] });
  const h = jenkinsHeaders();
  t.same(rewriteAgentListenerHeaders(noJnlp, 200, h, jnlpConfig()), { kind: 'unreachable', reason: 'no healthy task exposes a jnlp port' });
  t.notOk('x-jenkins-jnlp-port' in h);
  t.notOk('x-hudson-jnlp-port' in h);
  t.equal(h['x-instance-identity'], IDENTITY);
  const gw = jnlpConfig({ mode: 'gateway', advertiseHost: 'edge.example.com' });
  t.same(rewriteAgentListenerHeaders(noJnlp, 200, jenkinsHeaders(), gw), {
    kind: 'unreachable',
    reason: 'no servicePort for its jnlp port and no ci-edge.jnlp.port label',
  });
});

t.test('agent listener path: domain-routed and path-routed (--prefix)', async (t) => {
  t.ok(isAgentListenerPath(master1, '/tcpSlaveAgentListener/'));
  t.ok(isAgentListenerPath(master1, '/master1/tcpSlaveAgentListener/'));
  t.ok(isAgentListenerPath(master1, '/master1/tcpSlaveAgentListener'));
  t.notOk(isAgentListenerPath(master1, '/master2/tcpSlaveAgentListener/'));
  t.notOk(isAgentListenerPath(master1, '/master1/job/tcpSlaveAgentListener/'));
});

t.test('X-SSH-Endpoint becomes the reachable SSH endpoint', async (t) => {
  const h: Record<string, string> = { 'x-ssh-endpoint': 'master1.marathon.mesos:22' };
  t.ok(rewriteSshEndpoint(master1, h, jnlpConfig()));
  t.strictSame(h, { 'x-ssh-endpoint': '10.0.0.5:31003' });
  const g: Record<string, string> = { 'x-ssh-endpoint': 'master1.marathon.mesos:22' };
  rewriteSshEndpoint(master1, g, jnlpConfig({ mode: 'gateway', advertiseHost: 'edge.example.com' }));
  t.strictSame(g, { 'x-ssh-endpoint': 'edge.example.com:10003' }, 'gateway mode: the forwarded ssh servicePort');
  const none: Record<string, string> = { 'x-ssh-endpoint': 'inside:22' };
  t.notOk(rewriteSshEndpoint(route('m', {}), none, jnlpConfig()), 'no ssh endpoint known: left alone');
  t.same(none, { 'x-ssh-endpoint': 'inside:22' });
  const v6 = route('m6', { ssh: [{ host: 'fd00::5', port: 2222 }] });
  const h6: Record<string, string> = { 'X-SSH-Endpoint': 'x:22' };
  rewriteSshEndpoint(v6, h6, jnlpConfig());
  t.strictSame(h6, { 'X-SSH-Endpoint': '[fd00::5]:2222' }, 'the master\'s spelling is kept');
});

t.test('the router hook records who discovered what (shared port) and rewrites SSH on any page', async (t) => {
  let now = 1000;
  const discoveries = new DiscoveryLog({ ttl: 60_000, now: () => now });
  const cfg = jnlpConfig({ advertiseHost: 'edge.example.com', sharedPort: 50000 });
  const hook = createAdvertiseHook(cfg, discoveries, silentLogger());
  const req = (node: string | undefined, address: string) => ({ requestHeaders: node ? { 'node-name': node } : {}, clientAddress: address });
  const ctx = (path: string, status: number, r: ReturnType<typeof req>): ResponseContext => ({
    route: master1,
    ...r,
    upstreamPath: path,
    statusCode: status,
    publicHost: 'pse.example.com',
    pathRouted: true,
  });
  hook(ctx('/master1/tcpSlaveAgentListener/', 200, req('agent1', '::ffff:127.0.0.2')), jenkinsHeaders());
  hook(ctx('/master1/tcpSlaveAgentListener/', 404, req('agent9', '127.0.0.1')), jenkinsHeaders());
  now += 10;
  t.same(discoveries.attribute('agent1', '127.0.0.2'), { ok: true, master: 'master1', by: 'node-and-address' });
  t.equal(discoveries.attribute('agent9', '127.0.0.1').ok, false, 'a 404 records nothing');
  const login: Record<string, string> = { 'x-ssh-endpoint': 'inside:22', 'content-type': 'text/html' };
  hook(ctx('/master1/login', 200, req(undefined, '127.0.0.1')), login);
  t.strictSame(login, { 'x-ssh-endpoint': '10.0.0.5:31003', 'content-type': 'text/html' });
  const service = { ...master1, kind: 'service' as const };
  const svc: Record<string, string> = { 'x-ssh-endpoint': 'inside:22' };
  hook({ ...ctx('/login', 200, req(undefined, '127.0.0.1')), route: service }, svc);
  t.same(svc, { 'x-ssh-endpoint': 'inside:22' }, 'services are not Jenkins masters');
});
