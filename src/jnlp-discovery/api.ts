import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JnlpConfig } from '../config/types.js';
import { CiEdgeError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { RegistryView, Route } from '../registry/types.js';
import { PROXY_PROTOCOL } from './advertise.js';
import type { ListenerProbe } from './master-listener.js';
import { hostPort, isReachable, reachableAgentEndpoint } from './reachable.js';

export const API_PREFIX = '/_ci-edge/jnlp/';

/** The discovery document (issue #5 §3): everything an agent needs, `tunnel` being what to pass to `-tunnel`. */
export interface AgentDiscovery {
  readonly name: string;
  readonly state: Route['state'];
  readonly host: string;
  readonly port: number;
  readonly protocols: readonly string[];
  readonly instanceIdentity: string | null;
  readonly tunnel: string;
}

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

function failure(status: number, name: string, code: ErrorCode, args: unknown[], extra: Record<string, unknown> = {}): Answer {
  const err = new CiEdgeError(code, args);
  return { status, body: { name, ...extra, code: err.code, reason: err.message } };
}

/** Builds the answer for one master; never throws (a failed probe is a 503 with its reason). */
export async function describeMaster(name: string, registry: RegistryView, probe: ListenerProbe, jnlp: JnlpConfig): Promise<Answer> {
  const snapshot = registry.current();
  const route = snapshot.routes.get(name);
  // Before the first sync a name may just not be loaded yet: 503 keeps agents and scripts polling.
  if (!route && !snapshot.status.ready) return failure(503, name, 'E_ROUTES_LOADING', [name]);
  if (!route || route.kind !== 'master') return failure(404, name, 'E_NO_ROUTE', [name]);
  const state = { state: route.state, ...(route.detail ? { detail: route.detail } : {}) };
  const http = route.endpoints.http[0];
  // Agents poll while a master is down; 503 tells them (and scripts) to come back, 404 that it does not exist.
  if (route.state !== 'running' || !http) return failure(503, name, 'E_NO_HEALTHY_ENDPOINT', [name, route.detail ?? route.state], state);
  const target = reachableAgentEndpoint(route, jnlp);
  if (!isReachable(target)) return failure(503, name, 'E_JNLP_NO_ENDPOINT', [name, target.reason], state);
  let info;
  try {
    info = await probe.get(route, http);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const upstream = hostPort(http.host, http.port);
    if (code === 'ETIMEDOUT') return failure(503, name, 'E_UPSTREAM_TIMEOUT', [upstream], state);
    if (code === 'ECONNREFUSED') return failure(503, name, 'E_UPSTREAM_REFUSED', [upstream], state);
    return failure(503, name, 'E_UPSTREAM_RESET', [upstream], state);
  }
  if (info.status === 404) return failure(404, name, 'E_JNLP_DISABLED', [name], state);
  if (info.status !== 200) return failure(503, name, 'E_NO_HEALTHY_ENDPOINT', [name, `answering ${info.status}`], state);
  const protocols = target.via === 'shared' && !info.protocols.includes(PROXY_PROTOCOL) ? [PROXY_PROTOCOL, ...info.protocols] : info.protocols;
  const doc: AgentDiscovery = {
    name,
    state: route.state,
    host: target.host,
    port: target.port,
    protocols,
    instanceIdentity: info.instanceIdentity,
    tunnel: hostPort(target.host, target.port),
  };
  return { status: 200, body: doc };
}

/** The router hook: `GET /_ci-edge/jnlp/<name>` on the public listener. */
export function createApiHandler(jnlp: JnlpConfig, registry: RegistryView, probe: ListenerProbe, log: Logger) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url ?? '/';
    if (!url.startsWith(API_PREFIX)) return false;
    const started = Date.now();
    const name = safeName(url.slice(API_PREFIX.length).split('?')[0]!.replace(/\/$/, ''));
    const send = (a: Answer) => {
      const body = JSON.stringify(a.body);
      res.writeHead(a.status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      log.info({ route: name, path: API_PREFIX, status: a.status, ms: Date.now() - started }, 'jnlp discovery api');
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(failure(405, name, 'E_BAD_REQUEST', [`${req.method ?? ''} is not allowed here`]));
      return true;
    }
    void describeMaster(name, registry, probe, jnlp).then(send, (err: unknown) => {
      log.error({ err, route: name }, 'jnlp discovery api failed');
      send({ status: 500, body: { name, reason: 'internal error' } });
    });
    return true;
  };
}

function safeName(raw: string): string {
  try {
    return decodeURIComponent(raw).toLowerCase();
  } catch {
    return raw.toLowerCase();
  }
}
