import type { AddressInfo } from 'node:net';
import type { Config, JnlpConfig } from '../config/types.js';
import type { HttpExtension } from '../extension.js';
import type { Logger } from '../log.js';
import type { RegistryView } from '../registry/types.js';
import type { Deps, FrontDoor } from '../service.js';
import { createAdvertiseHook } from './advertise.js';
import { createApiHandler } from './api.js';
import { DiscoveryLog } from './attribution.js';
import { Forwarders } from './forward.js';
import { AgentLimits } from './limits.js';
import { ListenerProbe } from './master-listener.js';
import { SharedPort } from './shared-port.js';

export interface JnlpDiscovery extends FrontDoor {
  /** Resolves once forwarders being opened or closed after the last registry change are done (tests). */
  settled(): Promise<void>;
  readonly discoveries: DiscoveryLog;
}

/**
 * JNLP discovery (issue #5): makes every master advertise where agents outside the cluster can really reach
 * it, live from the registry. Adds two hooks to the HTTP router (advertisement rewrite, discovery API) and
 * owns the TCP side: per-master forwarders in gateway mode, and the shared agent port.
 */
export function createJnlpDiscovery(config: Config, deps: Deps): JnlpDiscovery {
  // Replaced by reconfigure(); the forwarders and the shared port read it through the getter per connection.
  let jnlp: JnlpConfig = config.jnlp!;
  const log = deps.log.child({ component: 'jnlp' });
  let seq = 0;
  const nextId = () => `jnlp-${(++seq).toString(36)}`;
  const discoveries = new DiscoveryLog({ ttl: jnlp.discoveryTtl });
  let probe = new ListenerProbe({ ttl: jnlp.cacheTtl, timeout: jnlp.connectTimeout });
  const common = {
    get jnlp() {
      return jnlp;
    },
    registry: deps.registry,
    log,
    metrics: deps.metrics,
    nextId,
    limits: new AgentLimits(() => jnlp.limits),
  };
  const forwarders = jnlp.mode === 'gateway' ? new Forwarders(common) : null;
  // Copying the property descriptors keeps `jnlp` a getter (a spread would freeze today's value).
  const shared =
    jnlp.sharedPort !== null
      ? new SharedPort(Object.defineProperties({ port: jnlp.sharedPort, discoveries }, Object.getOwnPropertyDescriptors(common)) as typeof common & { port: number; discoveries: DiscoveryLog })
      : null;

  // Registered at construction, before the router starts, so the first request already sees them.
  const hooks: HttpExtension = {
    name: 'jnlp-discovery',
    handleRequest: createApiHandler(jnlp, deps.registry, probe, log),
    rewriteResponse: createAdvertiseHook(jnlp, discoveries, log),
  };
  discoveriesOfHooks.set(hooks, discoveries);
  deps.httpExtensions.push(hooks);

  return {
    name: 'jnlp',
    discoveries,
    async start() {
      await shared?.start();
      forwarders?.start();
    },
    async close(deadline?: number) {
      await Promise.all([forwarders?.close(deadline), shared?.close(deadline)]);
      probe.close();
    },
    /**
     * A reload that keeps the mode, the bind address and the shared port keeps every listener and agent
     * connection (agents stay connected for days): the advertised host, timeouts, limits and cache lifetimes
     * apply from the next request or connection on.
     */
    async reconfigure(next: Config) {
      const n = next.jnlp;
      if (!n || n.mode !== jnlp.mode || n.bindHost !== jnlp.bindHost || n.sharedPort !== jnlp.sharedPort) return false;
      jnlp = n;
      discoveries.setTtl(n.discoveryTtl);
      probe.close();
      probe = new ListenerProbe({ ttl: n.cacheTtl, timeout: n.connectTimeout });
      hooks.handleRequest = createApiHandler(n, deps.registry, probe, log);
      hooks.rewriteResponse = createAdvertiseHook(n, discoveries, log);
      log.info({ advertiseHost: n.advertiseHost }, 'jnlp discovery reconfigured in place');
      return true;
    },
    addresses(): Record<string, AddressInfo> {
      return { ...shared?.addresses(), ...forwarders?.addresses() };
    },
    async settled() {
      await forwarders?.settled();
    },
  };
}

/** The discovery log behind a set of router hooks, for router workers that record in this process's log. */
const discoveriesOfHooks = new WeakMap<HttpExtension, DiscoveryLog>();

export function discoveriesOf(hooks: HttpExtension): DiscoveryLog | undefined {
  return discoveriesOfHooks.get(hooks);
}

/**
 * The two router hooks alone, for a router worker process (issue #3, `http.workers`): the shared port lives in
 * the primary, so each discovery is handed to `record` (IPC to the primary's log) instead of a local log.
 */
export function createJnlpWorkerHooks(
  jnlp: JnlpConfig,
  registry: RegistryView,
  log: Logger,
  record: (node: string, address: string, master: string) => void,
): { hooks: HttpExtension; close(): void } {
  const jlog = log.child({ component: 'jnlp' });
  const probe = new ListenerProbe({ ttl: jnlp.cacheTtl, timeout: jnlp.connectTimeout });
  const forwarding = new (class extends DiscoveryLog {
    override record(node: string, address: string, master: string): void {
      record(node, address, master);
    }
  })({ ttl: jnlp.discoveryTtl });
  return {
    hooks: { name: 'jnlp-discovery', handleRequest: createApiHandler(jnlp, registry, probe, jlog), rewriteResponse: createAdvertiseHook(jnlp, forwarding, jlog) },
    close: () => probe.close(),
  };
}
