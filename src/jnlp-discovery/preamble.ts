/**
 * The start of an agent's TCP connection, parsed byte-exactly and incrementally (bytes arrive in any split).
 *
 * Every JNLP protocol opens with `DataOutputStream.writeUTF("Protocol:<name>")` — a 2-byte big-endian length,
 * then that many bytes of Java's modified UTF-8 — which Jenkins reads back with `DataInputStream.readUTF()`
 * (jenkinsci/jenkins core/src/main/java/hudson/TcpSlaveAgentListener.java, ConnectionHandler.run).
 *
 * JNLP4-connect-proxy (jenkinsci/remoting src/main/java/org/jenkinsci/remoting/engine/JnlpProtocol4ProxyHandler.java,
 * `connect`) then writes, through a `PrintStream(out, true, UTF_8)`:
 *   `println("Node-Name: " + nodeName); println();`
 * `println` ends lines with the agent's `System.lineSeparator()`: `\n` on Unix, `\r\n` on Windows agents. It then
 * delegates at once to JnlpProtocol4Handler.connect, which writes `writeUTF("Protocol:JNLP4-connect")` and the TLS
 * handshake — so those bytes may share a packet with the blank line and must be handed on untouched.
 */

export const PROTOCOL_PREFIX = 'Protocol:';

export type PreambleResult =
  | { readonly kind: 'more' }
  | { readonly kind: 'error'; readonly reason: string }
  | {
      readonly kind: 'done';
      /** Protocol name without `Protocol:` (`JNLP4-connect-proxy`, `JNLP4-connect`, `Ping`). */
      readonly protocol: string;
      /** Proxy header lines by lower-case name (`node-name`); empty for other protocols. */
      readonly headers: ReadonlyMap<string, string>;
      /** Every byte received so far, preamble and rest, exactly as sent (replayed when a plain protocol is forwarded). */
      readonly received: Buffer;
      /** Bytes after the preamble: the start of the real protocol, forwarded unchanged. */
      readonly rest: Buffer;
    };

/**
 * Java's modified UTF-8 (java.io.DataInput): U+0000 is C0 80 and characters outside the BMP are their two
 * UTF-16 surrogates encoded as 3 bytes each. Returns null where readUTF would throw UTFDataFormatException.
 */
export function decodeModifiedUtf8(b: Uint8Array): string | null {
  const units: number[] = [];
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    if (c < 0x80) {
      units.push(c);
      i += 1;
    } else if ((c & 0xe0) === 0xc0) {
      const c2 = b[i + 1];
      if (c2 === undefined || (c2 & 0xc0) !== 0x80) return null;
      units.push(((c & 0x1f) << 6) | (c2 & 0x3f));
      i += 2;
    } else if ((c & 0xf0) === 0xe0) {
      const c2 = b[i + 1];
      const c3 = b[i + 2];
      if (c2 === undefined || c3 === undefined || (c2 & 0xc0) !== 0x80 || (c3 & 0xc0) !== 0x80) return null;
      units.push(((c & 0x0f) << 12) | ((c2 & 0x3f) << 6) | (c3 & 0x3f));
      i += 3;
    } else {
      return null;
    }
  }
  let out = '';
  for (let i = 0; i < units.length; i += 4096) out += String.fromCharCode(...units.slice(i, i + 4096));
  return out;
}

/** What `DataOutputStream.writeUTF(s)` writes, for tests and the stand-in agents. */
export function encodeWriteUtf(s: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x01 && c <= 0x7f) bytes.push(c);
    else if (c <= 0x7ff) bytes.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  if (bytes.length > 0xffff) throw new RangeError('writeUTF: encoded string longer than 65535 bytes');
  const out = Buffer.alloc(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  Buffer.from(bytes).copy(out, 2);
  return out;
}

/**
 * Feeds chunks, returns `more` until the preamble is complete. `maxBytes` bounds the preamble itself (not the
 * bytes after it that arrived in the same packet), so a client cannot make ci-edge buffer without limit.
 */
export class PreambleParser {
  private buf: Buffer = Buffer.alloc(0);
  private protocol: string | null = null;
  /** Offset where the next header line starts (after the writeUTF). */
  private lineStart = 0;
  /** Where to resume the search for `\n`, so byte-at-a-time input stays linear. */
  private scanFrom = 0;
  private readonly headers = new Map<string, string>();
  private finished: PreambleResult | null = null;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): PreambleResult {
    if (this.finished) return this.finished;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const r = this.parse();
    if (r.kind !== 'more') this.finished = r;
    return r;
  }

  private parse(): PreambleResult {
    if (this.protocol === null) {
      if (this.buf.length < 2) return { kind: 'more' };
      // Jenkins' own listener peeks for an HTTP request the same way (TcpSlaveAgentListener.respondHello).
      if (this.buf.length >= 4 && this.buf.subarray(0, 4).toString('latin1') === 'GET ') return { kind: 'error', reason: 'an HTTP request, not an agent protocol' };
      const len = this.buf.readUInt16BE(0);
      if (2 + len > this.maxBytes) return { kind: 'error', reason: `protocol name of ${len} bytes exceeds ${this.maxBytes}` };
      if (this.buf.length < 2 + len) return { kind: 'more' };
      const s = decodeModifiedUtf8(this.buf.subarray(2, 2 + len));
      if (s === null) return { kind: 'error', reason: 'protocol name is not valid modified UTF-8' };
      if (!s.startsWith(PROTOCOL_PREFIX)) return { kind: 'error', reason: `unrecognized protocol ${JSON.stringify(s.slice(0, 64))}` };
      this.protocol = s.slice(PROTOCOL_PREFIX.length);
      this.lineStart = this.scanFrom = 2 + len;
      if (this.protocol !== 'JNLP4-connect-proxy') return this.done(this.lineStart);
    }
    return this.parseHeaderLines();
  }

  private parseHeaderLines(): PreambleResult {
    for (;;) {
      const nl = this.buf.indexOf(0x0a, this.scanFrom);
      if (nl === -1) {
        this.scanFrom = this.buf.length;
        if (this.buf.length > this.maxBytes) return { kind: 'error', reason: `proxy header exceeds ${this.maxBytes} bytes` };
        return { kind: 'more' };
      }
      if (nl + 1 > this.maxBytes) return { kind: 'error', reason: `proxy header exceeds ${this.maxBytes} bytes` };
      let end = nl;
      if (end > this.lineStart && this.buf[end - 1] === 0x0d) end -= 1;
      const line = this.buf.subarray(this.lineStart, end).toString('utf8');
      this.lineStart = this.scanFrom = nl + 1;
      if (line === '') return this.done(this.lineStart);
      const colon = line.indexOf(':');
      if (colon <= 0) return { kind: 'error', reason: `malformed proxy header line ${JSON.stringify(line.slice(0, 64))}` };
      this.headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
  }

  private done(at: number): PreambleResult {
    return { kind: 'done', protocol: this.protocol!, headers: this.headers, received: this.buf, rest: this.buf.subarray(at) };
  }
}
