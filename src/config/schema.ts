import { availableParallelism } from 'node:os';
import { isAddressOrBlock } from '../client-address.js';
import { isRouteName } from '../registry/naming.js';
import { defaults } from './defaults.js';
import { Reader } from './reader.js';
import type {
  AdminConfig,
  Config,
  HttpConfig,
  JnlpConfig,
  MarathonConfig,
  ServiceConfig,
  SshConfig,
  StaticRouteConfig,
} from './types.js';

const topKeys = ['domains', 'marathon', 'routes', 'services', 'http', 'ssh', 'jnlp', 'admin', 'demo', 'log', 'shutdown'];

/** Validates untrusted YAML into a frozen Config; throws E_CONFIG_INVALID naming the key. */
export function parseConfig(raw: unknown, source: string | null = null): Config {
  const top = new Reader(raw ?? {}, '').object(topKeys);
  const domains = top['domains']!.strings([]).map((d, i) => domain(top['domains']!.at(i), d));
  const config: Config = {
    domains,
    marathon: top['marathon']!.present ? marathon(top['marathon']!) : null,
    routes: top['routes']!.list().map(staticRoute),
    services: Object.fromEntries(top['services']!.entries().map(([k, r]) => [serviceName(r, k), service(r)])),
    http: top['http']!.present ? http(top['http']!) : null,
    ssh: top['ssh']!.present ? ssh(top['ssh']!) : null,
    jnlp: top['jnlp']!.present ? jnlp(top['jnlp']!) : null,
    admin: top['admin']!.present ? admin(top['admin']!) : null,
    demo: top['demo']!.present ? demo(top['demo']!) : null,
    log: logSection(top['log']!),
    shutdown: { grace: top['shutdown']!.present ? top['shutdown']!.object(['grace'])['grace']!.duration(defaults.shutdown.grace) : defaults.shutdown.grace },
    source,
  };
  crossCheck(config, top);
  return deepFreeze(config);
}

function domain(r: Reader, d: string): string {
  const lower = d.toLowerCase().replace(/\.$/, '');
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(lower)) r.fail(`not a domain name: ${JSON.stringify(d)}`);
  return lower;
}

function marathon(r: Reader): MarathonConfig {
  const o = r.object(['urls', 'auth', 'mastersGroup', 'resyncInterval', 'requestTimeout', 'eventsIdleTimeout', 'reconnectBackoff', 'coalesce']);
  const urls = o['urls']!.present ? strictUrls(o['urls']!) : r.at('urls').fail('is required: at least one Marathon URL');
  if (urls.length === 0) o['urls']!.fail('needs at least one Marathon URL');
  const d = defaults.marathon;
  let auth: MarathonConfig['auth'] = null;
  if (o['auth']!.present) {
    const a = o['auth']!.object(['basic', 'token']);
    const basic = a['basic']!.optionalString();
    const token = a['token']!.optionalString();
    if (basic && token) o['auth']!.fail('give basic or token, not both');
    if (!basic && !token) o['auth']!.fail('give basic: "user:password" or token: "..."');
    if (basic && !basic.includes(':')) a['basic']!.fail('expected "user:password"');
    auth = basic ? { basic } : { token: token! };
  }
  const b = o['reconnectBackoff']!.present ? o['reconnectBackoff']!.object(['min', 'max']) : null;
  const backoff = { min: b ? b['min']!.duration(d.reconnectBackoff.min) : d.reconnectBackoff.min, max: b ? b['max']!.duration(d.reconnectBackoff.max) : d.reconnectBackoff.max };
  if (backoff.min > backoff.max) o['reconnectBackoff']!.fail('min must not exceed max');
  const group = o['mastersGroup']!.string(d.mastersGroup);
  if (!group.startsWith('/')) o['mastersGroup']!.fail(`expected an absolute group id like "/masters", got ${JSON.stringify(group)}`);
  return {
    urls,
    auth,
    mastersGroup: group.replace(/\/+$/, '') || '/',
    resyncInterval: positive(o['resyncInterval']!, d.resyncInterval),
    requestTimeout: positive(o['requestTimeout']!, d.requestTimeout),
    eventsIdleTimeout: positive(o['eventsIdleTimeout']!, d.eventsIdleTimeout),
    reconnectBackoff: backoff,
    coalesce: o['coalesce']!.duration(d.coalesce),
  };
}

