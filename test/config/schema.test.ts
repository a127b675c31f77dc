import t from 'tap';
import { parseConfig } from '../../src/config/schema.js';
import { applyEnv, loadConfig } from '../../src/config/loader.js';
import { CiEdgeError } from '../../src/errors.js';

function errorOf(raw: unknown): string {
  try {
    parseConfig(raw);
  } catch (err) {
    if (err instanceof CiEdgeError) return err.message;
    throw err;
  }
  throw new Error('expected a configuration error');
}

t.test('the embedded default parses and is frozen', async (t) => {
  const c = await loadConfig('config/default.yaml', {});
  t.same(c.domains, ['localhost']);
  t.equal(c.routes.length, 3);
  t.same(c.http?.listen, { host: '127.0.0.1', port: 8080 });
  t.ok(Object.isFrozen(c.http));
  t.equal(c.marathon, null, 'no Marathon needed');
});

t.test('defaults fill a minimal file', async (t) => {
  const c = parseConfig({ domains: ['PSE.example.com'], marathon: { urls: ['http://m1:8080/'] }, http: {}, ssh: {} });
  t.same(c.domains, ['pse.example.com']);
  t.same(c.marathon?.urls, ['http://m1:8080']);
  t.equal(c.marathon?.mastersGroup, '/masters');
  t.equal(c.marathon?.resyncInterval, 60_000);
  t.equal(c.http?.listen.port, 8080);
  t.equal(c.ssh?.auth, 'open');
  t.equal(c.jnlp, null, 'an absent section does not start');
});

t.test('jnlp.limits: defaults, and one key set alone keeps the other default', async (t) => {
  t.same(parseConfig({ domains: ['a.com'], http: {}, jnlp: {} }).jnlp?.limits, { maxConnections: 50_000, maxPendingPerClient: 100 });
  t.same(parseConfig({ domains: ['a.com'], http: {}, jnlp: { limits: { maxPendingPerClient: 8 } } }).jnlp?.limits, { maxConnections: 50_000, maxPendingPerClient: 8 });
  t.equal(parseConfig({ domains: ['a.com'], http: {}, jnlp: {} }).jnlp?.proxyProtocol, false, 'no PROXY header expected unless asked');
  t.equal(parseConfig({ ssh: {} }).ssh?.proxyProtocol, false);
  t.equal(parseConfig({ ssh: { proxyProtocol: true } }).ssh?.proxyProtocol, true);
  t.equal(parseConfig({ domains: ['a.com'], http: {}, jnlp: { proxyProtocol: true } }).jnlp?.proxyProtocol, true);
  t.equal(errorOf({ domains: ['a.com'], http: {}, jnlp: { proxyProtocol: 'v2' } }), 'invalid configuration: jnlp.proxyProtocol: expected true or false, got "v2"');
});

t.test('durations', async (t) => {
  const c = parseConfig({ marathon: { urls: ['http://m'], resyncInterval: '1m', requestTimeout: '500ms', eventsIdleTimeout: '1.5s' } });
  t.equal(c.marathon?.resyncInterval, 60_000);
  t.equal(c.marathon?.requestTimeout, 500);
  t.equal(c.marathon?.eventsIdleTimeout, 1500);
});

