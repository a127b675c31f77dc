import type { Socket } from 'node:net';
import type { JnlpLimits } from '../config/types.js';
import { CiEdgeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { normalizeAddress } from '../client-address.js';

/**
 * The agent ports' two bounds (`jnlp.limits`), read per connection so a reload applies to the next one:
 * - agent connections open through ci-edge at once, forwarders and the shared port together (HAProxy's
 *   `maxconn`): each holds two descriptors for as long as the agent lives, often days;
 * - shared-port connections from one client address still in their preamble (nginx's `limit_conn` on the
 *   handshake only): a flood of silent connections is refused at accept instead of each holding a socket for
 *   `headerTimeout`. Agents finish the preamble within a round trip, so a NAT'd fleet sharing one address
 *   is not held back; their established channels are not counted.
 * A refused agent sees its connection closed and retries, as it does while a master restarts.
 */
export class AgentLimits {
  private open = 0;
  private readonly pending = new Map<string, number>();
  /** One listener for every admitted socket: nothing allocated per agent channel. */
  private readonly closed = () => {
    this.open--;
  };

  constructor(private readonly limits: () => JnlpLimits) {}

  /** Counts `socket` until it closes and returns null, or returns why it is refused. */
  admit(socket: Socket): string | null {
    const max = this.limits().maxConnections;
    if (this.open >= max) return `${this.open} agent connections are open (jnlp.limits.maxConnections ${max})`;
    this.open++;
    socket.on('close', this.closed);
    return null;
  }

  /**
   * A shared-port connection from `client` starts its preamble. Returns the release to call when the preamble
   * ends either way (calling it again does nothing), or why the connection is refused.
   */
  startPreamble(client: string): (() => void) | string {
    const max = this.limits().maxPendingPerClient;
    const n = this.pending.get(client) ?? 0;
    if (n >= max) return `${n} connections from ${client} are still in their preamble (jnlp.limits.maxPendingPerClient ${max})`;
    this.pending.set(client, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.pending.get(client)! - 1;
      if (left === 0) this.pending.delete(client);
      else this.pending.set(client, left);
    };
  }

  /** Agent connections open now, and clients with a preamble in progress (tests, metrics). */
  counts(): { open: number; pendingClients: number } {
    return { open: this.open, pendingClients: this.pending.size };
  }
}

/** Closes a connection a limit refuses: counted, one warn line, no byte sent (the agent retries). */
export function refuseOverLimit(o: { log: Logger; metrics: Metrics }, socket: Socket, reason: string, fields: { id: string; via: 'gateway' | 'shared'; [k: string]: unknown }): void {
  o.metrics.jnlpConnections.inc({ via: fields.via, outcome: 'limited' });
  const err = new CiEdgeError('E_JNLP_LIMIT', [reason]);
  o.log.warn({ client: normalizeAddress(socket.remoteAddress), ...fields, code: err.code, reason }, err.message);
  socket.destroy();
}
