import { CiEdgeError } from '../errors.js';
import { sshTargetName } from '../registry/naming.js';
import type { Endpoint, Route, Snapshot } from '../registry/types.js';

/** What a tunnel may connect to: one master's healthy SSH endpoints, nothing else. */
export interface Target {
  readonly route: Route;
  readonly endpoints: readonly Endpoint[];
}

export interface Naming {
  readonly sshDomain: string | null;
  readonly domains: readonly string[];
}

/** The port a direct-tcpip request (`ssh -J`, `ssh -W`) must name: OpenSSH's default, see README. */
export const SSH_PORT = 22;

/**
 * Text a client sent, made safe to echo into its terminal: control characters could otherwise rewrite
 * the user's screen (terminal escape injection), and a megabyte of target name is not a useful message.
 */
export function printable(s: string): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 80 ? `${clean.slice(0, 77)}...` : clean;
}

/** The usage error, naming the domain users would type. */
export function usage(naming: Naming): CiEdgeError {
  return new CiEdgeError('E_SSH_USAGE', [naming.sshDomain ?? naming.domains[0] ?? '<domain>']);
}

/** `tunnel <host>` → the host; anything else (another command, extra words) is a usage error. */
export function parseTunnelCommand(command: string, naming: Naming): string {
  const words = command.trim().split(/\s+/);
  if (words.length !== 2 || words[0] !== 'tunnel' || !words[1]) throw usage(naming);
  return words[1];
}

/**
 * The open-proxy guard (issue #4): only a registry master's healthy SSH endpoints are reachable. A target
 * that is not a master name (an IP address, another host, a service route) is refused by name, before any
 * lookup result could tell the client what exists behind the gateway, and no connection is attempted.
 * `port` is the direct-tcpip destination port: 22, or the master's own SSH port (its endpoint or service
 * port, for users who copied it from Marathon); anything else could be the master's HTTP or agent port.
 */
export function resolveTarget(requested: string, snapshot: Snapshot, naming: Naming, port?: number): Target {
  const shown = printable(requested);
  const name = sshTargetName(requested, naming.sshDomain ?? undefined, naming.domains);
  if (name === null) throw new CiEdgeError('E_SSH_FORBIDDEN_TARGET', [shown]);
  const route = snapshot.routes.get(name);
  if (!route || route.state === 'gone') throw new CiEdgeError(snapshot.status.ready ? 'E_NO_ROUTE' : 'E_ROUTES_LOADING', [name]);
  if (route.kind !== 'master') throw new CiEdgeError('E_SSH_FORBIDDEN_TARGET', [shown]);
  const endpoints = route.endpoints.ssh;
  if (port !== undefined && port !== SSH_PORT && port !== route.servicePorts.ssh && !endpoints.some((e) => e.port === port)) {
    throw new CiEdgeError('E_SSH_FORBIDDEN_PORT', [name, port]);
  }
  if (endpoints.length === 0) {
    throw new CiEdgeError('E_NO_HEALTHY_ENDPOINT', [name, route.state === 'running' ? 'not serving SSH (no healthy ssh port)' : route.state]);
  }
  return { route, endpoints };
}
