/**
 * A Jenkins master stand-in for JNLP discovery tests and benches: real servers on 127.0.0.1:0.
 *
 * HTTP (answered with and without the `--prefix` path, as a master behind domain or path routing sees it):
 *   GET <prefix>/tcpSlaveAgentListener/  200 with exactly Jenkins' header set (TcpSlaveAgentListener/index.jelly:
 *       X-Hudson-JNLP-Port, X-Jenkins-JNLP-Port, X-Instance-Identity = base64 SubjectPublicKeyInfo DER of a real
 *       RSA key, X-Jenkins-Agent-Protocols, X-Remoting-Minimum-Version) and body `Jenkins`; 404 when disabled.
 *   GET <prefix>/login                   200 with `X-SSH-Endpoint: <in-container host:port>` (sshd module).
 *   WS  <prefix>/wsagents/               upgrade answering X-Remoting-Capability, X-Remoting-Minimum-Version and
 *       Connection-Cookie; the text message `headers?` gets the remoting request headers it received as JSON,
 *       anything else is echoed.
 * TCP agent listener (TcpSlaveAgentListener.ConnectionHandler): reads `writeUTF("Protocol:<name>")`; `Ping` gets
 *   `Ping\n` and a close (PingAgentProtocol); `JNLP4-connect` is recorded and echoed (or counted, `sink`);
 *   any other name gets Jenkins' `Unknown protocol:` line — a real master has no JNLP4-connect-proxy.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { WebSocketServer } from 'ws';

export interface StandinOptions {
  /** Master name; the prefix defaults to `/<name>` (Jenkins started with `--prefix=/<name>`). */
  name?: string;
  prefix?: string;
  agentListener?: boolean;
  protocols?: string;
  minimumVersion?: string;
  /** What /login advertises: the in-container endpoint an outside CLI cannot reach. */
  sshEndpoint?: string;
  /** `echo`: JNLP4-connect bytes come back; `sink`: counted, and the count (8 bytes BE) is sent at the end. */
  agentMode?: 'echo' | 'sink';
  /** The port the page advertises: a master in a container says its in-container port (50000), not the one reachable. */
  advertisedPort?: number;
  /** Reuse a key (RSA generation takes a while); default: a fresh 2048-bit key. */
  key?: { publicKey: KeyObject };
}

export interface AgentConnection {
  readonly protocol: string;
  readonly remoteAddress: string;
  /** Bytes after the protocol line, as received so far. */
  received: Buffer;
  ended: boolean;
}