function strictUrls(r: Reader): string[] {
  if (typeof r.value === 'string') return r.value.split(',').map((s) => new Reader(s.trim(), r.path).url());
  return r.list().map((u) => u.url());
}

function positive(r: Reader, fallback: number): number {
  const v = r.duration(fallback);
  if (v <= 0) r.fail('must be more than 0');
  return v;
}

function staticRoute(r: Reader): StaticRouteConfig {
  const o = r.object(['name', 'kind', 'endpoints', 'path', 'stripPrefix', 'servicePorts']);
  const name = o['name']!.string();
  if (!isRouteName(name)) o['name']!.fail(`expected a DNS label (lower-case letters, digits, "-"), got ${JSON.stringify(name)}`);
  const e = o['endpoints']!.object(['http', 'jnlp', 'ssh']);
  const eps = (k: string) => e[k]!.list().map((x) => { x.hostPort(); return x.string(); });
  const sp = o['servicePorts']!.present ? o['servicePorts']!.object(['http', 'jnlp', 'ssh']) : null;
  const spOf = (k: string) => (sp?.[k]!.present ? sp[k]!.integer(undefined, 1, 65535) : undefined);
  const path = o['path']!.present ? o['path']!.string() : undefined;
  if (path !== undefined && !/^\/[A-Za-z0-9._~-]+$/.test(path)) o['path']!.fail(`expected one path segment like "/master1", got ${JSON.stringify(path)}`);
  const servicePorts = sp ? Object.fromEntries(['http', 'jnlp', 'ssh'].map((k) => [k, spOf(k)]).filter(([, v]) => v !== undefined)) : undefined;
  return {
    name,
    kind: o['kind']!.oneOf(['master', 'service'] as const, 'master'),
    endpoints: { http: eps('http'), jnlp: eps('jnlp'), ssh: eps('ssh') },
    ...(path !== undefined ? { path } : {}),
    ...(o['stripPrefix']!.present ? { stripPrefix: o['stripPrefix']!.boolean(false) } : {}),
    ...(servicePorts ? { servicePorts } : {}),
  };
}

function serviceName(r: Reader, name: string): string {
  if (!isRouteName(name)) r.fail('service names are DNS labels');
  return name;
}

function service(r: Reader): ServiceConfig {
  const o = r.object(['upstreams', 'leader', 'app', 'stripPrefix']);
  const upstreams = o['upstreams']!.present ? strictUrls(o['upstreams']!) : [];
  const app = o['app']!.optionalString();
  if (upstreams.length === 0 && !app) r.fail('give upstreams: [urls] or app: /marathon/app/id');
  if (upstreams.length > 0 && app) r.fail('give upstreams or app, not both');
  const leader = o['leader']!.present ? o['leader']!.oneOf(['mesos', 'marathon'] as const, 'mesos') : null;
  if (leader && upstreams.length === 0) o['leader']!.fail('leader routing needs upstreams');
  if (app && !app.startsWith('/')) o['app']!.fail(`expected an absolute app id like "/cjoc", got ${JSON.stringify(app)}`);
  return { upstreams, leader, app, stripPrefix: o['stripPrefix']!.boolean(true) };
}

