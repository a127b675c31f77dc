import { request } from 'node:http';
import NodeCache from 'node-cache';
import type { Endpoint, Route } from '../registry/types.js';

/** What a master's `/tcpSlaveAgentListener/` page says about itself (jenkinsci/jenkins TcpSlaveAgentListener). */
export interface ListenerInfo {
  /** 200, or 404 when the TCP agent listener is disabled. */
  readonly status: number;
  /** Base64 X.509 SubjectPublicKeyInfo of the master's RSA identity, verbatim. */
  readonly instanceIdentity: string | null;
  /** `X-Jenkins-Agent-Protocols`, split on commas, as the master lists them. */
  readonly protocols: readonly string[];
  readonly minimumVersion: string | null;
}

export interface ListenerProbeOptions {
  /** Cache lifetime (ms): identity and protocols only change with the master's configuration. */
  readonly ttl: number;
  readonly timeout: number;
}

/** The page's path on the master: Jenkins runs with `--prefix=/<name>` unless the route strips its prefix. */
export function agentListenerPath(route: Route): string {
  return `${route.stripPrefix ? '' : route.path}/tcpSlaveAgentListener/`;
}

/**
 * Reads and caches (node-cache, TTL `jnlp.cacheTtl`) what each master advertises on its agent-listener page.
 * Keyed by master and endpoint, so a master that moved is asked again; concurrent asks share one request.
 */
export class ListenerProbe {
  private readonly cache: NodeCache;
  private readonly inflight = new Map<string, Promise<ListenerInfo>>();

  constructor(private readonly o: ListenerProbeOptions) {
    const seconds = o.ttl / 1000;
    this.cache = new NodeCache({ stdTTL: seconds, checkperiod: Math.max(1, Math.ceil(seconds)), useClones: false });
  }

  async get(route: Route, endpoint: Endpoint): Promise<ListenerInfo> {
    const key = `${route.name}@${endpoint.host}:${endpoint.port}`;
    const hit = this.cache.get<ListenerInfo>(key);
    if (hit) return hit;
    let p = this.inflight.get(key);
    if (!p) {
      p = fetchListenerInfo(endpoint, agentListenerPath(route), this.o.timeout).then(
        (info) => {
          // A 404 (listener disabled) is remembered too: it only changes when an admin flips the setting.
          if (info.status === 200 || info.status === 404) this.cache.set(key, info);
          return info;
        },
      );
      p.finally(() => this.inflight.delete(key)).catch(() => undefined);
      this.inflight.set(key, p);
    }
    return p;
  }

  close(): void {
    this.cache.close();
  }
}

function fetchListenerInfo(endpoint: Endpoint, path: string, timeout: number): Promise<ListenerInfo> {
  return new Promise((resolve, reject) => {
    const req = request({ host: endpoint.host, port: endpoint.port, path, method: 'GET', timeout, agent: false }, (res) => {
      res.resume();
      const one = (name: string) => {
        const v = res.headers[name];
        return (Array.isArray(v) ? v[0] : v) ?? null;
      };
      resolve({
        status: res.statusCode ?? 0,
        instanceIdentity: one('x-instance-identity'),
        protocols: (one('x-jenkins-agent-protocols') ?? '').split(',').map((s) => s.trim()).filter(Boolean),
        minimumVersion: one('x-remoting-minimum-version'),
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeout} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
}
