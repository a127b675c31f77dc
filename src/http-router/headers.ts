import type { IncomingHttpHeaders } from 'node:http';
import type { Endpoint } from '../registry/types.js';

/**
 * Header passes of the proxy, as pure functions over header objects (the httpxy/http-proxy "passes" idea),
 * so each hardening rule is unit-testable and pinned by a test under test/security/.
 */

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) plus the ones that only concern this hop: `expect` (Node already
 * answered 100-continue), `proxy-authorization` (never leak a credential meant for a proxy to a master),
 * `http2-settings` (h2c upgrade). `transfer-encoding` is kept on requests on purpose: Node re-frames the
 * body it forwards as chunked only when the header says so, and a GET with a body must stay framed.
 */
const requestHopByHop = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'expect', 'http2-settings'];
const responseHopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'transfer-encoding', 'proxy-authenticate']);

/** Framing and routing headers a `Connection:` token may never remove (it would desync the body or lose Host). */
const protectedFromTokens = new Set(['host', 'content-length', 'transfer-encoding']);

/** Names listed in a `Connection` header value, lower-cased (`Connection: close, x-foo` → `x-foo`). */
function connectionTokens(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const v = Array.isArray(value) ? value.join(',') : value;
  if (v === 'keep-alive' || v === 'close' || v === 'Keep-Alive' || v === 'Upgrade' || v === 'upgrade') return [];
  const out: string[] = [];
  for (const t of v.split(',')) {
    const name = t.trim().toLowerCase();
    if (name && name !== 'close' && name !== 'keep-alive' && name !== 'upgrade' && !protectedFromTokens.has(name)) out.push(name);
  }
  return out;
}

/** What the forwarding headers need from the client's socket. */
export interface ClientSocket {
  readonly remoteAddress?: string | undefined;
  readonly localPort?: number | undefined;
}

export interface ForwardInfo {
  readonly proto: 'http' | 'https';
  /** Sent as X-Request-Id, replacing any the client sent (as an edge proxy does: the id is the edge's log's). */
  readonly requestId: string;
  /** X-Forwarded-Prefix on path-routed requests (`/master1`), else null. */
  readonly prefix: string | null;
}

/** The forwarding facts of a proxied request: its scheme, and its route's prefix when it came in path-routed. */
export function forwardInfo(job: {
  readonly id: string;
  readonly proto: 'http' | 'https';
  readonly pathRouted: boolean;
  readonly target: { readonly route: { readonly path: string } };
}): ForwardInfo {
  return { proto: job.proto, requestId: job.id, prefix: job.pathRouted ? job.target.route.path : null };
}

/**
 * Rewrites `req.headers` in place for the upstream request: hop-by-hop out, forwarding headers in.
 * X-Forwarded-For is appended to (RFC 7239 practice); Proto/Host/Port/Prefix are set by the edge itself, so a
 * client cannot make a master build URLs for another host or scheme.
 */
export function prepareRequestHeaders(h: IncomingHttpHeaders, method: string, socket: ClientSocket, info: ForwardInfo, upgrade: boolean): void {
  const upgradeValue = h.upgrade;
  for (const name of connectionTokens(h.connection)) delete h[name];
  for (const name of requestHopByHop) if (h[name] !== undefined) delete h[name];
  if (upgrade && upgradeValue !== undefined) {
    h.connection = 'upgrade';
    h.upgrade = upgradeValue;
  }
  if (h['content-length'] === undefined && h['transfer-encoding'] === undefined && bodyMethods.has(method)) {
    // No framing header means no body (RFC 9112 §6.3); say so, instead of Node's default chunked POST.
    h['content-length'] = '0';
  }
  const client = socket.remoteAddress ?? '';
  const xff = h['x-forwarded-for'];
  h['x-forwarded-for'] = xff ? `${xff}, ${client}` : client;
  h['x-forwarded-proto'] = info.proto;
  h['x-forwarded-host'] = h.host ?? '';
  h['x-forwarded-port'] = String(socket.localPort ?? '');
  h['x-request-id'] = info.requestId;
  if (info.prefix !== null) h['x-forwarded-prefix'] = info.prefix;
  else if (h['x-forwarded-prefix'] !== undefined) delete h['x-forwarded-prefix'];
}

const bodyMethods = new Set(['POST', 'PUT', 'PATCH']);

export function hasRequestBody(h: IncomingHttpHeaders): boolean {
  const cl = h['content-length'];
  return (cl !== undefined && cl !== '0') || h['transfer-encoding'] !== undefined;
}

export type OutgoingHeaders = Record<string, string | string[] | undefined>;

/** Upstream response headers for the client: a fresh object without hop-by-hop headers. */
export function responseHeaders(h: IncomingHttpHeaders, upgrade: boolean): OutgoingHeaders {
  const tokens = connectionTokens(h.connection);
  const out: OutgoingHeaders = {};
  for (const k in h) {
    if (responseHopByHop.has(k) && !(upgrade && (k === 'connection' || k === 'upgrade'))) continue;
    if (tokens.length > 0 && tokens.includes(k)) continue;
    out[k] = h[k];
  }
  return out;
}

export interface RewriteInfo {
  /** The authority the client used (`pse.example.com:8443`). */
  readonly publicAuthority: string;
  readonly proto: 'http' | 'https';
  /** Prefix to put back in front of upstream paths (`/mesos`), '' when the path was not stripped. */
  readonly prefix: string;
  readonly endpoint: Endpoint;
}

/**
 * `Location`/`Content-Location` as the client must see them: an absolute URL naming the endpoint (an internal
 * address) or the public host gets the public origin; a root-relative path of a stripped route gets its prefix
 * back (what nginx's `proxy_redirect` does for `location /mesos/ { proxy_pass http://m/; }`).
 */
export function rewriteLocation(value: string, r: RewriteInfo): string {
  if (value.charCodeAt(0) === 47 /* / */) {
    if (value.charCodeAt(1) === 47) return value; // scheme-relative: another host
    return r.prefix + value;
  }
  const m = /^(https?):\/\/([^/?#]+)(.*)$/i.exec(value);
  if (!m) return value;
  const authority = m[2]!.toLowerCase();
  const internal = authority === `${r.endpoint.host}:${r.endpoint.port}`.toLowerCase() || (r.endpoint.port === 80 && authority === r.endpoint.host);
  if (!internal && authority !== r.publicAuthority.toLowerCase()) return value;
  const rest = m[3] || '/';
  return `${r.proto}://${r.publicAuthority}${rest.charCodeAt(0) === 47 ? r.prefix + rest : rest}`;
}

/** `Set-Cookie: a=b; Path=/x` of a stripped route → `Path=/mesos/x`, so the browser sends it back to us. */
export function rewriteSetCookie(value: string, prefix: string): string {
  return value.replace(/(;\s*path=)(\/[^;]*)/i, (_all, attr: string, path: string) => `${attr}${prefix}${path}`);
}

export function rewriteResponseLocations(headers: OutgoingHeaders, r: RewriteInfo): void {
  const loc = headers['location'];
  if (typeof loc === 'string') headers['location'] = rewriteLocation(loc, r);
  const cloc = headers['content-location'];
  if (typeof cloc === 'string') headers['content-location'] = rewriteLocation(cloc, r);
  if (r.prefix !== '') {
    const cookies = headers['set-cookie'];
    if (Array.isArray(cookies)) headers['set-cookie'] = cookies.map((c) => rewriteSetCookie(c, r.prefix));
  }
}
