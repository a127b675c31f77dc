import { isIP, type Socket } from 'node:net';
import { normalizeAddress } from './client-address.js';

/**
 * The PROXY protocol header a TCP load balancer puts before the client's bytes (HAProxy's spec, "The PROXY
 * protocol", versions 1 and 2; AWS ELB and NLB, HAProxy `send-proxy`), read incrementally and byte-exactly:
 * what follows it is the client's and is handed on untouched. With `jnlp.proxyProtocol` (the shared agent port)
 * or `ssh.proxyProtocol` it must come first (the spec forbids guessing whether it is there), and the client's
 * address is taken from it.
 */
export type ProxyHeaderResult =
  | { readonly kind: 'more' }
  | { readonly kind: 'error'; readonly reason: string }
  /** `source` is null for a header that carries no client (v1 UNKNOWN, v2 LOCAL: the balancer's own checks). */
  | { readonly kind: 'done'; readonly source: string | null; readonly rest: Buffer };

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** v1's longest line, CRLF included (the spec's 107 bytes). */
const V1_MAX = 107;
/** v2's address block and TLVs; AWS adds a few TLVs (VPC endpoint id), far below this. */
const V2_MAX_LENGTH = 4096;

export class ProxyHeaderParser {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): ProxyHeaderResult {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const b = this.buf;
    // Until the first bytes tell the versions apart, they must still begin one of the signatures.
    const maybeV2 = opensLike(b, V2_SIGNATURE);
    if (!maybeV2 && !opensLike(b, V1_PREFIX)) return { kind: 'error', reason: 'no PROXY protocol header' };
    if (maybeV2) return b.length < V2_SIGNATURE.length ? { kind: 'more' } : this.v2();
    return this.v1();
  }

  private v1(): ProxyHeaderResult {
    const b = this.buf;
    const end = b.indexOf('\r\n', 0, 'latin1');
    if (end === -1) return b.length >= V1_MAX ? { kind: 'error', reason: `PROXY v1 line longer than ${V1_MAX} bytes` } : { kind: 'more' };
    if (end + 2 > V1_MAX) return { kind: 'error', reason: `PROXY v1 line longer than ${V1_MAX} bytes` };
    const line = b.subarray(0, end).toString('latin1');
    const rest = b.subarray(end + 2);
    const [, proto, src, dst, sport, dport, extra] = line.split(' ');
    if (proto === 'UNKNOWN') return { kind: 'done', source: null, rest };
    const family = proto === 'TCP4' ? 4 : proto === 'TCP6' ? 6 : 0;
    const port = (p: string | undefined) => p !== undefined && /^\d{1,5}$/.test(p) && Number(p) <= 65535;
    if (family === 0 || extra !== undefined || isIP(src ?? '') !== family || isIP(dst ?? '') !== family || !port(sport) || !port(dport)) {
      return { kind: 'error', reason: `malformed PROXY v1 line ${JSON.stringify(line.slice(0, 64))}` };
    }
    return { kind: 'done', source: normalizeAddress(src), rest };
  }

  private v2(): ProxyHeaderResult {
    const b = this.buf;
    if (b.length < 16) return { kind: 'more' };
    const verCmd = b[12]!;
    const famProto = b[13]!;
    const length = b.readUInt16BE(14);
    if (verCmd >> 4 !== 2) return { kind: 'error', reason: `PROXY v2 header of version ${verCmd >> 4}` };
    if (length > V2_MAX_LENGTH) return { kind: 'error', reason: `PROXY v2 header of ${length} bytes` };
    if (b.length < 16 + length) return { kind: 'more' };
    const rest = b.subarray(16 + length);
    const command = verCmd & 0x0f;
    if (command === 0x0) return { kind: 'done', source: null, rest };
    if (command !== 0x1) return { kind: 'error', reason: `PROXY v2 command ${command}` };
    const family = famProto >> 4;
    const body = b.subarray(16, 16 + length);
    if (family === 0x1 && body.length >= 12) return { kind: 'done', source: Array.from(body.subarray(0, 4)).join('.'), rest };
    if (family === 0x2 && body.length >= 36) return { kind: 'done', source: normalizeAddress(ipv6(body.subarray(0, 16))), rest };
    // AF_UNSPEC or AF_UNIX: no IP client; the spec says to use the connection's own address then.
    if (family === 0x0 || family === 0x3) return { kind: 'done', source: null, rest };
    return { kind: 'error', reason: `PROXY v2 address family ${family} with ${length} bytes` };
  }
}

/** Whether `b` and `signature` agree over their common length. */
function opensLike(b: Buffer, signature: Buffer): boolean {
  const n = Math.min(b.length, signature.length);
  return b.subarray(0, n).equals(signature.subarray(0, n));
}

/** 16 bytes as a compressed IPv6 address (`2001:db8::7`), the form sockets report. */
function ipv6(b: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  // The longest run of zero groups (two or more) becomes "::" (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best === -1) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/**
 * Reads a socket's PROXY header, then hands the socket over paused with the bytes after the header put back
 * (`unshift`), for a consumer that attaches its own reader (ssh2). `done` gets the client's address (null when the
 * header names none), or why there is no header.
 */
export function readProxyHeader(socket: Socket, done: (r: { ok: true; source: string | null } | { ok: false; reason: string }) => void): void {
  const parser = new ProxyHeaderParser();
  const stop = () => {
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('error', onError);
  };
  const onData = (chunk: Buffer) => {
    const r = parser.push(chunk);
    if (r.kind === 'more') return;
    stop();
    socket.pause();
    if (r.kind === 'error') return done({ ok: false, reason: r.reason });
    if (r.rest.length > 0) socket.unshift(r.rest);
    done({ ok: true, source: r.source });
  };
  const onEnd = () => {
    stop();
    done({ ok: false, reason: 'closed before its PROXY header was complete' });
  };
  // Nothing else listens yet: an unheard reset here would be thrown.
  const onError = (err: NodeJS.ErrnoException) => {
    stop();
    done({ ok: false, reason: `client error ${err.code ?? err.message} before its PROXY header was complete` });
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('error', onError);
}
