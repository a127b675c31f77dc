import type { Channel } from 'ssh2';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { RegistryView } from '../registry/types.js';
import { answerFor, type Answer } from './answers.js';
import type { ClientIdentity } from './auth.js';
import { printable, resolveTarget, type Naming, type Target } from './target.js';
import { connectUpstream, splice, type Splice, type TunnelLimits } from './tunnel.js';

/** What every tunnel shares: built once by the server. */
export interface TunnelRuntime {
  readonly registry: RegistryView;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly limits: TunnelLimits;
  readonly naming: Naming;
  readonly connectTimeout: number;
  readonly idleTimeout: number;
  nextId(): string;
}

export interface TunnelRequest {
  readonly via: 'exec' | 'direct-tcpip';
  /** The host as the client sent it (`master1`, `master1.ci.example.com`, `10.0.0.1`). */
  readonly target: string;
  /** direct-tcpip destination port. */
  readonly port?: number;
  /** `ip:port`, for the audit line. */
  readonly client: string;
  /** The address limits count per. */
  readonly clientAddress: string;
  readonly who: ClientIdentity;
  /** Registers an open tunnel with its connection (shutdown, idle); returns the unregister function. */
  track(s: Splice): () => void;
}

/** How the request's channel is answered: `accept` returns null if the client went away meanwhile. */
export interface TunnelSides {
  accept(): Channel | null;
  refuse(answer: Answer): void;
}

/**
 * One tunnel from request to audit line: resolve (the open-proxy guard), take a limit slot, connect,
 * splice, and log once — client, user, key, target, endpoint, bytes each way, duration, how it ended.
 * A refusal never connects anywhere.
 */
export function openTunnel(rt: TunnelRuntime, req: TunnelRequest, sides: TunnelSides): void {
  const started = Date.now();
  const audit = {
    tunnel: rt.nextId(),
    via: req.via,
    client: req.client,
    user: printable(req.who.user),
    auth: req.who.method,
    key: req.who.keyFingerprint,
    target: printable(req.target),
    ...(req.port !== undefined ? { port: req.port } : {}),
  };
  const refuse = (err: unknown, extra: Record<string, unknown> = {}) => {
    const answer = answerFor(err);
    rt.metrics.sshTunnelsRefused.inc({ reason: answer.reason });
    sides.refuse(answer);
    rt.log.info({ ...audit, ...extra, end: answer.reason, status: answer.status, message: answer.line, ms: Date.now() - started }, 'ssh tunnel refused');
  };

  let target: Target;
  let release: () => void;
  try {
    target = resolveTarget(req.target, rt.registry.current(), rt.naming, req.port);
    release = rt.limits.acquire(req.clientAddress);
  } catch (err) {
    return refuse(err);
  }
  const route = target.route.name;
  connectUpstream(route, target.endpoints, rt.connectTimeout, (ep) => rt.registry.endpointFailed(route, ep)).then(
    ({ socket, endpoint }) => {
      const ep = `${endpoint.host}:${endpoint.port}`;
      const channel = sides.accept();
      if (!channel) {
        release();
        socket.destroy();
        rt.log.info({ ...audit, route, endpoint: ep, end: 'client gone', status: null, bytesUp: 0, bytesDown: 0, ms: Date.now() - started }, 'ssh tunnel');
        return;
      }
      rt.metrics.sshTunnelsOpened.inc();
      rt.metrics.sshTunnelsOpen.inc();
      let untrack = () => {};
      const up = rt.metrics.sshBytes.labels('up');
      const down = rt.metrics.sshBytes.labels('down');
      const s = splice(channel, socket, {
        exec: req.via === 'exec',
        idleTimeout: rt.idleTimeout,
        onBytes: { up: (n) => up.inc(n), down: (n) => down.inc(n) },
        onEnd: (r) => {
          release();
          untrack();
          rt.metrics.sshTunnelsOpen.dec();
          rt.log.info(
            { ...audit, route, endpoint: ep, end: r.endedBy, status: r.status, ...(r.error ? { error: r.error } : {}), bytesUp: r.bytesUp, bytesDown: r.bytesDown, ms: Date.now() - started },
            'ssh tunnel',
          );
        },
      });
      untrack = req.track(s);
    },
    (err: unknown) => {
      release();
      refuse(err, { route });
    },
  );
}
