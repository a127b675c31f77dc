/**
 * The agent side of discovery, as jenkinsci/remoting does it, for tests and benches.
 *
 * resolveAgentEndpoint follows JnlpAgentEndpointResolver.resolve check by check and in the same order: GET
 * `<url>tcpSlaveAgentListener/` with `Node-Name`; status exactly 200; X-Instance-Identity present and a decodable
 * X.509 SubjectPublicKeyInfo RSA key; X-Jenkins-JNLP-Port (else X-Hudson-JNLP-Port) present, an integer, 1..65535;
 * host from X-Jenkins-JNLP-Host else the URL's host; then (without `-tunnel`) isPortVisible: a plain TCP connect
 * within 5 s. Error messages are remoting's.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';

export interface ResolveOptions {
  nodeName?: string;
  /** Source address for every connection (127.0.0.2 plays a second agent host). */
  localAddress?: string;
  /** `-tunnel host:port`: skips the port check and overrides host/port (HostPort). */
  tunnel?: string;
  portCheckTimeout?: number;
  /** Test DNS: host names (`master1.pse.example.com`) to the address that serves them. */
  hosts?: Readonly<Record<string, string>>;
}

export interface ResolvedEndpoint {
  readonly host: string;
  readonly port: number;
  readonly identity: KeyObject;
  readonly identityBase64: string;
  /** Null when the server sent no X-Jenkins-Agent-Protocols (the agent then tries every protocol). */
  readonly protocols: readonly string[] | null;
  readonly minimumVersion: string | null;
  readonly headers: Record<string, string | string[] | undefined>;
}

export class ResolveError extends Error {}

interface Fetched {
  status: number;
  message: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A `lookup` for http.request/ws that answers from a fixed table (falls back to the name itself: an IP). */
export function fixedLookup(hosts: Readonly<Record<string, string>> = {}) {
  return (hostname: string, options: { all?: boolean } | number, cb: (...args: unknown[]) => void) => {
    const address = hosts[hostname] ?? hostname;
    const family = address.includes(':') ? 6 : 4;
    if (typeof options === 'object' && options.all) cb(null, [{ address, family }]);
    else cb(null, address, family);
  };
}

export function httpGet(url: string, headers: Record<string, string> = {}, localAddress?: string, hosts?: Readonly<Record<string, string>>): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const opts = { method: 'GET', headers, agent: false, ...(localAddress ? { localAddress } : {}), ...(hosts ? { lookup: fixedLookup(hosts) as never } : {}) };
    const req = request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, message: res.statusMessage ?? '', headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${url}: no answer in 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

function first(v: string | string[] | undefined): string | null {
  return (Array.isArray(v) ? v[0] : v) ?? null;
}

/** Java's Integer.parseInt: optional sign, decimal digits only. */
function parseJavaInt(s: string): number | null {
  if (!/^[+-]?\d+$/.test(s)) return null;
  const n = Number(s);
  return n >= -2147483648 && n <= 2147483647 ? n : null;
}

export async function resolveAgentEndpoint(jenkinsUrl: string, opts: ResolveOptions = {}): Promise<ResolvedEndpoint> {
  const base = jenkinsUrl.endsWith('/') ? jenkinsUrl : `${jenkinsUrl}/`;
  const salURL = `${base}tcpSlaveAgentListener/`;
  const res = await httpGet(salURL, opts.nodeName ? { 'Node-Name': opts.nodeName } : {}, opts.localAddress, opts.hosts);
  if (res.status !== 200) throw new ResolveError(`${salURL} is invalid: ${res.status} ${res.message}`);
  const minimumVersion = first(res.headers['x-remoting-minimum-version']);
  const portStr = first(res.headers['x-jenkins-jnlp-port']) ?? first(res.headers['x-hudson-jnlp-port']);
  let host = first(res.headers['x-jenkins-jnlp-host']) ?? new URL(salURL).hostname;
  const protocolHeader = first(res.headers['x-jenkins-agent-protocols']);
  const protocols = protocolHeader === null ? null : protocolHeader.split(',').map((s) => s.trim()).filter(Boolean);
  const idHeader = first(res.headers['x-instance-identity']);
  if (idHeader === null) throw new ResolveError(`${base} is missing instance-identity plugin`);
  let identity: KeyObject;
  try {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(idHeader)) throw new Error('not base64');
    identity = createPublicKey({ key: Buffer.from(idHeader, 'base64'), format: 'der', type: 'spki' });
    if (identity.asymmetricKeyType !== 'rsa') throw new Error('not RSA');
  } catch {
    throw new ResolveError(`${salURL} appears to be publishing an invalid X-Instance-Identity.`);
  }
  if (portStr === null) throw new ResolveError(`${base} is not Jenkins`);
  let port = parseJavaInt(portStr);
  if (port === null || port <= 0 || port >= 65536) throw new ResolveError(`${base} is publishing an invalid port`);
  if (opts.tunnel === undefined) {
    if (!(await isPortVisible(opts.hosts?.[host] ?? host, port, opts.portCheckTimeout ?? 5000, opts.localAddress))) {
      throw new ResolveError(`${base} provided port:${port} is not reachable on host ${host}`);
    }
  } else {
    const [th, tp] = opts.tunnel.split(':');
    if (th) host = th;
    if (tp) port = Number(tp);
  }
  return { host, port, identity, identityBase64: idHeader, protocols, minimumVersion, headers: res.headers };
}

