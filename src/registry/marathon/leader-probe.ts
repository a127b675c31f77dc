/**
 * Who leads a Mesos or Marathon cluster, asked over HTTP (axios stays in this directory). Used by the
 * infrastructure services that route to the current leader.
 */
import axios from 'axios';
import { CiEdgeError } from '../../errors.js';
import { authHeader, describe } from './client.js';

export interface ProbeOptions {
  readonly timeout: number;
  readonly auth?: { readonly basic?: string; readonly token?: string } | null;
}

/** `host:port` → `{host, port}`; IPv6 keeps no brackets. */
export function splitHostPort(s: string, defaultPort: number): { host: string; port: number } {
  const u = new URL(`http://${s}`);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : defaultPort };
}

/**
 * Mesos: `GET /master/redirect` answers 307 with `Location: //<leader>:<port>/…`; older masters or proxies that
 * eat redirects are asked `GET /master/state`, whose `leader` is a libprocess PID `master@<ip>:<port>`.
 */
export async function probeMesosLeader(upstream: string, o: ProbeOptions): Promise<string> {
  const base = upstream.replace(/\/+$/, '');
  try {
    const res = await axios.get(`${base}/master/redirect`, { timeout: o.timeout, maxRedirects: 0, validateStatus: () => true, responseType: 'text' });
    const location = res.headers['location'];
    if (res.status >= 300 && res.status < 400 && typeof location === 'string') return new URL(location, base).host;
    const state = await axios.get<string>(`${base}/master/state`, { timeout: o.timeout, validateStatus: () => true, responseType: 'text', transformResponse: [(d: unknown) => d] });
    if (state.status !== 200) throw new Error(`/master/state: HTTP ${state.status}`);
    const body = JSON.parse(state.data) as { leader?: unknown; leader_info?: { hostname?: unknown; port?: unknown } };
    if (typeof body.leader === 'string' && body.leader.includes('@')) return body.leader.slice(body.leader.indexOf('@') + 1);
    const li = body.leader_info;
    if (li && typeof li.hostname === 'string' && typeof li.port === 'number') return `${li.hostname}:${li.port}`;
    throw new Error('/master/state names no leader');
  } catch (err) {
    throw new CiEdgeError('E_LEADER_UNKNOWN', ['mesos', `${base}: ${describe(err)}`], { cause: err });
  }
}

/** Marathon: `GET /v2/leader` → `{"leader":"host:port"}` (404 `{"message":"There is no leader"}`). */
export async function probeMarathonLeader(upstream: string, o: ProbeOptions): Promise<string> {
  const base = upstream.replace(/\/+$/, '');
  try {
    const res = await axios.get<string>(`${base}/v2/leader`, {
      timeout: o.timeout,
      headers: { accept: 'application/json', ...authHeader(o.auth ?? null) },
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: [(d: unknown) => d],
    });
    if (res.status !== 200) throw new Error(`/v2/leader: HTTP ${res.status} ${String(res.data).slice(0, 200)}`);
    const leader = (JSON.parse(res.data) as { leader?: unknown }).leader;
    if (typeof leader !== 'string' || leader === '') throw new Error('/v2/leader names no leader');
    return leader;
  } catch (err) {
    throw new CiEdgeError('E_LEADER_UNKNOWN', ['marathon', `${base}: ${describe(err)}`], { cause: err });
  }
}
