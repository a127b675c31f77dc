import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Endpoint, RegistryView } from '../registry/types.js';
import { normalizeAddress } from '../client-address.js';
import { hostPort } from './reachable.js';
import { adoptOnRead, relayReads } from './relay.js';

export interface SpliceOptions {
  readonly id: string;
  /** `gateway` (a per-master forwarder) or `shared` (the shared agent port): the metric label. */
  readonly via: 'gateway' | 'shared';
  readonly route: string;
  readonly portName: string;
  readonly client: Socket;
  readonly target: Endpoint;
  /** Bytes already read from the client that belong to the master (what followed the proxy preamble). */
  readonly head?: Buffer;
  readonly connectTimeout: number;
  readonly registry: RegistryView;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** When the agent's connection was accepted (`performance.now()`): the log's `ms` and `connectMs` count from it. */
  readonly accepted: number;
  /** The agent's address when a PROXY protocol header named it (the socket's peer is then the balancer). */
  readonly clientAddress?: string;
  /** Extra fields for the connection's log line (`node`, `attributedBy`). */
  readonly fields?: Record<string, unknown>;
}

/**
 * Joins an accepted agent connection to a master's agent port. Agent channels live for days: TCP keepalive on
 * both legs (Jenkins sets it on its side too, TcpSlaveAgentListener.run) and no idle timeout. Bytes move by
 * `onread` relays (relay.ts; a client socket this Node cannot adopt is piped): backpressure both ways, and
 * half-closes pass through. One log line when the connection ends.
 */
export function splice(o: SpliceOptions): void {
  const client = o.client;
  const up = o.metrics.jnlpBytes.labels(o.via, 'up');
  const down = o.metrics.jnlpBytes.labels(o.via, 'down');
  const endpoint = hostPort(o.target.host, o.target.port);
  // Read now: a socket that was reset has no remote address any more when the log line is written.
  const clientAddress = o.clientAddress ?? `${normalizeAddress(client.remoteAddress)}:${client.remotePort ?? ''}`;
  // The master's bytes go to the agent from the first read; the agent's are relayed once this leg is connected.
  const upstream: Socket = connect({
    host: o.target.host,
    port: o.target.port,
    allowHalfOpen: true,
    noDelay: true,
    onread: relayReads(client, () => upstream, (n) => down.inc(n)),
  });
  // `on`, not `once`, for events a socket emits once ('connect', 'end', 'close'): `once` wraps each listener
  // in a bound function and a state object, kept for the channel's life (days, for an idle agent).
  upstream.on('end', () => client.end());
  let connected = false;
  let connectMs: number | null = null;
  let outcome = 'closed';

  // A timer of our own, dropped at connect: socket.setTimeout(0) would keep the cleared one on the socket.
  let connectTimer: NodeJS.Timeout | undefined = setTimeout(() => {
    outcome = 'connect-timeout';
    upstream.destroy();
  }, o.connectTimeout).unref();
  const stopConnectTimer = () => {
    clearTimeout(connectTimer);
    connectTimer = undefined;
  };
  upstream.on('connect', () => {
    stopConnectTimer();
    connected = true;
    connectMs = performance.now() - o.accepted;
    o.metrics.jnlpConnectDuration.observe({ via: o.via }, connectMs / 1000);
    o.metrics.jnlpConnections.inc({ via: o.via, outcome: 'forwarded' });
    upstream.setKeepAlive(true);
    client.setKeepAlive(true);
    client.setNoDelay(true);
    o.metrics.jnlpForwardsOpen.inc({ via: o.via });
    // The preamble's rest, then what the client socket read past it while this leg was connecting (shared port).
    const early = client.readableLength > 0 ? (client.read() as Buffer | null) : null;
    for (const b of [o.head, early]) {
      if (!b || b.length === 0) continue;
      upstream.write(b);
      up.inc(b.length);
    }
    if (adoptOnRead(client, relayReads(upstream, () => client, (n) => up.inc(n)))) {
      client.on('end', () => upstream.end());
    } else {
      client.on('data', (c: Buffer) => up.inc(c.length));
      client.pipe(upstream);
    }
    client.resume();
  });
  upstream.on('error', (err: NodeJS.ErrnoException) => {
    if (!connected) {
      if (outcome === 'closed') outcome = err.code === 'ECONNREFUSED' ? 'refused' : `connect-error ${err.code ?? err.message}`;
      o.registry.endpointFailed(o.route, o.target);
    } else if (outcome === 'closed') {
      outcome = `upstream-error ${err.code ?? err.message}`;
    }
  });
  client.on('error', (err: NodeJS.ErrnoException) => {
    if (outcome === 'closed') outcome = `client-error ${err.code ?? err.message}`;
  });
  // A reset, a destroy (shutdown deadline) or a failed connect on one side takes the other down; a clean close
  // (its peer ended) lets the other side flush what the pipe still holds and end by itself (half-open allowed).
  let open = 2;
  const closed = () => {
    if (--open > 0) return;
    if (connected) o.metrics.jnlpForwardsOpen.dec({ via: o.via });
    else o.metrics.jnlpConnections.inc({ via: o.via, outcome: 'failed' });
    o.log.info(
      {
        id: o.id,
        via: o.via,
        route: o.route,
        port: o.portName,
        endpoint,
        client: clientAddress,
        bytesIn: client.bytesRead,
        bytesOut: client.bytesWritten,
        ms: Math.round(performance.now() - o.accepted),
        connectMs: connectMs === null ? null : Math.round(connectMs * 1000) / 1000,
        outcome,
        ...o.fields,
      },
      connected ? 'agent connection forwarded' : 'agent connection failed',
    );
  };
  client.on('close', (hadError) => {
    if (!connected && outcome === 'closed') outcome = 'client-gone';
    if (hadError || !connected || !client.readableEnded) upstream.destroy();
    closed();
  });
  upstream.on('close', (hadError) => {
    stopConnectTimer();
    if (hadError || !connected || !upstream.readableEnded) client.destroy();
    closed();
  });
}
