import { matchHost, normalizeHost, type HostMatch } from '../registry/naming.js';
import type { Endpoint, RegistryView, Route, Snapshot } from '../registry/types.js';
import type { IndexEntry, Problem } from './pages/pages.js';

/**
 * Request → target. The table is rebuilt when the registry changes (subscribe), never on the request path:
 * a request does two Map reads and a few `indexOf`s, whatever the number of routes (issue #3, 2000 masters).
 */

/** A route as the router uses it: its healthy HTTP endpoints and a round-robin position. */
export interface Target {
  readonly route: Route;
  readonly endpoints: readonly Endpoint[];
  /** Next endpoint to try; kept across rebuilds while the route object is unchanged. */
  rr: number;
  /** Per endpoint, until when it is skipped (performance.now() ms); null while none failed lately. */
  down: Float64Array | null;
  /** Per-route cache the server keeps here (labelled metric children), so it lives as long as the route. */
  stats: unknown;
}

export interface RouteTable {
  readonly version: number;
  /** Every source synced once. Before that an unknown name may just not be loaded yet: 503, not 404. */
  readonly ready: boolean;
  readonly byName: ReadonlyMap<string, Target>;
  /** Keyed by the route's path without its leading slash (`master1`). */
  readonly byPath: ReadonlyMap<string, Target>;
  index(): readonly IndexEntry[];
}

export type Resolution =
  | { readonly kind: 'proxy'; readonly target: Target; readonly upstreamPath: string; readonly pathRouted: boolean; readonly publicHost: string }
  | { readonly kind: 'redirect'; readonly location: string }
  | { readonly kind: 'index'; readonly domain: string; readonly publicHost: string }
  | { readonly kind: 'problem'; readonly problem: Problem; readonly target?: Target };

