import type { IncomingHttpHeaders } from 'node:http';

/**
 * HTTP/1.1 on the wire for the fast lane (fast-lane.ts): a request-head parser that accepts only a strict,
 * common subset and says "not mine" for everything else (Node's llhttp then decides, with every rejection
 * the security tests pin), a response-head parser, and a tracker that finds where a chunked body ends
 * without decoding it. Heads are read as latin1, so every byte round-trips unchanged.
 */

export const HEAD_END = Buffer.from('\r\n\r\n');

/** tchar of RFC 9110 §5.6.2: what a header name (and a method) may contain. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

/**
 * Requests the fast lane hands to Node instead: a body or its framing (`content-length`, `transfer-encoding`,
 * `expect`), protocol switches (`upgrade`, `http2-settings`). Duplicated names are handed over too, so Node's
 * own merging rules (and its rejection of a second Host) stay the only ones.
 */
const NOT_IN_LANE = new Set(['content-length', 'transfer-encoding', 'expect', 'upgrade', 'http2-settings', '__proto__']);

export interface RequestHead {
  readonly method: 'GET' | 'HEAD';
  /** Origin-form request target (`/master1/job/x?y=1`). */
  readonly url: string;
  /** Lower-cased names, own properties only (read them as such: the object has Object's prototype). */
  readonly headers: IncomingHttpHeaders;
  /** The client asked to close after this response (`Connection: close`). */
  readonly close: boolean;
}

/**
 * Parses `head` (the bytes before the blank line, as latin1) when it is a bodyless GET or HEAD in HTTP/1.1
 * origin form with well-formed, distinct header fields and a Host; null otherwise (not an error: Node decides).
 */
export function parseRequestHead(head: string): RequestHead | null {
  const sp1 = head.indexOf(' ');
  const method = head.slice(0, sp1);
  if (method !== 'GET' && method !== 'HEAD') return null;
  const sp2 = head.indexOf(' ', sp1 + 1);
  const eol = head.indexOf('\r\n', sp2 + 1);
  if (sp2 === -1 || eol === -1 || head.charCodeAt(sp1 + 1) !== 47 /* / */) return null;
  for (let i = sp1 + 1; i < sp2; i++) {
    const c = head.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return null;
  }
  if (eol - sp2 !== 9 || !head.startsWith('HTTP/1.1', sp2 + 1)) return null;
  // A plain object, as in parseResponseHead (fast mode); `__proto__` and repeated names go to Node.
  const headers: IncomingHttpHeaders & Record<string, string> = {};
  const ok = scanFields(head, eol + 2, (name, value) => {
    if (NOT_IN_LANE.has(name) || Object.hasOwn(headers, name)) return false;
    headers[name] = value;
    return true;
  });
  if (!ok || headers.host === undefined || headers.host === '') return null;
  const connection = headers.connection;
  if (connection !== undefined && hasToken(connection, 'upgrade')) return null;
  const close = connection !== undefined && hasToken(connection, 'close');
  return { method, url: head.slice(sp1 + 1, sp2), headers, close };
}

/**
 * Calls `field(name, value)` for each header line from `from` to the end of `head`: lines split on CRLF,
 * names tchar only and lower-cased, values OWS-trimmed and free of control characters (HTAB allowed), no
 * obs-fold. False when a line is outside that or `field` refuses it.
 */
function scanFields(head: string, from: number, field: (name: string, value: string) => boolean): boolean {
  let pos = from;
  const end = head.length;
  while (pos < end) {
    let next = head.indexOf('\r\n', pos);
    if (next === -1) next = end;
    const colon = head.indexOf(':', pos);
    if (colon <= pos || colon >= next) return false;
    for (let i = pos; i < colon; i++) {
      const c = head.charCodeAt(i);
      if (c >= 128 || TCHAR[c] !== 1) return false;
    }
    let vs = colon + 1;
    let ve = next;
    while (vs < ve && isOws(head.charCodeAt(vs))) vs++;
    while (ve > vs && isOws(head.charCodeAt(ve - 1))) ve--;
    for (let i = vs; i < ve; i++) {
      const c = head.charCodeAt(i);
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) return false;
    }
    if (!field(head.slice(pos, colon).toLowerCase(), head.slice(vs, ve))) return false;
    pos = next + 2;
  }
  return true;
}

