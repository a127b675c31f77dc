import type { StaticRouteConfig } from '../config/types.js';
import { CiEdgeError } from '../errors.js';
import { emptyEndpoints, portNames, type Endpoint, type RouteInput, type RouteSource, type SourceSink } from './types.js';

/** `"127.0.0.1:8081"` → `{host, port}`; config validation has already checked the shape. */
export function parseHostPort(s: string): Endpoint {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(s);
  if (!m) throw new CiEdgeError('E_CONFIG_INVALID', [`not host:port: ${s}`]);
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

export function staticRouteToInput(r: StaticRouteConfig, source = 'file'): RouteInput {
  const endpoints = emptyEndpoints() as Record<(typeof portNames)[number], Endpoint[]>;
  for (const p of portNames) endpoints[p] = r.endpoints[p].map(parseHostPort);
  const hasAny = portNames.some((p) => endpoints[p].length > 0);
  return {
    name: r.name,
    kind: r.kind,
    app: null,
    state: hasAny ? 'running' : 'unhealthy',
    ...(hasAny ? {} : { detail: 'no endpoints configured' }),
    endpoints,
    servicePorts: r.servicePorts ?? {},
    path: r.path ?? `/${r.name}`,
    stripPrefix: r.stripPrefix ?? r.kind === 'service',
    labels: {},
    source,
  };
}

/** The file registry: static routes from config, for the embedded default and small sites. */
export class FileSource implements RouteSource {
  readonly id = 'file';

  private sink: SourceSink | null = null;

  constructor(private routes: readonly StaticRouteConfig[]) {}

  async start(sink: SourceSink): Promise<void> {
    this.sink = sink;
    sink.replace(this.routes.map((r) => staticRouteToInput(r)));
  }

  /**
   * The routes of a reloaded file (SIGHUP, POST /reload; issue #6). A full replace: the registry keeps every
   * unchanged route object, so only real changes reach subscribers and front doors keep their tables.
   */
  update(routes: readonly StaticRouteConfig[]): void {
    this.routes = routes;
    this.sink?.replace(routes.map((r) => staticRouteToInput(r)));
  }

  async close(): Promise<void> {
    this.sink = null;
  }
}
