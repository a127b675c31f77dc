import { BlockList, isIP } from 'node:net';

/** `::ffff:10.0.0.1` (an IPv4 client on a dual-stack socket) is the same client as `10.0.0.1`. */
export function normalizeAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** Whether `s` is an address or a CIDR block (`10.0.0.0/8`, `fd00::/8`) that `http.trustedProxies` accepts. */
export function isAddressOrBlock(s: string): boolean {
  const [addr, bits, extra] = s.split('/');
  const family = isIP(addr ?? '');
  if (family === 0 || extra !== undefined) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d+$/.test(bits) && n <= (family === 4 ? 32 : 128);
}

/**
 * Who a request came from (`http.trustedProxies`, nginx's `set_real_ip_from` with `real_ip_recursive on`):
 * the peer; or, when the peer is a trusted proxy (a load balancer in front of ci-edge), the rightmost
 * X-Forwarded-For entry that is not itself trusted. The leftmost entries are whatever the client wrote, so
 * only entries added by trusted hops are believed. With no trusted proxies (the default) it is the peer.
 *
 * Used for the access log's `client` and for the JNLP discovery log, whose client address must match the one
 * the agent's TCP connection comes from (an ALB adds X-Forwarded-For; an NLB keeps the client's address).
 */
export class ClientAddresses {
  private readonly trusted: BlockList | null;

  constructor(blocks: readonly string[]) {
    if (blocks.length === 0) {
      this.trusted = null;
      return;
    }
    const list = new BlockList();
    for (const b of blocks) {
      const [addr, bits] = b.split('/') as [string, string | undefined];
      const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) list.addAddress(addr, type);
      else list.addSubnet(addr, Number(bits), type);
    }
    this.trusted = list;
  }

  /** Whether a client address can depend on the request's headers (a peer that is a trusted proxy). */
  isTrusted(address: string): boolean {
    const family = isIP(address);
    return this.trusted !== null && family !== 0 && this.trusted.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }

  /** The client of a request from `peer` carrying `forwardedFor` (X-Forwarded-For, possibly repeated). */
  of(peer: string | undefined, forwardedFor: string | readonly string[] | undefined): string {
    const p = normalizeAddress(peer);
    if (this.trusted === null || forwardedFor === undefined || !this.isTrusted(p)) return p;
    const hops = (typeof forwardedFor === 'string' ? forwardedFor : forwardedFor.join(',')).split(',');
    let client = p;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normalizeAddress(stripPort(hops[i]!.trim()));
      if (isIP(hop) === 0) break;
      client = hop;
      if (!this.isTrusted(hop)) break;
    }
    return client;
  }
}

/** `1.2.3.4:5678` and `[fd00::1]:443` as some balancers write them; a bare IPv6 address has colons too. */
function stripPort(hop: string): string {
  if (hop.startsWith('[')) {
    const close = hop.indexOf(']');
    return hop.slice(1, close === -1 ? undefined : close);
  }
  const colon = hop.indexOf(':');
  return colon !== -1 && colon === hop.lastIndexOf(':') ? hop.slice(0, colon) : hop;
}

const byList = new WeakMap<readonly string[], ClientAddresses>();

/** One ClientAddresses per configured list: a reload's new configuration brings a new list, and a new one. */
export function clientAddressesOf(trustedProxies: readonly string[]): ClientAddresses {
  let c = byList.get(trustedProxies);
  if (!c) byList.set(trustedProxies, (c = new ClientAddresses(trustedProxies)));
  return c;
}
