/**
 * Which master an agent discovered through ci-edge, so the shared agent port can route its TCP connection
 * (issue #5 §4). An agent always GETs `<master>/tcpSlaveAgentListener/` (sending `Node-Name`) right before it
 * connects (remoting JnlpAgentEndpointResolver.resolve, then InboundTCPConnector.connect), so the last
 * discovery by (node name, client address) names the master. Two agents may share a node name on two masters
 * (every master has its own `agent1`): the client address tells them apart.
 */
import { normalizeAddress } from '../client-address.js';

export type Attribution =
  | { readonly ok: true; readonly master: string; readonly by: 'node-and-address' | 'node-name' | 'address' }
  | { readonly ok: false; readonly reason: string };

interface Entry {
  readonly node: string;
  readonly address: string;
  readonly master: string;
  readonly at: number;
}

export interface DiscoveryLogOptions {
  /** How long a discovery is remembered (ms). */
  readonly ttl: number;
  /** Bound on remembered discoveries; the oldest go first. 2000 masters × 100 agents fits the default. */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

const DEFAULT_MAX_ENTRIES = 200_000;


export class DiscoveryLog {
  private readonly entries = new Map<string, Entry>();
  private readonly byNode = new Map<string, Set<string>>();
  private readonly byAddress = new Map<string, Set<string>>();
  private ttl: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(opts: DiscoveryLogOptions) {
    this.ttl = opts.ttl;
    this.maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.now = opts.now ?? Date.now;
  }

  /** A reload's new `jnlp.discoveryTtl`; what is recorded stays. */
  setTtl(ttl: number): void {
    this.ttl = ttl;
  }

  get size(): number {
    return this.entries.size;
  }

  record(node: string, address: string, master: string): void {
    const addr = normalizeAddress(address);
    const key = `${node}\n${addr}`;
    // Delete first so Map order stays oldest-first for eviction.
    this.delete(key);
    const entry: Entry = { node, address: addr, master, at: this.now() };
    this.entries.set(key, entry);
    index(this.byNode, node, key);
    index(this.byAddress, addr, key);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.delete(oldest);
    }
  }

  /**
   * JNLP4-connect-proxy names its node: the exact (node, address) discovery wins; else, when every live
   * discovery of that node name points at one master (the agent's HTTP and TCP paths leave by different NAT
   * addresses), that master. Anything else is ambiguous and refused rather than guessed.
   */
  attribute(node: string | null, address: string): Attribution {
    const addr = normalizeAddress(address);
    if (node === null) return this.byAddressOnly(addr);
    const exact = this.live(`${node}\n${addr}`);
    if (exact) return { ok: true, master: exact.master, by: 'node-and-address' };
    const masters = this.mastersOf(this.byNode.get(node));
    if (masters.size === 1) return { ok: true, master: [...masters][0]!, by: 'node-name' };
    if (masters.size === 0) return { ok: false, reason: `agent "${node}" from ${addr} never discovered a master through ci-edge` };
    return { ok: false, reason: `agent "${node}" from ${addr} is known on several masters (${[...masters].sort().join(', ')})` };
  }

  /** Plain protocols (an agent older than JNLP4-connect-proxy) carry no name: only an unambiguous address routes. */
  private byAddressOnly(addr: string): Attribution {
    const masters = this.mastersOf(this.byAddress.get(addr));
    if (masters.size === 1) return { ok: true, master: [...masters][0]!, by: 'address' };
    if (masters.size === 0) return { ok: false, reason: `no agent from ${addr} discovered a master through ci-edge` };
    return { ok: false, reason: `agents from ${addr} discovered several masters (${[...masters].sort().join(', ')})` };
  }

  private mastersOf(keys: Set<string> | undefined): Set<string> {
    const masters = new Set<string>();
    for (const key of [...(keys ?? [])]) {
      const e = this.live(key);
      if (e) masters.add(e.master);
    }
    return masters;
  }

  private live(key: string): Entry | undefined {
    const e = this.entries.get(key);
    if (e && this.now() - e.at > this.ttl) {
      this.delete(key);
      return undefined;
    }
    return e;
  }

  private delete(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    unindex(this.byNode, e.node, key);
    unindex(this.byAddress, e.address, key);
  }
}

function index(m: Map<string, Set<string>>, k: string, key: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(key);
}

function unindex(m: Map<string, Set<string>>, k: string, key: string): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(key);
  if (s.size === 0) m.delete(k);
}