export function buildTable(snapshot: Snapshot, prev: RouteTable | null): RouteTable {
  const byName = new Map<string, Target>();
  const byPath = new Map<string, Target>();
  for (const route of snapshot.routes.values()) {
    if (route.state === 'gone') continue;
    const old = prev?.byName.get(route.name);
    const target: Target = old && old.route === route ? old : { route, endpoints: route.endpoints.http, rr: 0, down: null, stats: undefined };
    byName.set(route.name, target);
    // Only one-segment paths are routable (`/master1`); naming never produces deeper ones.
    byPath.set(route.path.slice(1).toLowerCase(), target);
  }
  let entries: IndexEntry[] | null = null;
  return {
    version: snapshot.version,
    ready: snapshot.status.ready,
    byName,
    byPath,
    index() {
      entries ??= [...byName.values()]
        .map(({ route: r }) => ({ name: r.name, kind: r.kind, state: r.state, ...(r.detail ? { detail: r.detail } : {}), path: `${r.path}/` }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return entries;
    },
  };
}

/** Round-robin over the healthy endpoints, skipping `avoid` (the one that just refused) when there is another. */
export function pickEndpoint(target: Target, avoid?: Endpoint): Endpoint | undefined {
  const eps = target.endpoints;
  if (eps.length === 0) return undefined;
  if (target.rr > 0x3fffffff) target.rr = 0;
  if (target.down !== null) {
    const ep = pickLive(target, target.down, avoid);
    if (ep) return ep;
  }
  let ep = eps[target.rr++ % eps.length];
  if (avoid && eps.length > 1 && sameEndpoint(ep!, avoid)) ep = eps[target.rr++ % eps.length];
  return ep;
}

/** The next endpoint in turn that failed no connection lately; undefined when every other one did. */
function pickLive(target: Target, down: Float64Array, avoid: Endpoint | undefined): Endpoint | undefined {
  const eps = target.endpoints;
  const now = performance.now();
  let anyDown = false;
  for (let k = 0; k < eps.length; k++) {
    const i = (target.rr + k) % eps.length;
    if (down[i]! > now) {
      anyDown = true;
      continue;
    }
    if (avoid && sameEndpoint(eps[i]!, avoid)) continue;
    target.rr += k + 1;
    return eps[i];
  }
  // Back to plain round-robin once every ejection has expired; while all are down, try them anyway.
  if (!anyDown) target.down = null;
  return undefined;
}

/**
 * A connection to `endpoint` failed before any answer (refused, unreachable, timed out): the registry re-checks
 * the route, and this target skips the endpoint for `failTimeout` ms (`http.failTimeout`) when it has another:
 * nginx's `max_fails=1 fail_timeout=10s`. Without it a task on a host that stopped answering costs every
 * request sent its way the connect timeout before the retry. Both HTTP paths and WebSockets report here.
 */
export function endpointFailed(registry: RegistryView, target: Target, endpoint: Endpoint, failTimeout: number): void {
  registry.endpointFailed(target.route.name, endpoint);
  const eps = target.endpoints;
  if (eps.length < 2 || failTimeout <= 0) return;
  const i = eps.findIndex((e) => sameEndpoint(e, endpoint));
  if (i !== -1) (target.down ??= new Float64Array(eps.length))[i] = performance.now() + failTimeout;
}

const sameEndpoint = (a: Endpoint, b: Endpoint) => a.host === b.host && a.port === b.port;

/** A request target without its query (`/master1/job/x?y=1` → `/master1/job/x`). */
export function pathOnly(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

const dotSegment = /(?:^|\/)\.{1,2}(?:\/|$)/;

/**
 * A path whose `.`/`..` segments appear once `%2e`, `%2f`, `%5c` and `\` are decoded (`/master1/..%2f..%2fmaster2`).
 * Browsers never send one (they normalize); a backend that decodes it could be led outside the prefix, so
 * such requests are refused rather than guessed at (OWASP path traversal, CVE-2021-41773 style).
 */
export function hasDotSegment(path: string): boolean {
  if (path.indexOf('.') === -1 && path.indexOf('%') === -1 && path.indexOf('\\') === -1) return false;
  const decoded = path.replace(/%2e/gi, '.').replace(/%2f|%5c|\\/gi, '/');
  return dotSegment.test(decoded);
}

const hostCacheLimit = 4096;

export class Resolver {
  private table: RouteTable;
  private readonly unsubscribe: () => void;
  /** Host header → match; bounded, cleared when full (hosts are few: one per master and domain). */
  private readonly hosts = new Map<string, { readonly match: HostMatch; readonly host: string }>();

  constructor(
    registry: RegistryView,
    private readonly domains: readonly string[],
  ) {
    this.table = buildTable(registry.current(), null);
    this.unsubscribe = registry.subscribe((next) => {
      this.table = buildTable(next, this.table);
    });
  }

  current(): RouteTable {
    return this.table;
  }

  close(): void {
    this.unsubscribe();
  }

  private matchHost(hostHeader: string) {
    let m = this.hosts.get(hostHeader);
    if (m === undefined) {
      const host = normalizeHost(hostHeader);
      m = { match: matchHost(host, this.domains), host };
      if (this.hosts.size >= hostCacheLimit) this.hosts.clear();
      this.hosts.set(hostHeader, m);
    }
    return m;
  }

  /** A Host header naming one of our domains or a name under one (never redirect or answer for others). */
  isOurHost(hostHeader: string | undefined): boolean {
    return this.matchHost(hostHeader ?? '').match.type !== 'none';
  }

  /** The Host header without its port, normalized. */
  hostOf(hostHeader: string | undefined): string {
    return this.matchHost(hostHeader ?? '').host;
  }

  /** `url` is the request-target: origin-form (`/x`), or absolute-form (`http://h/x`, RFC 9112 §3.2.2). */
  resolve(hostHeader: string | undefined, url: string): Resolution {
    let host = hostHeader ?? '';
    let path = url;
    if (url.charCodeAt(0) !== 47 /* / */) {
      const abs = /^https?:\/\/([^/?#@]*)([/?].*)?$/i.exec(url);
      // RFC 9112 §3.2.2: in absolute-form the target's authority replaces Host. Only our own hosts route,
      // so an absolute URI naming another host is a 404, never an open proxy.
      if (!abs) return { kind: 'problem', problem: { code: 'E_BAD_REQUEST', reason: 'unsupported request-target' } };
      host = abs[1]!;
      path = abs[2] ?? '/';
      if (path.charCodeAt(0) !== 47) path = `/${path}`;
    }
    const q = path.indexOf('?');
    if (hasDotSegment(q === -1 ? path : path.slice(0, q))) {
      return { kind: 'problem', problem: { code: 'E_BAD_REQUEST', reason: 'dot-segment in path' } };
    }
    const { match, host: publicHost } = this.matchHost(host);
    const table = this.table;
    if (match.type === 'name') {
      const target = table.byName.get(match.name);
      if (!target) return { kind: 'problem', problem: table.ready ? { code: 'E_NO_ROUTE', name: match.name, index: `//${match.domain}${portOf(host)}/` } : { code: 'E_ROUTES_LOADING', name: match.name } };
      return { kind: 'proxy', target, upstreamPath: path, pathRouted: false, publicHost };
    }
    if (match.type === 'none') return { kind: 'problem', problem: { code: 'E_NO_HOST_ROUTE', host: publicHost } };
    // Path routing: <domain>/<name>/…
    let end = path.indexOf('/', 1);
    if (end === -1 || (q !== -1 && q < end)) end = q === -1 ? path.length : q;
    if (end === 1) return { kind: 'index', domain: match.domain, publicHost };
    const segment = path.slice(1, end);
    const target = table.byPath.get(segment) ?? table.byPath.get(segment.toLowerCase());
    if (!target) return { kind: 'problem', problem: table.ready ? { code: 'E_NO_ROUTE', name: segment.slice(0, 100), index: '/' } : { code: 'E_ROUTES_LOADING', name: segment.slice(0, 100) } };
    if (end === path.length || end === q) {
      // `/master1` → `/master1/`: relative links on the master's pages only resolve under the slash.
      return { kind: 'redirect', location: `${target.route.path}/${path.slice(end)}` };
    }
    const upstreamPath = target.route.stripPrefix ? path.slice(end) : path;
    return { kind: 'proxy', target, upstreamPath, pathRouted: true, publicHost };
  }
}

/** `:8080` of `host:8080` (kept on links to sibling hosts), or ''. */
export function portOf(hostHeader: string): string {
  const close = hostHeader.lastIndexOf(']');
  const colon = hostHeader.lastIndexOf(':');
  return colon > close ? (/^:\d{1,5}$/.test(hostHeader.slice(colon)) ? hostHeader.slice(colon) : '') : '';
}