function http(r: Reader): HttpConfig {
  const o = r.object(['listen', 'https', 'redirectToHttps', 'timeouts', 'maxHeaderSize', 'keepAliveSockets', 'failTimeout', 'workers', 'fastLane', 'trustedProxies']);
  const d = defaults.http;
  let https: HttpConfig['https'] = null;
  if (o['https']!.present) {
    const h = o['https']!.object(['listen', 'certs']);
    const certs = h['certs']!.list().map((c) => {
      const co = c.object(['cert', 'key']);
      return { cert: co['cert']!.string(), key: co['key']!.string() };
    });
    if (certs.length === 0) h['certs']!.fail('needs at least one { cert, key }');
    https = { listen: h['listen']!.listen('0.0.0.0:8443'), certs };
  }
  const t = o['timeouts']!.present ? o['timeouts']!.object(['connect', 'idle', 'headers', 'upstream', 'keepAlive']) : null;
  const time = (k: keyof typeof d.timeouts) => (t ? positive(t[k]!, d.timeouts[k]) : d.timeouts[k]);
  const keepAlive = time('keepAlive');
  // Node tells clients the keep-alive timeout in whole seconds (`Keep-Alive: timeout=N`); 0 would mean "none".
  if (keepAlive < 1000) t!['keepAlive']!.fail('must be at least 1s');
  const redirectToHttps = o['redirectToHttps']!.boolean(false);
  if (redirectToHttps && !https) o['redirectToHttps']!.fail('needs http.https to redirect to');
  return {
    listen: o['listen']!.listen(d.listen),
    https,
    redirectToHttps,
    timeouts: { connect: time('connect'), idle: time('idle'), headers: time('headers'), upstream: time('upstream'), keepAlive },
    maxHeaderSize: o['maxHeaderSize']!.integer(d.maxHeaderSize, 1024, 1_048_576),
    keepAliveSockets: o['keepAliveSockets']!.integer(d.keepAliveSockets, 1, 100_000),
    failTimeout: o['failTimeout']!.duration(d.failTimeout),
    // "auto": one router per core the process may use (issue #3).
    workers: workerCount(o['workers']!, d.workers),
    fastLane: o['fastLane']!.boolean(d.fastLane),
    trustedProxies: trustedProxies(o['trustedProxies']!),
  };
}

/** Addresses or CIDR blocks, each checked, so a typo is not a silently trusted (or untrusted) balancer. */
function trustedProxies(r: Reader): string[] {
  const blocks = r.strings([]);
  const bad = blocks.find((b) => !isAddressOrBlock(b));
  if (bad !== undefined) r.fail(`expected IP addresses or CIDR blocks like "10.0.0.0/8", got ${JSON.stringify(bad)}`);
  return blocks;
}

/** `auto` (one per core) or 1..64, with a message that offers both. */
function workerCount(r: Reader, fallback: number): number {
  if (r.value === 'auto') return Math.min(64, availableParallelism());
  if (r.present && !(typeof r.value === 'number' && Number.isInteger(r.value) && r.value >= 1 && r.value <= 64)) {
    r.fail(`expected "auto" or a whole number from 1 to 64, got ${JSON.stringify(r.value)}`);
  }
  return r.integer(fallback, 1, 64);
}

function ssh(r: Reader): SshConfig {
  const o = r.object(['listen', 'domain', 'hostKeys', 'auth', 'authorizedKeys', 'limits', 'ciphers', 'proxyProtocol']);
  const d = defaults.ssh;
  const l = o['limits']!.present ? o['limits']!.object(Object.keys(d.limits)) : null;
  const time = (k: 'handshakeTimeout' | 'idleTimeout' | 'keepaliveInterval' | 'connectTimeout') => (l ? positive(l[k]!, d.limits[k]) : d.limits[k]);
  const count = (k: 'maxTunnels' | 'maxTunnelsPerClient') => (l ? l[k]!.integer(d.limits[k], 1, 1_000_000) : d.limits[k]);
  const auth = o['auth']!.oneOf(['open', 'keys'] as const, 'open');
  const authorizedKeys = o['authorizedKeys']!.optionalString();
  if (auth === 'keys' && !authorizedKeys) o['authorizedKeys']!.fail('is required when ssh.auth is "keys"');
  const hostKeys = o['hostKeys']!.strings([...d.hostKeys]);
  if (hostKeys.length === 0) o['hostKeys']!.fail('needs at least one host key path');
  const domainName = o['domain']!.optionalString();
  return {
    listen: o['listen']!.listen(d.listen),
    domain: domainName ? domain(o['domain']!, domainName) : null,
    hostKeys,
    auth,
    authorizedKeys,
    limits: {
      maxTunnels: count('maxTunnels'),
      maxTunnelsPerClient: count('maxTunnelsPerClient'),
      handshakeTimeout: time('handshakeTimeout'),
      idleTimeout: time('idleTimeout'),
      keepaliveInterval: time('keepaliveInterval'),
      connectTimeout: time('connectTimeout'),
    },
    ciphers: o['ciphers']!.present ? o['ciphers']!.strings() : null,
    proxyProtocol: o['proxyProtocol']!.boolean(false),
  };
}

