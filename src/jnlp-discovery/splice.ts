import { connect, type Socket } from 'node:net';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Endpoint, RegistryView } from '../registry/types.js';
import { normalizeAddress } from './attribution.js';
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
  readonly started?: number;
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
  const started = o.started ?? Date.now();
  const client = o.client;
  const endpoint = hostPort(o.target.host, o.target.port);
  // Read now: a socket that was reset has no remote address any more when the log line is written.
  const clientAddress = `${normalizeAddress(client.remoteAddress)}:${client.remotePort ?? ''}`;
  // The master's bytes go to the agent from the first read; the agent's are relayed once this leg is connected.
  const upstream: Socket = connect({
    host: o.target.host,
    port: o.target.port,
    allowHalfOpen: true,
    noDelay: true,
    onread: relayReads(client, () => upstream),
  });
  upstream.once('end', () => client.end());
  let connected = false;
  let outcome = 'closed';
  let counted = false;

  upstream.setTimeout(o.connectTimeout, () => {
    if (connected) return;
    outcome = 'connect-timeout';
    upstream.destroy();
  });
  upstream.once('connect', () => {
    connected = true;
    upstream.setTimeout(0);
    upstream.setKeepAlive(true);
    client.setKeepAlive(true);
    client.setNoDelay(true);
    counted = true;
    o.metrics.jnlpForwardsOpen.inc({ via: o.via });
    if (o.head && o.head.length > 0) upstream.write(o.head);
    // What the client socket read past the preamble while this leg was connecting (shared port).
    const early = client.readableLength > 0 ? (client.read() as Buffer | null) : null;
    if (early) upstream.write(early);
    if (adoptOnRead(client, relayReads(upstream, () => client))) client.once('end', () => upstream.end());
    else client.pipe(upstream);
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
    if (counted) o.metrics.jnlpForwardsOpen.dec({ via: o.via });
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
        ms: Date.now() - started,
        outcome,
        ...o.fields,
      },
      connected ? 'agent connection forwarded' : 'agent connection failed',
    );
  };
  client.once('close', (hadError) => {
    if (!connected && outcome === 'closed') outcome = 'client-gone';
    if (hadError || !connected || !client.readableEnded) upstream.destroy();
    closed();
  });
  upstream.once('close', (hadError) => {
    if (hadError || !connected || !upstream.readableEnded) client.destroy();
    closed();
  });
}