t.test('errors name the key and what is wrong', async (t) => {
  const cases: [unknown, string][] = [
    [{ marathon: { urls: ['http://m'], resyncInterval: 'soon' } }, 'invalid configuration: marathon.resyncInterval: expected a duration like "500ms", "10s" or "1m", got "soon"'],
    [{ marathon: {} }, 'invalid configuration: marathon.urls: is required: at least one Marathon URL'],
    [{ marathon: { urls: ['ftp://x'] } }, 'invalid configuration: marathon.urls[0]: expected an http or https URL, got "ftp://x"'],
    [{ domain: ['x'] }, 'invalid configuration: domain: unknown key (known: domains, marathon, routes, services, http, ssh, jnlp, admin, demo, log, shutdown)'],
    [{ domains: ['a.com'], http: { listen: 'nope' } }, 'invalid configuration: http.listen: expected "host:port", got "nope"'],
    [{ http: {} }, 'invalid configuration: domains: at least one domain is needed to route HTTP by host or path'],
    [{ ssh: { auth: 'keys' } }, 'invalid configuration: ssh.authorizedKeys: is required when ssh.auth is "keys"'],
    [{ routes: [{ name: 'Master_1', endpoints: {} }] }, 'invalid configuration: routes[0].name: expected a DNS label (lower-case letters, digits, "-"), got "Master_1"'],
    [{ routes: [{ name: 'm', endpoints: { http: ['nohost'] } }] }, 'invalid configuration: routes[0].endpoints.http[0]: expected "host:port", got "nohost"'],
    [{ services: { cjoc: { app: '/cjoc' } } }, 'invalid configuration: services.cjoc.app: a Marathon app needs the marathon section'],
    [{ domains: ['a.com'], http: { listen: ':8080' }, admin: { listen: '127.0.0.1:8080' } }, 'invalid configuration: admin.listen: port 8080 is already used by http.listen'],
    [{ domains: ['a.com'], http: {}, jnlp: { mode: 'gateway' } }, 'invalid configuration: jnlp.advertiseHost: is required with jnlp.mode "gateway": the host agents connect to'],
    [{ marathon: { urls: ['http://m'], auth: { basic: 'nocolon' } } }, 'invalid configuration: marathon.auth.basic: expected "user:password"'],
    [{ domains: ['a.com'], http: { trustedProxies: ['10.0.0.0/8', 'lb.example.com'] } }, 'invalid configuration: http.trustedProxies: expected IP addresses or CIDR blocks like "10.0.0.0/8", got "lb.example.com"'],
    [{ domains: ['a.com'], http: {}, jnlp: { limits: { maxConnections: 0 } } }, 'invalid configuration: jnlp.limits.maxConnections: expected a whole number from 1 to 10000000, got 0'],
    [{ domains: ['a.com'], http: {}, jnlp: { limits: { maxPending: 5 } } }, 'invalid configuration: jnlp.limits.maxPending: unknown key (known: maxConnections, maxPendingPerClient)'],
  ];
  for (const [raw, message] of cases) t.equal(errorOf(raw), message);
});

t.test('environment overrides the file and is validated too', async (t) => {
  const raw = applyEnv({ marathon: { urls: ['http://a'], auth: { token: 't' } } }, {
    CI_EDGE_MARATHON_URLS: 'http://m1:8080,http://m2:8080',
    CI_EDGE_MARATHON_BASIC: 'u:p',
  });
  const c = parseConfig(raw);
  t.same(c.marathon?.urls, ['http://m1:8080', 'http://m2:8080']);
  t.same(c.marathon?.auth, { basic: 'u:p' });
  t.equal(errorOf(applyEnv({}, { CI_EDGE_ADMIN_LISTEN: 'x' })), 'invalid configuration: admin.listen: expected "host:port", got "x"');
  const behindLb = parseConfig(applyEnv({ domains: ['a.com'], http: {} }, { CI_EDGE_HTTP_TRUSTED_PROXIES: '10.0.0.0/8, fd00::/8' }));
  t.same(behindLb.http?.trustedProxies, ['10.0.0.0/8', 'fd00::/8'], 'CI_EDGE_HTTP_TRUSTED_PROXIES, comma-separated');
});

t.test('an unreadable or non-YAML file is a clear error', async (t) => {
  await t.rejects(loadConfig('/nonexistent.yaml', {}), { code: 'E_CONFIG_READ', message: 'cannot read configuration file /nonexistent.yaml: ENOENT' });
});

t.test('the shipped example configurations are valid', async (t) => {
  const example = await loadConfig('config/marathon.example.yaml', {});
  t.ok(example.marathon, 'the Marathon example has a marathon section');
  t.ok(example.ssh && example.http && example.admin);
  const deploy = await loadConfig('deploy/marathon/ci-edge.yaml', {});
  t.ok(deploy.http?.https, 'the deployed config serves HTTPS');
});
