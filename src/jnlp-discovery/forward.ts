import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { JnlpConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { PortName, RegistryView, Snapshot } from '../registry/types.js';
import { normalizeAddress } from '../client-address.js';
import { refuseOverLimit, type AgentLimits } from './limits.js';
import { OpenSockets } from './open-sockets.js';
import { stablePort } from './reachable.js';
import { splice } from './splice.js';

/** Ports ci-edge forwards in gateway mode: the agent port always, the master's SSH port when it has a servicePort. */
const FORWARDED: readonly PortName[] = ['jnlp', 'ssh'];

interface Listener {
  readonly route: string;
  readonly portName: PortName;
  readonly port: number;
  readonly server: Server;
  state: 'opening' | 'open' | 'failed';
}

export interface ForwardersOptions {
  readonly jnlp: JnlpConfig;
  readonly registry: RegistryView;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly nextId: () => string;
  readonly limits: AgentLimits;
}

/**
 * Gateway mode (issue #5 §1): one TCP listener per master on its stable port, opened and closed as masters
 * come and go. The table of listeners is reconciled from each registry Snapshot; a connection looks up the
 * master's CURRENT endpoint when it arrives, so a master that moved is followed by the next connection while
 * agents already connected stay on their (still open) sockets.
 */
export class Forwarders {
  private readonly listeners = new Map<number, Listener>();
  private readonly sockets = new OpenSockets();
  private readonly pending = new Set<Promise<void>>();
  private unsubscribe: (() => void) | null = null;
  private closed = false;

  constructor(private readonly o: ForwardersOptions) {}

  start(): void {
    this.unsubscribe = this.o.registry.subscribe((next) => this.reconcile(next));
    this.reconcile(this.o.registry.current());
  }

  /** Resolves when every listener being opened or closed has finished (tests, and close). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  addresses(): Record<string, AddressInfo> {
    const out: Record<string, AddressInfo> = {};
    for (const l of this.listeners.values()) {
      const a = l.server.address();
      if (l.state === 'open' && a && typeof a === 'object') out[`${l.portName === 'jnlp' ? 'agent' : l.portName}.${l.route}`] = a;
    }
    return out;
  }

  reconcile(snapshot: Snapshot): void {
    if (this.closed) return;
    const wanted = new Map<number, { route: string; portName: PortName }>();
    for (const route of snapshot.routes.values()) {
      if (route.kind !== 'master' || route.state === 'gone') continue;
      for (const portName of FORWARDED) {
        const port = stablePort(route, portName);
        if (port === undefined) continue;
        const other = wanted.get(port);
        if (other) {
          this.o.log.error({ port, route: route.name, other: other.route }, 'two masters claim the same stable port; keeping the first');
          continue;
        }
        wanted.set(port, { route: route.name, portName });
      }
    }
    for (const [port, l] of this.listeners) {
      const w = wanted.get(port);
      // A listener that failed to bind is retried on the next change.
      if (!w || w.route !== l.route || w.portName !== l.portName || l.state === 'failed') this.stop(port, l);
    }
    for (const [port, w] of wanted) if (!this.listeners.has(port)) this.open(port, w.route, w.portName);
  }

  private open(port: number, route: string, portName: PortName): void {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.accept(socket, route, portName));
    const l: Listener = { route, portName, port, server, state: 'opening' };
    this.listeners.set(port, l);
    const done = new Promise<void>((resolve) => {
      server.once('listening', () => {
        l.state = 'open';
        this.o.log.info({ route, port: portName, listen: `${this.o.jnlp.bindHost}:${port}` }, 'forwarder open');
        resolve();
      });
      server.once('error', (err: NodeJS.ErrnoException) => {
        l.state = 'failed';
        this.o.log.error({ route, port: portName, listen: `${this.o.jnlp.bindHost}:${port}`, code: 'E_LISTEN', err: err.code ?? err.message }, 'forwarder cannot listen');
        resolve();
      });
    });
    this.track(done);
    server.listen(port, this.o.jnlp.bindHost);
  }

  /** Stops accepting; connections already forwarded keep running (an agent channel is not cut by a move). */
  private stop(port: number, l: Listener): void {
    this.listeners.delete(port);
    if (l.state !== 'failed') {
      this.o.log.info({ route: l.route, port: l.portName, listen: `${this.o.jnlp.bindHost}:${port}` }, 'forwarder closed');
    }
    // close() releases the port at once; its callback would wait for every forwarded connection to end.
    if (l.server.listening) l.server.close();
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private accept(socket: Socket, name: string, portName: PortName): void {
    const id = this.o.nextId();
    const accepted = performance.now();
    const over = this.o.limits.admit(socket);
    if (over) return refuseOverLimit(this.o, socket, over, { id, via: 'gateway', route: name, port: portName });
    this.sockets.add(socket);
    const route = this.o.registry.current().routes.get(name);
    const target = route?.endpoints[portName][0];
    if (!route || !target) {
      this.o.metrics.jnlpConnections.inc({ via: 'gateway', outcome: 'refused' });
      this.o.log.warn(
        { id, via: 'gateway', route: name, port: portName, client: normalizeAddress(socket.remoteAddress), reason: route ? `master is ${route.state}` : 'master is gone' },
        'agent connection refused',
      );
      socket.destroy();
      return;
    }
    splice({
      id,
      via: 'gateway',
      route: name,
      portName,
      client: socket,
      target,
      connectTimeout: this.o.jnlp.connectTimeout,
      registry: this.o.registry,
      log: this.o.log,
      metrics: this.o.metrics,
      accepted,
    });
  }

  /** Closes every listener now; open agent connections get until `deadline`, then are cut. */
  async close(deadline?: number): Promise<void> {
    this.closed = true;
    this.unsubscribe?.();
    for (const [port, l] of this.listeners) this.stop(port, l);
    await this.settled();
    await this.sockets.cutAt(deadline);
  }
}
