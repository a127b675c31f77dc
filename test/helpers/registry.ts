import { silentLogger, type Logger } from '../../src/log.js';
import { Registry } from '../../src/registry/registry.js';
import { emptyEndpoints, type Endpoint, type PortName, type RouteInput, type RouteSource, type SourceSink } from '../../src/registry/types.js';

/** A route source driven by hand, for front-door tests that do not need the Marathon simulator. */
/** A source that only holds the sink the registry gives it: a test drives `sink` by hand. */
export class Handle implements RouteSource {
  sink!: SourceSink;
  constructor(readonly id: string) {}
  async start(sink: SourceSink) {
    this.sink = sink;
  }
  async close() {}
}

export class ManualSource implements RouteSource {
  readonly id = 'manual';
  private sink: SourceSink | null = null;

  constructor(private readonly initial: RouteInput[] = []) {}

  async start(sink: SourceSink): Promise<void> {
    this.sink = sink;
    sink.replace(this.initial);
  }

  async close(): Promise<void> {
    this.sink = null;
  }

  set(route: RouteInput): void {
    this.sink?.upsert(route);
  }

  remove(name: string): void {
    this.sink?.remove(name);
  }
}

/** A master route in one line: `masterRoute('master1', { http: [{host:'127.0.0.1', port}] })`. */
export function masterRoute(name: string, endpoints: Partial<Record<PortName, Endpoint[]>>, extra: Partial<RouteInput> = {}): RouteInput {
  const eps = { ...emptyEndpoints(), ...endpoints };
  const any = Object.values(eps).some((l) => l.length > 0);
  return {
    name,
    kind: 'master',
    app: `/masters/${name}`,
    state: any ? 'running' : 'starting',
    endpoints: eps,
    servicePorts: {},
    path: `/${name}`,
    stripPrefix: false,
    labels: {},
    source: 'manual',
    ...extra,
  };
}

/** A started Registry over a ManualSource. Close it in t.teardown. */
export async function testRegistry(routes: RouteInput[] = [], log: Logger = silentLogger()) {
  const source = new ManualSource(routes);
  const registry = new Registry({ log }).add(source);
  await registry.start();
  return { registry, source };
}