/** Whether the comma list `list` has `token` (lower case) as one of its elements, not just as a substring. */
export function hasToken(list: string, token: string): boolean {
  const lower = list.toLowerCase();
  if (!lower.includes(token)) return false;
  for (const t of lower.split(',')) if (t.trim() === token) return true;
  return false;
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** How the end of a response body is found (RFC 9112 §6.3). */
export type Framing = 'none' | 'length' | 'chunked' | 'close';

export interface ResponseHead {
  readonly status: number;
  readonly reason: string;
  /** Lower-cased own properties; `set-cookie` as an array, other repeats joined with ", " (Node's rules). */
  readonly headers: IncomingHttpHeaders;
  readonly framing: Framing;
  /** Body length when `framing` is `length`. */
  readonly length: number;
  /** The backend keeps the connection open after this response. */
  readonly keepAlive: boolean;
}

/** Why an upstream response head was refused (logged; the client gets a 502). */
export class BadResponse extends Error {}

/**
 * Parses an upstream response head (bytes before the blank line, latin1). `headRequest` and the status decide
 * whether a body follows. Throws BadResponse on anything a proxy must not pass on: a broken status line,
 * malformed fields, conflicting Content-Length, a Transfer-Encoding other than chunked.
 */
export function parseResponseHead(head: string, headRequest: boolean): ResponseHead {
  const eol0 = head.indexOf('\r\n');
  const line = eol0 === -1 ? head : head.slice(0, eol0);
  const m = /^HTTP\/1\.([01]) (\d{3})(?: ([^\r\n]*))?$/.exec(line);
  if (!m) throw new BadResponse(`bad status line ${JSON.stringify(line.slice(0, 80))}`);
  const http11 = m[1] === '1';
  const status = Number(m[2]);
  if (status < 100) throw new BadResponse(`bad status ${status}`);
  // A plain object (V8 keeps it in fast mode; a null-prototype one starts as a dictionary and cost 40 % of
  // this parse): own-property checks keep inherited names out, and `__proto__` is refused.
  const headers: IncomingHttpHeaders = {};
  let lengthValue: string | undefined;
  const ok = scanFields(head, eol0 === -1 ? head.length : eol0 + 2, (name, value) => {
    if (name === '__proto__') throw new BadResponse('a header named __proto__');
    if (name === 'content-length') {
      if (!/^\d{1,15}$/.test(value) || (lengthValue !== undefined && lengthValue !== value)) throw new BadResponse('bad or conflicting content-length');
      lengthValue = value;
      headers[name] = value;
    } else if (name === 'set-cookie') {
      (headers['set-cookie'] ??= []).push(value);
    } else {
      headers[name] = Object.hasOwn(headers, name) ? `${headers[name] as string}, ${value}` : value;
    }
    return true;
  });
  if (!ok) throw new BadResponse('malformed header field');
  const connection = (headers.connection as string | undefined) ?? '';
  let keepAlive = http11 ? !hasToken(connection, 'close') : hasToken(connection, 'keep-alive');
  const te = headers['transfer-encoding'] as string | undefined;
  // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means its framing is faulty.
  if (te !== undefined && !http11) throw new BadResponse('transfer-encoding in an HTTP/1.0 response');
  let framing: Framing;
  let length = 0;
  if (headRequest || status < 200 || status === 204 || status === 304) {
    framing = 'none';
  } else if (te !== undefined) {
    if (te.trim().toLowerCase() !== 'chunked') throw new BadResponse(`unsupported transfer-encoding ${JSON.stringify(te)}`);
    // Chunked wins over a Content-Length (RFC 9112 §6.3 rule 3); the length is a lie and must not reach the client.
    delete headers['content-length'];
    framing = 'chunked';
  } else if (lengthValue !== undefined) {
    framing = 'length';
    length = Number(lengthValue);
  } else {
    framing = 'close';
    keepAlive = false;
  }
  return { status, reason: m[3] ?? '', headers, framing, length, keepAlive };
}

const enum Chunk {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  Trailer,
  EndLf,
  Done,
}

/**
 * Follows a chunked body as it streams through, without changing a byte, to know where it ends (so the
 * backend connection can be reused) and how many payload bytes it carried. Strict CRLF, as llhttp.
 */
export class ChunkedTracker {
  private state = Chunk.Size;
  private remaining = 0;
  private digits = 0;
  /** Payload bytes (without the chunk framing). */
  payload = 0;

  /** Consumes `buf` from `start`; returns the index just past the body's end, or -1 when it needs more. */
  feed(buf: Buffer, start: number): number {
    let i = start;
    const n = buf.length;
    while (i < n) {
      switch (this.state) {
        case Chunk.Size: {
          const c = buf[i]!;
          const v = hexValue(c);
          if (v >= 0) {
            if (++this.digits > 12) throw new BadResponse('chunk size too large');
            this.remaining = this.remaining * 16 + v;
          } else if (this.digits === 0) {
            throw new BadResponse('bad chunk size');
          } else if (c === 0x0d) {
            this.state = Chunk.SizeLf;
          } else if (c === 0x3b /* ; */ || c === 0x20 || c === 0x09) {
            this.state = Chunk.Ext;
          } else {
            throw new BadResponse('bad chunk size');
          }
          i++;
          break;
        }
        case Chunk.Ext: {
          const cr = buf.indexOf(0x0d, i);
          if (cr === -1) return -1;
          i = cr + 1;
          this.state = Chunk.SizeLf;
          break;
        }
        case Chunk.SizeLf:
          if (buf[i++] !== 0x0a) throw new BadResponse('bad chunk line end');
          this.digits = 0;
          this.state = this.remaining === 0 ? Chunk.TrailerStart : Chunk.Data;
          break;
        case Chunk.Data: {
          const take = Math.min(this.remaining, n - i);
          i += take;
          this.remaining -= take;
          this.payload += take;
          if (this.remaining === 0) this.state = Chunk.DataCr;
          break;
        }
        case Chunk.DataCr:
          if (buf[i++] !== 0x0d) throw new BadResponse('chunk data overruns its size');
          this.state = Chunk.DataLf;
          break;
        case Chunk.DataLf:
          if (buf[i++] !== 0x0a) throw new BadResponse('chunk data overruns its size');
          this.state = Chunk.Size;
          break;
        case Chunk.TrailerStart:
          this.state = buf[i] === 0x0d ? Chunk.EndLf : Chunk.Trailer;
          i++;
          break;
        case Chunk.Trailer: {
          const lf = buf.indexOf(0x0a, i);
          if (lf === -1) return -1;
          i = lf + 1;
          this.state = Chunk.TrailerStart;
          break;
        }
        case Chunk.EndLf:
          if (buf[i++] !== 0x0a) throw new BadResponse('bad end of chunked body');
          this.state = Chunk.Done;
          return i;
        case Chunk.Done:
          return i;
      }
    }
    return -1;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** Serializes a head: `start` line, then each header (arrays as repeated fields), then the blank line. */
export function serializeHead(start: string, headers: Record<string, string | string[] | number | undefined>): Buffer {
  let s = `${start}\r\n`;
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const one of v) s += `${k}: ${one}\r\n`;
    else s += `${k}: ${v}\r\n`;
  }
  return Buffer.from(`${s}\r\n`, 'latin1');
}
