import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { JnlpConfig } from '../config/types.js';
import { CiEdgeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { listen } from '../net.js';
import { ProxyHeaderParser } from '../proxy-protocol.js';
import type { RegistryView } from '../registry/types.js';
import { normalizeAddress } from '../client-address.js';
import type { DiscoveryLog } from './attribution.js';
import { PROXY_PROTOCOL } from './advertise.js';
import { refuseOverLimit, type AgentLimits } from './limits.js';
import { OpenSockets } from './open-sockets.js';
import { PreambleParser } from './preamble.js';
import { splice } from './splice.js';

/**
 * `ci_edge_jnlp_connections_total{outcome}` for a connection that is not forwarded (splice counts `forwarded` and
 * `failed`): no master to name (`unattributed`), one that is not running (`refused`), bytes that are no
 * preamble (`bad-preamble`), and the status probes agents and monitors make (`probe`, `ping`).
 */
type Outcome = 'unattributed' | 'refused' | 'bad-preamble' | 'probe' | 'ping';

/** Jenkins' PingAgentProtocol answer (TcpSlaveAgentListener.PingAgentProtocol): status probes work here too. */
const PING_REPLY = Buffer.from('Ping\n', 'utf8');

export interface SharedPortOptions {
  readonly jnlp: JnlpConfig;
  readonly port: number;
  readonly registry: RegistryView;
  readonly discoveries: DiscoveryLog;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly nextId: () => string;
  readonly limits: AgentLimits;
}

/**
 * One agent port for every master (issue #5 §4). Remoting ≥ 3180 speaks JNLP4-connect-proxy here: the
 * preamble names the node, the discovery log names the master it discovered through, and everything after
 * the preamble is forwarded unchanged to that master's agent port.
 *
 * Agents negotiate from a HashSet (remoting InboundTCPConnector.connect collects the common protocols with
 * `Collectors.toSet()`), so one may try plain JNLP4-connect here first. Such a connection carries no name: it
 * is routed when its client address discovered exactly one master, else closed — the agent then moves on to
 * its next protocol, JNLP4-connect-proxy.
 */
export class SharedPort {
  private readonly server: Server;
  private readonly sockets = new OpenSockets();
  private address: AddressInfo | null = null;

  constructor(private readonly o: SharedPortOptions) {
    this.server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
  }

  async start(): Promise<AddressInfo> {
    this.address = await listen(this.server, { host: this.o.jnlp.bindHost, port: this.o.port });
    this.o.log.info({ listen: `${this.address.address}:${this.address.port}` }, 'shared agent port open');
    return this.address;
  }

  addresses(): Record<string, AddressInfo> {
    return this.address ? { shared: this.address } : {};
  }

  async close(deadline?: number): Promise<void> {
    // Stop accepting now; the close callback would wait for the agents, which get until the deadline instead.
    if (this.server.listening) this.server.close();
    await this.sockets.cutAt(deadline);
  }

  private accept(socket: Socket): void {
    const id = this.o.nextId();
    const accepted = performance.now();
    // Behind a balancer that sends a PROXY header the client is known once that is read; until then, its peer.
    let client = normalizeAddress(socket.remoteAddress);
    let balancer: ProxyHeaderParser | null = this.o.jnlp.proxyProtocol ? new ProxyHeaderParser() : null;
    const over = this.o.limits.admit(socket);
    if (over) return refuseOverLimit(this.o, socket, over, { id, via: 'shared' });
    let release = () => {};
    // The per-address bound counts the agent's address, not the balancer's (all of them would share that).
    const startPreamble = (): string | null => {
      const r = this.o.limits.startPreamble(client);
      if (typeof r === 'string') return r;
      release = r;
      // A connection cut without an end or error (shutdown) still leaves its preamble; cleanup takes this off.
      socket.on('close', release);
      return null;
    };
    if (!balancer) {
      const refused = startPreamble();
      if (refused) return refuseOverLimit(this.o, socket, refused, { id, via: 'shared' });
    }
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const parser = new PreambleParser(this.o.jnlp.maxHeaderSize);
    /** The agent's address for the log line when a PROXY header gave it (the peer is then the balancer). */
    let named: string | undefined;

    const count = (outcome: Outcome) => this.o.metrics.jnlpConnections.inc({ via: 'shared', outcome });
    const refuse = (outcome: Outcome, reason: string, extra: Record<string, unknown> = {}) => {
      cleanup();
      count(outcome);
      const err = new CiEdgeError('E_JNLP_UNATTRIBUTED', [reason]);
      this.o.log.warn({ id, via: 'shared', client, code: err.code, reason, ms: Math.round(performance.now() - accepted), ...extra }, err.message);
      // No reply: the agent sees EOF, fails this protocol and tries its next one (InboundTCPConnector.connect).
      socket.destroy();
    };
    const timer = setTimeout(() => refuse('bad-preamble', `no complete preamble within ${this.o.jnlp.headerTimeout} ms`), this.o.jnlp.headerTimeout);
    let received = 0;
    const onEnd = () => {
      if (received > 0) return refuse('bad-preamble', 'closed before the preamble was complete');
      // Remoting checks the advertised port with a bare connect-and-close before it speaks (isPortVisible).
      cleanup();
      count('probe');
      this.o.log.debug({ id, via: 'shared', client }, 'port probe');
      socket.destroy();
    };
    const onError = (err: NodeJS.ErrnoException) => refuse('bad-preamble', `client error ${err.code ?? err.message} before the preamble was complete`);
    // Once the preamble is over nothing may hold this scope (an idle agent channel lives for days): every
    // listener that refers to it comes off here.
    const cleanup = () => {
      release();
      socket.off('close', release);
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
    };
    const onData = (data: Buffer) => {
      let chunk = data;
      if (balancer) {
        const h = balancer.push(chunk);
        if (h.kind === 'more') return;
        if (h.kind === 'error') return refuse('bad-preamble', h.reason);
        balancer = null;
        if (h.source !== null) {
          client = h.source;
          named = client;
        }
        const refused = startPreamble();
        if (refused) {
          cleanup();
          return refuseOverLimit(this.o, socket, refused, { id, via: 'shared', client });
        }
        chunk = h.rest;
        if (chunk.length === 0) return;
      }
      received += chunk.length;
      const r = parser.push(chunk);
      if (r.kind === 'more') return;
      if (r.kind === 'error') return refuse('bad-preamble', r.reason);
      cleanup();
      // Hold further bytes in the socket until the master's leg is connected; pipe resumes it.
      socket.pause();
      if (r.protocol === 'Ping') {
        count('ping');
        this.o.log.debug({ id, via: 'shared', client }, 'ping answered');
        socket.end(PING_REPLY, () => socket.destroy());
        return;
      }
      const proxied = r.protocol === PROXY_PROTOCOL;
      const node = proxied ? (r.headers.get('node-name') ?? null) : null;
      if (proxied && !node) return refuse('unattributed', 'JNLP4-connect-proxy preamble without Node-Name', { protocol: r.protocol });
      const who = this.o.discoveries.attribute(node, client);
      if (!who.ok) return refuse('unattributed', who.reason, { protocol: r.protocol, node });
      const route = this.o.registry.current().routes.get(who.master);
      const target = route?.endpoints.jnlp[0];
      if (!route || !target) {
        return refuse('refused', `${who.master} has no healthy agent port (${route ? route.state : 'gone'})`, { protocol: r.protocol, node, route: who.master });
      }
      splice({
        id,
        via: 'shared',
        route: who.master,
        portName: 'jnlp',
        client: socket,
        target,
        // The proxy preamble is ci-edge's; a plain protocol's opening bytes are the master's and are replayed.
        head: proxied ? r.rest : r.received,
        connectTimeout: this.o.jnlp.connectTimeout,
        registry: this.o.registry,
        log: this.o.log,
        metrics: this.o.metrics,
        accepted,
        ...(named !== undefined ? { clientAddress: named } : {}),
        fields: { protocol: r.protocol, node, attributedBy: who.by },
      });
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
  }
}