export interface JenkinsStandin {
  readonly name: string;
  readonly prefix: string;
  /** `http://127.0.0.1:PORT` (no prefix). */
  readonly origin: string;
  readonly httpPort: number;
  readonly agentPort: number;
  /** X-Instance-Identity exactly as sent. */
  readonly identity: string;
  readonly publicKey: KeyObject;
  readonly connections: AgentConnection[];
  /** Requests seen, `METHOD path` with their headers. */
  readonly requests: { method: string; url: string; headers: IncomingMessage['headers']; remoteAddress: string }[];
  setAgentListener(enabled: boolean): void;
  waitForConnections(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export const JENKINS_PROTOCOLS = 'JNLP4-connect, Ping';
export const JENKINS_MINIMUM_REMOTING = '3107.v665000b_51092';

export function generateIdentityKey(): { publicKey: KeyObject } {
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

export async function startJenkinsStandin(opts: StandinOptions = {}): Promise<JenkinsStandin> {
  const name = opts.name ?? 'master1';
  const prefix = opts.prefix ?? `/${name}`;
  const key = opts.key ?? generateIdentityKey();
  const identity = key.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const protocols = opts.protocols ?? JENKINS_PROTOCOLS;
  const minimumVersion = opts.minimumVersion ?? JENKINS_MINIMUM_REMOTING;
  let listenerEnabled = opts.agentListener ?? true;
  const connections: AgentConnection[] = [];
  const requests: JenkinsStandin['requests'] = [];
  const sockets = new Set<Socket>();
  const waiters: (() => void)[] = [];

  const agents = createTcpServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    handleAgent(s, opts.agentMode ?? 'echo', (c) => {
      connections.push(c);
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((r) => agents.listen(0, '127.0.0.1', r));
  const agentPort = (agents.address() as AddressInfo).port;
  const sshEndpoint = opts.sshEndpoint ?? `${name}.marathon.mesos:22`;

  const strip = (url: string) => {
    const path = url.split('?')[0]!;
    return path.startsWith(`${prefix}/`) ? path.slice(prefix.length) : path;
  };
  const http = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, remoteAddress: req.socket.remoteAddress ?? '' });
    const path = strip(req.url ?? '/');
    const common = { 'x-jenkins': '2.462.3', 'x-jenkins-session': 'a1b2c3d4', 'x-hudson': '1.395' };
    if (path === '/tcpSlaveAgentListener/') {
      if (!listenerEnabled) {
        res.writeHead(404, { ...common, 'content-type': 'text/html;charset=utf-8' });
        res.end('Not Found');
        return;
      }
      res.writeHead(200, {
        ...common,
        'content-type': 'text/plain;charset=utf-8',
        'X-Hudson-JNLP-Port': String(opts.advertisedPort ?? agentPort),
        'X-Jenkins-JNLP-Port': String(opts.advertisedPort ?? agentPort),
        'X-Instance-Identity': identity,
        'X-Jenkins-Agent-Protocols': protocols,
        'X-Remoting-Minimum-Version': minimumVersion,
      });
      res.end('Jenkins');
      return;
    }
    if (path === '/login') {
      res.writeHead(200, { ...common, 'content-type': 'text/html;charset=utf-8', 'X-SSH-Endpoint': sshEndpoint });
      res.end('<html><body>Sign in to Jenkins</body></html>');
      return;
    }
    res.writeHead(404, { ...common, 'content-type': 'text/plain' });
    res.end('Not Found');
  });

  // Jenkins' WebSocketAgents: the upgrade answers with the capability, minimum version and a connection cookie.
  const wss = new WebSocketServer({ noServer: true });
  wss.on('headers', (headers, req) => {
    headers.push(`X-Remoting-Capability: ${String(req.headers['x-remoting-capability'] ?? '')}`);
    headers.push(`X-Remoting-Minimum-Version: ${minimumVersion}`);
    headers.push(`Connection-Cookie: cookie-${name}`);
  });
  http.on('upgrade', (req, socket, head) => {
    requests.push({ method: 'UPGRADE', url: req.url ?? '', headers: req.headers, remoteAddress: req.socket.remoteAddress ?? '' });
    if (strip(req.url ?? '/') !== '/wsagents/' || !req.headers['node-name'] || !req.headers['secret-key']) {
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const seen = JSON.stringify({
        master: name,
        nodeName: req.headers['node-name'],
        secretKey: req.headers['secret-key'],
        capability: req.headers['x-remoting-capability'] ?? null,
      });
      ws.on('message', (m, isBinary) => ws.send(!isBinary && String(m) === 'headers?' ? seen : m, { binary: isBinary }));
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const httpPort = (http.address() as AddressInfo).port;

  return {
    name,
    prefix,
    origin: `http://127.0.0.1:${httpPort}`,
    httpPort,
    agentPort,
    identity,
    publicKey: key.publicKey,
    connections,
    requests,
    setAgentListener: (enabled) => {
      listenerEnabled = enabled;
    },
    async waitForConnections(n, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (connections.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`stand-in ${name}: ${connections.length} agent connections, expected ${n}`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      for (const s of sockets) s.destroy();
      http.closeAllConnections();
      await Promise.all([new Promise((r) => http.close(r)), new Promise((r) => agents.close(r))]);
    },
  };
}

/** One agent connection, read the way TcpSlaveAgentListener.ConnectionHandler does (`readUTF`). */
function handleAgent(s: Socket, mode: 'echo' | 'sink', onConnection: (c: AgentConnection) => void): void {
  let buf = Buffer.alloc(0);
  let conn: AgentConnection | null = null;
  let count = 0n;
  s.on('error', () => undefined);
  s.on('data', (chunk: Buffer) => {
    if (conn) {
      if (mode === 'sink') {
        count += BigInt(chunk.length);
        return;
      }
      conn.received = Buffer.concat([conn.received, chunk]);
      s.write(chunk);
      return;
    }
    buf = Buffer.concat([buf, chunk]);
    if (buf.length < 2) return;
    const len = buf.readUInt16BE(0);
    if (buf.length < 2 + len) return;
    const line = buf.subarray(2, 2 + len).toString('utf8');
    const rest = buf.subarray(2 + len);
    const protocol = line.startsWith('Protocol:') ? line.slice('Protocol:'.length) : null;
    if (protocol === 'Ping') {
      s.end(Buffer.from('Ping\n'), () => s.destroy());
      return;
    }
    if (protocol !== 'JNLP4-connect') {
      s.end(`${protocol === null ? `Unrecognized protocol: ${line}` : 'Unknown protocol:'}\n`);
      return;
    }
    conn = { protocol, remoteAddress: s.remoteAddress ?? '', received: Buffer.alloc(0), ended: false };
    onConnection(conn);
    if (mode === 'sink') count += BigInt(rest.length);
    else if (rest.length > 0) {
      conn.received = Buffer.from(rest);
      s.write(rest);
    }
  });
  s.on('end', () => {
    if (conn) conn.ended = true;
    if (mode === 'sink' && conn) {
      const out = Buffer.alloc(8);
      out.writeBigUInt64BE(count);
      s.end(out);
    } else {
      s.end();
    }
  });
}