function jnlp(r: Reader): JnlpConfig {
  const o = r.object(['mode', 'advertiseHost', 'bindHost', 'sharedPort', 'cacheTtl', 'connectTimeout', 'headerTimeout', 'maxHeaderSize', 'discoveryTtl', 'limits', 'proxyProtocol']);
  const d = defaults.jnlp;
  const l = o['limits']!.present ? o['limits']!.object(Object.keys(d.limits)) : null;
  const count = (k: keyof typeof d.limits) => (l ? l[k]!.integer(d.limits[k], 1, 10_000_000) : d.limits[k]);
  const mode = o['mode']!.oneOf(['direct', 'gateway'] as const, 'direct');
  const advertiseHost = o['advertiseHost']!.optionalString();
  const sharedPort = o['sharedPort']!.present ? o['sharedPort']!.integer(undefined, 1, 65535) : null;
  if ((mode === 'gateway' || sharedPort !== null) && !advertiseHost) {
    o['advertiseHost']!.fail(`is required with ${mode === 'gateway' ? 'jnlp.mode "gateway"' : 'jnlp.sharedPort'}: the host agents connect to`);
  }
  return {
    mode,
    advertiseHost,
    bindHost: o['bindHost']!.string(d.bindHost),
    sharedPort,
    cacheTtl: positive(o['cacheTtl']!, d.cacheTtl),
    connectTimeout: positive(o['connectTimeout']!, d.connectTimeout),
    headerTimeout: positive(o['headerTimeout']!, d.headerTimeout),
    maxHeaderSize: o['maxHeaderSize']!.integer(d.maxHeaderSize, 64, 65_537),
    discoveryTtl: positive(o['discoveryTtl']!, d.discoveryTtl),
    limits: { maxConnections: count('maxConnections'), maxPendingPerClient: count('maxPendingPerClient') },
    proxyProtocol: o['proxyProtocol']!.boolean(false),
  };
}

function admin(r: Reader): AdminConfig {
  const o = r.object(['listen', 'eventsThrottle']);
  return { listen: o['listen']!.listen(defaults.admin.listen), eventsThrottle: o['eventsThrottle']!.duration(defaults.admin.eventsThrottle) };
}

function demo(r: Reader): Config['demo'] {
  const o = r.object(['backends']);
  return {
    backends: o['backends']!.list().map((b) => {
      const bo = b.object(['name', 'listen']);
      return { name: bo['name']!.string(), listen: bo['listen']!.listen() };
    }),
  };
}

function logSection(r: Reader): Config['log'] {
  if (!r.present) return { level: defaults.log.level, pretty: null };
  const o = r.object(['level', 'pretty']);
  return {
    level: o['level']!.oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, defaults.log.level),
    pretty: o['pretty']!.present ? o['pretty']!.boolean(false) : null,
  };
}

/** Rules that span sections, with messages that say which keys disagree. */
function crossCheck(c: Config, top: Record<string, Reader>): void {
  const names = new Set<string>();
  c.routes.forEach((route, i) => {
    if (names.has(route.name)) top['routes']!.at(i).at('name').fail(`duplicate route name "${route.name}"`);
    names.add(route.name);
  });
  for (const [name, s] of Object.entries(c.services)) {
    if (s.app && !c.marathon) top['services']!.at(name).at('app').fail('a Marathon app needs the marathon section');
  }
  if (c.http && c.domains.length === 0) top['domains']!.fail('at least one domain is needed to route HTTP by host or path');
  if (c.jnlp && !c.http) top['jnlp']!.fail('JNLP discovery rewrites answers of the HTTP router: add an http section');
  const listeners: [string, { host: string; port: number } | undefined][] = [
    ['http.listen', c.http?.listen],
    ['http.https.listen', c.http?.https?.listen],
    ['ssh.listen', c.ssh?.listen],
    ['admin.listen', c.admin?.listen],
    ['jnlp.sharedPort', c.jnlp?.sharedPort ? { host: c.jnlp.bindHost, port: c.jnlp.sharedPort } : undefined],
  ];
  const seen = new Map<number, string>();
  for (const [key, addr] of listeners) {
    if (!addr || addr.port === 0) continue;
    const other = seen.get(addr.port);
    if (other) new Reader(null, key).fail(`port ${addr.port} is already used by ${other}`);
    seen.set(addr.port, key);
  }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
