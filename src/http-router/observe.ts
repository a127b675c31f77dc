import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Target } from './resolve.js';

/**
 * The access log (one pino line per request: id, client, route, endpoint, status, bytes, ms) and the http metrics.
 * Labelled metric children are cached on the route's Target, so the hot path does no label hashing.
 */

interface RouteStats {
  readonly requests: ReturnType<Metrics['httpRequests']['labels']>[];
  readonly duration: ReturnType<Metrics['httpDuration']['labels']>;
  readonly bytes: ReturnType<Metrics['httpBytes']['labels']>;
}

/** Requests no route took (unknown host or name): one label, so clients cannot grow the label set. */
export const unroutedLabel = '-';

export interface AccessRecord {
  readonly id: string;
  /** Who sent it: the peer, or behind a trusted load balancer the client it names (`http.trustedProxies`). */
  readonly client: string;
  readonly method: string;
  readonly path: string;
  readonly route: string;
  readonly endpoint: string | null;
  readonly status: number;
  readonly bytes: number;
  readonly ms: number;
  readonly aborted: boolean;
  readonly websocket?: true;
}

export class Observer {
  private seq = 0;
  /**
   * Per process and random: ids go to the masters as X-Request-Id and into logs gathered from every
   * instance, so two instances (or one restarted) must not count up the same ids.
   */
  private readonly prefix = `${randomBytes(4).readUInt32BE(0).toString(36)}-`;
  private readonly unrouted: RouteStats;

  constructor(
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.unrouted = this.statsFor(unroutedLabel);
  }

  nextId(): string {
    return this.prefix + (++this.seq).toString(36);
  }

  private statsFor(route: string): RouteStats {
    const m = this.metrics;
    return {
      requests: ['1xx', '2xx', '3xx', '4xx', '5xx'].map((code) => m.httpRequests.labels(route, code)),
      duration: m.httpDuration.labels(route),
      bytes: m.httpBytes.labels(route),
    };
  }

  /**
   * The access-log record of a finished request or WebSocket: route and endpoint from what was resolved and
   * proxied, milliseconds since `started` (performance.now()) to two decimals.
   */
  finish(
    target: Target | undefined,
    endpoint: { readonly host: string; readonly port: number } | undefined,
    started: number,
    r: Omit<AccessRecord, 'route' | 'endpoint' | 'ms'>,
  ): void {
    // Built field by field: an object spread of `r` here cost more than the rest of the access log (bench:http).
    const record: AccessRecord = {
      id: r.id,
      client: r.client,
      method: r.method,
      path: r.path,
      route: target?.route.name ?? unroutedLabel,
      endpoint: endpoint ? `${endpoint.host}:${endpoint.port}` : null,
      status: r.status,
      bytes: r.bytes,
      ms: Math.round((performance.now() - started) * 100) / 100,
      aborted: r.aborted,
    };
    if (r.websocket) (record as { websocket?: true }).websocket = true;
    this.record(target, record);
  }

  record(target: Target | undefined, r: AccessRecord): void {
    let stats = this.unrouted;
    if (target) stats = (target.stats as RouteStats | undefined) ?? (target.stats = this.statsFor(target.route.name));
    const cls = Math.floor(r.status / 100);
    stats.requests[cls >= 1 && cls <= 5 ? cls - 1 : 4]!.inc();
    stats.duration.observe(r.ms / 1000);
    if (r.bytes > 0) stats.bytes.inc(r.bytes);
    this.log.info(r, 'request');
  }

  websocket(delta: 1 | -1): void {
    this.metrics.websocketsOpen.inc(delta);
  }

  clientError(code: string, status: number): void {
    this.unrouted.requests[Math.floor(status / 100) - 1]?.inc();
    this.log.info({ err: code, status }, 'rejected malformed request');
  }
}
