/**
 * Infrastructure services from `config.services` that are not Marathon apps: static upstream lists, and
 * Mesos/Marathon clusters routed to their current leader (a standby Mesos master answers its UI and API
 * with redirects, a standby Marathon proxies with extra latency and loses SSE streams). The leader is
 * re-checked periodically and whenever a front door reports the endpoint failing.
 */
import type { ServiceConfig } from '../config/types.js';
import { isCiEdgeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { probeMarathonLeader, probeMesosLeader, splitHostPort } from './marathon/leader-probe.js';
import { emptyEndpoints, type Endpoint, type RouteInput, type RouteSource, type SourceSink } from './types.js';

export interface ServiceSourceOptions {
  readonly services: Readonly<Record<string, ServiceConfig>>;
  readonly requestTimeout: number;
  readonly recheckInterval: number;
  /** Credentials for Marathon's /v2/leader (the same cluster ci-edge reads apps from). */
  readonly marathonAuth?: { readonly basic?: string; readonly token?: string } | null;
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** A front door's failure reports re-check a leader at most once per this many ms (default 1 s). */
  readonly recheckThrottle?: number;
}

export function upstreamEndpoint(url: string): Endpoint {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80 };
}

interface LeaderState {
  leader: Endpoint | null;
  error: string | null;
  checking: Promise<void> | null;
  lastCheck: number;
}

export class ServiceSource implements RouteSource {
  readonly id = 'services';
  private sink: SourceSink | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly log: Logger;
  private readonly leaders = new Map<string, LeaderState>();
  private readonly upstreamServices: [string, ServiceConfig][];

  constructor(private readonly o: ServiceSourceOptions) {
    this.log = o.log.child({ component: 'services' });
    this.upstreamServices = Object.entries(o.services).filter(([, s]) => s.app === null && s.upstreams.length > 0);
    for (const [name, s] of this.upstreamServices) if (s.leader) this.leaders.set(name, { leader: null, error: null, checking: null, lastCheck: 0 });
  }

  /** Whether any service needs this source (the others are Marathon apps). */
  get empty(): boolean {
    return this.upstreamServices.length === 0;
  }

  async start(sink: SourceSink): Promise<void> {
    this.sink = sink;
    // The first round of leader checks completes before the source counts as synced (each is bounded by
    // requestTimeout), so /ready does not report routes that point at a standby.
    void Promise.all([...this.leaders.keys()].map((n) => this.check(n, false))).then(() => {
      if (this.closed) return;
      sink.replace(this.upstreamServices.map(([name]) => this.route(name)));
      this.timer = setInterval(() => {
        for (const n of this.leaders.keys()) void this.check(n, true);
      }, this.o.recheckInterval);
      this.timer.unref();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.all([...this.leaders.values()].map((l) => l.checking?.catch(() => undefined)));
  }

  endpointFailed(name: string): void {
    const l = this.leaders.get(name);
    if (l && Date.now() - l.lastCheck >= (this.o.recheckThrottle ?? 1000)) void this.check(name, true);
  }

  private check(name: string, publish: boolean): Promise<void> {
    const l = this.leaders.get(name)!;
    if (l.checking) return l.checking;
    l.checking = this.probe(name)
      .then((leader) => {
        if (l.leader?.host !== leader.host || l.leader?.port !== leader.port) this.log.info({ service: name, leader }, 'service leader found');
        l.leader = leader;
        l.error = null;
      })
      .catch((err: unknown) => {
        this.o.metrics?.marathonErrors.inc({ kind: 'leader_probe' });
        l.error = err instanceof Error ? err.message : String(err);
        this.log.warn({ service: name, err: l.error, keeping: l.leader }, 'cannot find the service leader');
      })
      .finally(() => {
        l.checking = null;
        l.lastCheck = Date.now();
        if (publish && !this.closed) this.sink?.upsert(this.route(name));
      });
    return l.checking;
  }

  /** Asks each upstream in turn; the first answer wins. */
  private async probe(name: string): Promise<Endpoint> {
    const s = this.o.services[name]!;
    let last: unknown = null;
    for (const upstream of s.upstreams) {
      try {
        const opts = { timeout: this.o.requestTimeout, auth: this.o.marathonAuth ?? null };
        const hostPort = s.leader === 'mesos' ? await probeMesosLeader(upstream, opts) : await probeMarathonLeader(upstream, opts);
        const defaultPort = s.leader === 'mesos' ? 5050 : 8080;
        const leader = splitHostPort(hostPort, defaultPort);
        // Prefer the configured upstream that is the leader (same host and port), as operators wrote it.
        const match = s.upstreams.map(upstreamEndpoint).find((e) => e.host === leader.host && e.port === leader.port);
        return match ?? leader;
      } catch (err) {
        last = err;
      }
    }
    throw isCiEdgeError(last) || last instanceof Error ? last : new Error(String(last));
  }

  private route(name: string): RouteInput {
    const s = this.o.services[name]!;
    const l = this.leaders.get(name);
    const endpoints = emptyEndpoints();
    let detail: string | undefined;
    let http: Endpoint[];
    if (!l) http = s.upstreams.map(upstreamEndpoint);
    else if (l.leader) {
      http = [l.leader];
      if (l.error) detail = `leader re-check failed, keeping ${l.leader.host}:${l.leader.port}: ${l.error}`;
    } else {
      // Never known: any upstream beats none (a standby redirects or proxies to the leader).
      http = s.upstreams.map(upstreamEndpoint);
      detail = `leader unknown, using every upstream: ${l.error ?? 'not checked yet'}`;
    }
    return {
      name,
      kind: 'service',
      app: null,
      state: 'running',
      ...(detail ? { detail } : {}),
      endpoints: { ...endpoints, http },
      servicePorts: {},
      path: `/${name}`,
      stripPrefix: s.stripPrefix,
      labels: s.leader ? { 'ci-edge.leader': s.leader } : {},
      source: 'service',
    };
  }
}
