import type { JnlpConfig } from '../config/types.js';
import type { HttpExtension, ResponseContext } from '../extension.js';
import type { Logger } from '../log.js';
import type { Route } from '../registry/types.js';
import type { DiscoveryLog } from './attribution.js';
import { hostPort, isReachable, reachableAgentEndpoint, reachableSshEndpoint } from './reachable.js';

type Headers = Record<string, string | string[] | undefined>;

/** Remoting ≥ 3180's protocol that names the node before the JNLP4-connect handshake (JnlpProtocol4ProxyHandler). */
export const PROXY_PROTOCOL = 'JNLP4-connect-proxy';

/**
 * A master's agent-listener page, domain-routed (`/tcpSlaveAgentListener/`) or path-routed with Jenkins'
 * `--prefix` (`/master1/tcpSlaveAgentListener/`). Remoting always asks with the trailing slash
 * (JnlpAgentEndpointResolver.toAgentListenerURL); Stapler redirects the bare name there.
 */
export function isAgentListenerPath(route: Route, upstreamPath: string): boolean {
  const p = upstreamPath.endsWith('/') ? upstreamPath : `${upstreamPath}/`;
  return p === '/tcpSlaveAgentListener/' || p === `${route.path}/tcpSlaveAgentListener/`;
}

function headerKey(headers: Headers, name: string): string | undefined {
  const lower = name.toLowerCase();
  return Object.keys(headers).find((k) => k.toLowerCase() === lower);
}

function getHeader(headers: Headers, name: string): string | undefined {
  const k = headerKey(headers, name);
  const v = k === undefined ? undefined : headers[k];
  return Array.isArray(v) ? v[0] : v;
}

/** Replaces in place under the master's own spelling; new headers get Node's lower-case form. */
function setHeader(headers: Headers, name: string, value: string): void {
  headers[headerKey(headers, name) ?? name.toLowerCase()] = value;
}

function deleteHeader(headers: Headers, name: string): void {
  const k = headerKey(headers, name);
  if (k !== undefined) delete headers[k];
}

export type AdvertiseOutcome =
  | { readonly kind: 'rewritten'; readonly host: string; readonly port: number; readonly via: string }
  | { readonly kind: 'unreachable'; readonly reason: string }
  /** Not a Jenkins agent-listener answer (no port header, or not 200): left exactly as the master sent it. */
  | { readonly kind: 'untouched' };

/**
 * Rewrites a master's `/tcpSlaveAgentListener/` answer in place so agents outside the cluster connect where
 * the master can really be reached. Only X-Jenkins-JNLP-Host and the two port headers change (plus, on the
 * shared port, JNLP4-connect-proxy in front of the protocols); X-Instance-Identity must pass untouched because
 * the agent pins the JNLP4 TLS handshake to it, and the minimum version and the body stay as sent.
 */
export function rewriteAgentListenerHeaders(route: Route, statusCode: number, headers: Headers, jnlp: JnlpConfig): AdvertiseOutcome {
  // A disabled listener answers 404; agents must see that (and a 503 while down) to keep polling.
  if (statusCode !== 200) return { kind: 'untouched' };
  // Jenkins always sends both port headers on this page; without them it is not Jenkins and agents must say so.
  if (getHeader(headers, 'X-Jenkins-JNLP-Port') === undefined && getHeader(headers, 'X-Hudson-JNLP-Port') === undefined) {
    return { kind: 'untouched' };
  }
  const target = reachableAgentEndpoint(route, jnlp);
  if (!isReachable(target)) {
    // The master's own value is its in-container port, which no outside agent reaches; without a port header
    // remoting reports "is not Jenkins" and retries instead of hanging on an unreachable address.
    for (const h of ['X-Jenkins-JNLP-Host', 'X-Jenkins-JNLP-Port', 'X-Hudson-JNLP-Port']) deleteHeader(headers, h);
    return { kind: 'unreachable', reason: target.reason };
  }
  setHeader(headers, 'X-Jenkins-JNLP-Host', target.host);
  setHeader(headers, 'X-Jenkins-JNLP-Port', String(target.port));
  setHeader(headers, 'X-Hudson-JNLP-Port', String(target.port));
  if (target.via === 'shared') {
    const protocols = getHeader(headers, 'X-Jenkins-Agent-Protocols');
    if (protocols !== undefined) setHeader(headers, 'X-Jenkins-Agent-Protocols', withProxyProtocol(protocols));
  }
  return { kind: 'rewritten', host: target.host, port: target.port, via: target.via };
}

/** `JNLP4-connect, Ping` → `JNLP4-connect-proxy, JNLP4-connect, Ping` (Jenkins joins with ", "). */
export function withProxyProtocol(protocols: string): string {
  const names = protocols.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.includes(PROXY_PROTOCOL)) return protocols;
  return [PROXY_PROTOCOL, ...names].join(', ');
}

/**
 * Jenkins advertises `X-SSH-Endpoint: host:port` (sshd module) with its in-container port on its pages, and
 * `jenkins-cli -ssh` connects straight there: point it at the master's reachable SSH endpoint instead.
 */
export function rewriteSshEndpoint(route: Route, headers: Headers, jnlp: JnlpConfig): boolean {
  if (getHeader(headers, 'X-SSH-Endpoint') === undefined) return false;
  const target = reachableSshEndpoint(route, jnlp);
  if (!target) return false;
  setHeader(headers, 'X-SSH-Endpoint', hostPort(target.host, target.port));
  return true;
}

/** The router hook: the two rewrites, and the discovery record the shared port routes by. */
export function createAdvertiseHook(jnlp: JnlpConfig, discoveries: DiscoveryLog, log: Logger): NonNullable<HttpExtension['rewriteResponse']> {
  return (ctx: ResponseContext, headers: Headers) => {
    if (ctx.route.kind !== 'master') return;
    rewriteSshEndpoint(ctx.route, headers, jnlp);
    if (!isAgentListenerPath(ctx.route, ctx.upstreamPath)) return;
    const outcome = rewriteAgentListenerHeaders(ctx.route, ctx.statusCode, headers, jnlp);
    if (outcome.kind === 'unreachable') {
      log.warn({ route: ctx.route.name, reason: outcome.reason }, 'agent listener advertised without a reachable port');
      return;
    }
    if (outcome.kind !== 'rewritten' || jnlp.sharedPort === null) return;
    const node = ctx.requestHeaders['node-name'];
    const nodeName = Array.isArray(node) ? node[0] : node;
    const address = ctx.clientAddress;
    // Without Node-Name (remoting older than the header) the address alone can still route plain JNLP4-connect.
    discoveries.record(nodeName ?? '', address, ctx.route.name);
    log.debug({ route: ctx.route.name, node: nodeName ?? null, client: address }, 'agent discovery recorded');
  };
}
