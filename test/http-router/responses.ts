/**
 * Reading HTTP/1.1 responses off a raw connection (plain or TLS), for the router tests that must see which
 * path answered and that a connection is reused: exact bytes, chunked bodies decoded.
 */

/** A complete response as a client reads it off the wire. */
export interface Res {
  readonly status: number;
  /** Status line and header lines as sent (latin1). */
  readonly head: string;
  /** Lower-cased names; repeats joined with ", ". */
  readonly headers: Record<string, string>;
  /** The payload (chunked bodies decoded), latin1. */
  readonly body: string;
  /** Trailer lines of a chunked body (latin1, CRLF-separated, '' when none). */
  readonly trailers: string;
  /** The body bytes exactly as they came (chunk framing included). */
  readonly rawBody: string;
}

/** One response from the front of `buf`, or null while incomplete. `closed`: the server has closed. */
export function parseResponse(buf: Buffer, headRequest: boolean, closed: boolean): { res: Res; used: number } | null {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return null;
  const head = buf.toString('latin1', 0, end);
  const lines = head.split('\r\n');
  const status = Number(lines[0]!.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const start = end + 4;
  const done = (body: string, trailers: string, used: number) => ({ res: { status, head, headers, body, trailers, rawBody: buf.toString('latin1', start, used) }, used });
  if (headRequest || status < 200 || status === 204 || status === 304) return done('', '', start);
  if ((headers['transfer-encoding'] ?? '').toLowerCase() === 'chunked') {
    let pos = start;
    let body = '';
    for (let guard = 0; guard < 100_000; guard++) {
      const eol = buf.indexOf('\r\n', pos);
      if (eol === -1) return null;
      const size = parseInt(buf.toString('latin1', pos, eol).split(';')[0]!, 16);
      if (size === 0) {
        if (buf.length < eol + 4) return null;
        if (buf[eol + 2] === 0x0d && buf[eol + 3] === 0x0a) return done(body, '', eol + 4);
        const tEnd = buf.indexOf('\r\n\r\n', eol + 2);
        if (tEnd === -1) return null;
        return done(body, buf.toString('latin1', eol + 2, tEnd), tEnd + 4);
      }
      if (buf.length < eol + 2 + size + 2) return null;
      body += buf.toString('latin1', eol + 2, eol + 2 + size);
      pos = eol + 2 + size + 2;
    }
    throw new Error('too many chunks');
  }
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    if (buf.length < start + length) return null;
    return done(buf.toString('latin1', start, start + length), '', start + length);
  }
  return closed ? done(buf.toString('latin1', start), '', buf.length) : null;
}

/**
 * Node's http server adds `Keep-Alive: timeout=N` to every keep-alive response; the lane never does. So a
 * response without it (from a backend that sends none) was relayed by the lane, not handed to Node.
 */
export const byLane = (res: { readonly headers: Record<string, string> }) => res.headers['keep-alive'] === undefined;