/** JnlpAgentEndpointResolver.isPortVisible: connect within the timeout, then close without sending a byte. */
export function isPortVisible(host: string, port: number, timeoutMs: number, localAddress?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port, ...(localAddress ? { localAddress } : {}) });
    const t = setTimeout(() => done(false), timeoutMs);
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** `DataOutputStream.writeUTF`: 2-byte big-endian length, then modified UTF-8. */
export function writeUtf(s: string): Buffer {
  const parts: number[] = [];
  for (const unit of Array.from({ length: s.length }, (_, i) => s.charCodeAt(i))) {
    if (unit >= 1 && unit <= 0x7f) parts.push(unit);
    else if (unit <= 0x7ff) parts.push(0xc0 | (unit >> 6), 0x80 | (unit & 0x3f));
    else parts.push(0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f));
  }
  const len = Buffer.alloc(2);
  len.writeUInt16BE(parts.length);
  return Buffer.concat([len, Buffer.from(parts)]);
}

/**
 * What JnlpProtocol4ProxyHandler.connect sends before delegating: writeUTF("Protocol:JNLP4-connect-proxy"),
 * `Node-Name: <name>` and a blank line through println (lineSeparator `\n`, or `\r\n` on Windows agents).
 */
export function proxyPreamble(nodeName: string, lineSeparator: '\n' | '\r\n' = '\n'): Buffer {
  return Buffer.concat([writeUtf('Protocol:JNLP4-connect-proxy'), Buffer.from(`Node-Name: ${nodeName}${lineSeparator}${lineSeparator}`, 'utf8')]);
}

/** PingAgentProtocol.connect: writeUTF("Protocol:Ping"), expect exactly `Ping\n`. */
export function pingAgentListener(host: string, port: number, localAddress?: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, ...(localAddress ? { localAddress } : {}) }, () => s.write(writeUtf('Protocol:Ping')));
    const chunks: Buffer[] = [];
    const t = setTimeout(() => s.destroy(new Error('ping: no answer in 5 s')), 5000);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    s.on('close', () => {
      clearTimeout(t);
      resolve(Buffer.concat(chunks).toString('utf8') === 'Ping\n');
    });
  });
}

export interface AgentSession {
  readonly socket: Socket;
  /** Bytes the far side sent back so far. */
  received(): Buffer;
  /** Resolves once `n` bytes came back (or rejects on close/timeout). */
  waitFor(n: number, timeoutMs?: number): Promise<Buffer>;
  /** Resolves when the far side closed; with what it sent. */
  closed(): Promise<Buffer>;
}

/**
 * Opens an agent connection and writes `parts` one by one (each its own write, flushed with Nagle off), so tests
 * control how the preamble and what follows are split across packets.
 */
export function openAgentConnection(host: string, port: number, parts: Buffer[], localAddress?: string): Promise<AgentSession> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true, ...(localAddress ? { localAddress } : {}) });
    const chunks: Buffer[] = [];
    let ended = false;
    const listeners = new Set<() => void>();
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      for (const l of listeners) l();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      ended = true;
      for (const l of listeners) l();
    });
    socket.once('error', reject);
    socket.once('connect', async () => {
      socket.off('error', reject);
      for (const p of parts) {
        socket.write(p);
        await new Promise((r) => setTimeout(r, 5));
      }
      const all = () => Buffer.concat(chunks);
      resolve({
        socket,
        received: all,
        waitFor: (n, timeoutMs = 5000) =>
          new Promise((res, rej) => {
            const t = setTimeout(() => done(new Error(`waited for ${n} bytes, got ${all().length}`)), timeoutMs);
            const check = () => {
              if (all().length >= n) done(null);
              else if (ended) done(new Error(`closed after ${all().length} of ${n} bytes`));
            };
            const done = (err: Error | null) => {
              clearTimeout(t);
              listeners.delete(check);
              if (err) rej(err);
              else res(all());
            };
            listeners.add(check);
            check();
          }),
        closed: () =>
          new Promise((res) => {
            const check = () => {
              if (!ended) return;
              listeners.delete(check);
              res(all());
            };
            listeners.add(check);
            check();
          }),
      });
    });
  });
}
