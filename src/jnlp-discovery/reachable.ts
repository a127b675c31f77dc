import type { JnlpConfig } from '../config/types.js';
import type { PortName, Route } from '../registry/types.js';

/** Where an agent outside the cluster can open its TCP connection to a master (issue #5). */
export interface ReachableEndpoint {
  readonly host: string;
  readonly port: number;
  /** `direct`: the task's host port; `gateway`: ci-edge's per-master forwarder; `shared`: ci-edge's one agent port. */
  readonly via: 'direct' | 'gateway' | 'shared';
}

/** The answer when there is none, with a reason for logs and the JSON API. */
export interface Unreachable {
  readonly reason: string;
}

/**
 * The stable port ci-edge listens on for this master's port: the Marathon servicePort of that port mapping
 * (marathon-lb's convention), else the `ci-edge.<port>.port` label. The registry already folds the label into
 * `servicePorts`; reading the label here too keeps a static route's label working on its own.
 */
export function stablePort(route: Route, portName: PortName): number | undefined {
  const fromMarathon = route.servicePorts[portName];
  if (fromMarathon !== undefined && fromMarathon > 0) return fromMarathon;
  const label = route.labels[`ci-edge.${portName}.port`];
  if (label === undefined || !/^\d{1,5}$/.test(label.trim())) return undefined;
  const n = Number(label.trim());
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** The agent endpoint to advertise for a master, by `jnlp.mode` and `jnlp.sharedPort`. */
export function reachableAgentEndpoint(route: Route, jnlp: JnlpConfig): ReachableEndpoint | Unreachable {
  // The shared port serves every master, so it wins over the per-master modes (schema requires advertiseHost).
  if (jnlp.sharedPort !== null && jnlp.advertiseHost) return { host: jnlp.advertiseHost, port: jnlp.sharedPort, via: 'shared' };
  if (jnlp.mode === 'gateway') {
    const port = stablePort(route, 'jnlp');
    if (port === undefined) return { reason: 'no servicePort for its jnlp port and no ci-edge.jnlp.port label' };
    if (!jnlp.advertiseHost) return { reason: 'jnlp.advertiseHost is not set' };
    return { host: jnlp.advertiseHost, port, via: 'gateway' };
  }
  const ep = route.endpoints.jnlp[0];
  if (!ep) return { reason: route.state === 'running' ? 'no healthy task exposes a jnlp port' : `master is ${route.state}` };
  return { host: ep.host, port: ep.port, via: 'direct' };
}

/**
 * Where `jenkins-cli -ssh` can reach the master's own SSH server: in gateway mode ci-edge's forwarder on the
 * ssh servicePort when the app has one, else the task's host and mapped host port.
 */
export function reachableSshEndpoint(route: Route, jnlp: JnlpConfig): ReachableEndpoint | null {
  if (jnlp.mode === 'gateway' && jnlp.advertiseHost) {
    const port = stablePort(route, 'ssh');
    if (port !== undefined) return { host: jnlp.advertiseHost, port, via: 'gateway' };
  }
  const ep = route.endpoints.ssh[0];
  return ep ? { host: ep.host, port: ep.port, via: 'direct' } : null;
}

export function isReachable(e: ReachableEndpoint | Unreachable | null): e is ReachableEndpoint {
  return e !== null && 'host' in e;
}

/** `host:port`, bracketing IPv6 literals (what `-tunnel` and X-SSH-Endpoint expect). */
export function hostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}
