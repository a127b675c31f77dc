import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import ssh2 from 'ssh2';
import type { Connection, ServerChannel, Session } from 'ssh2';
import type { Config } from '../config/types.js';
import { CiEdgeError } from '../errors.js';
import { listen } from '../net.js';
import { readProxyHeader } from '../proxy-protocol.js';
import type { Deps, FrontDoor } from '../service.js';
import { createAuthPolicy, type ClientIdentity } from './auth.js';
import { loadHostKeys } from './host-keys.js';
import { openTunnel, type TunnelRequest, type TunnelRuntime } from './open-tunnel.js';
import { parseTunnelCommand, printable, usage, type Naming } from './target.js';
import { answerFor } from './answers.js';
import { TunnelLimits, type Splice } from './tunnel.js';

/**
 * Outer-session ciphers. SSH uses the first cipher on the CLIENT's list that the server offers (RFC 4253
 * §7.1) and OpenSSH clients list chacha20-poly1305 first, so what the gateway offers is its only lever.
 * Measured here (ssh2 1.17 native binding, Node 20 / OpenSSL 3 with AES-NI): ssh2 decrypts AES-GCM at
 * ~2.5 GB/s and chacha20-poly1305 at ~2.2 GB/s, encrypts both at ~1.5 GB/s, and aes128-ctr + HMAC at only
 * 1.2 / 0.9 GB/s; OpenSSH clients also spend less on AES-GCM than on chacha20. Offering only the AES-GCM
 * pair makes every OpenSSH client since 6.2 (2013) pick aes128-gcm. Sites with older clients add
 * `chacha20-poly1305@openssh.com` or `aes128-ctr` via `ssh.ciphers` (bench numbers: README "SSH gateway").
 */
export const DEFAULT_CIPHERS = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'] as const;

/** After the deadline, how long cut tunnels' clients get to close their connections before we do. */
const CLOSE_GRACE_MS = 1000;

/** Channels still open when the shutdown deadline passes, and how to end them. */
interface ConnState {
  readonly client: Connection;
  readonly address: string;
  readonly splices: Set<Splice>;
  who: ClientIdentity | null;
  closed: boolean;
  idleTimer: NodeJS.Timeout | null;
}

/**
 * The SSH gateway front door (issue #4): an ssh2 server whose only service is a byte pipe from the
 * client to one master's built-in SSH server, via `exec tunnel <host>` (ProxyCommand) or direct-tcpip
 * (`ssh -J`, `ssh -W`). It never sees the inner session's plaintext and is never an open proxy.
 */
export function createSshGateway(config: Config, deps: Deps): FrontDoor {
  // Replaced by reconfigure(): the handlers read these when a connection or tunnel starts.
  let ssh = config.ssh!;
  const log = deps.log.child({ component: 'ssh' });
  let naming: Naming = { sshDomain: ssh.domain, domains: config.domains };
  const limits = new TunnelLimits(ssh.limits.maxTunnels, ssh.limits.maxTunnelsPerClient);
  const conns = new Set<ConnState>();
  let server: Server | null = null;
  /** Sockets not yet through the SSH handshake, by `ip:port`, with their timer. */
  const handshakes = new Map<string, { done(): void; cut(): void }>();
  const sockets = new Set<Socket>();
  let closing = false;
  let nextId = 0;

  const runtimeFor = (): TunnelRuntime => ({
    registry: deps.registry,
    metrics: deps.metrics,
    log,
    limits,
    naming,
    connectTimeout: ssh.limits.connectTimeout,
    idleTimeout: ssh.limits.idleTimeout,
    nextId: () => `s${(++nextId).toString(36)}`,
  });
  let runtime = runtimeFor();

  const onConnection = (client: Connection, info: { ip: string; port: number }) => {
    const address = info.ip;
    const state: ConnState = { client, address, splices: new Set(), who: null, closed: false, idleTimer: null };
    conns.add(state);
    if (closing) return client.end();
    const handshake = handshakes.get(`${info.ip}:${info.port}`);
    const armIdle = () => {
      if (state.idleTimer) clearTimeout(state.idleTimer);
      state.idleTimer = state.splices.size === 0 && !state.closed ? setTimeout(() => client.end(), ssh.limits.idleTimeout) : null;
    };
    const policy = authPolicy;
    client.on('authentication', (ctx) => policy.handle(ctx, (who) => (state.who = who)));
    client.on('ready', () => {
      handshake?.done();
      state.who ??= { user: '?', method: '?', keyFingerprint: null };
      log.debug({ client: `${info.ip}:${info.port}`, ...state.who }, 'ssh client authenticated');
      armIdle();
    });
    const request = (via: TunnelRequest['via'], target: string, port?: number): TunnelRequest => ({
      via,
      target,
      ...(port !== undefined ? { port } : {}),
      client: `${info.ip}:${info.port}`,
      clientAddress: address,
      who: state.who!,
      track: (s) => {
        state.splices.add(s);
        armIdle();
        return () => {
          state.splices.delete(s);
          armIdle();
        };
      },
    });
    client.on('session', (accept) => onSession(accept(), (target) => request('exec', target), () => state.closed));
    client.on('tcpip', (accept, reject, tcp) => {
      openTunnel(runtime, request('direct-tcpip', tcp.destIP, tcp.destPort), {
        accept: () => (state.closed ? null : accept()),
        refuse: (answer) => rejectWithReason(client, reject, answer.openFailure, answer.line),
      });
    });
    // Remote forwarding (`ssh -R`) would make the gateway listen for the client: never.
    client.on('request', (_accept, reject) => reject?.());
    client.on('error', (err) => log.debug({ err, client: `${info.ip}:${info.port}` }, 'ssh connection error'));
    client.on('close', () => {
      state.closed = true;
      if (state.idleTimer) clearTimeout(state.idleTimer);
      conns.delete(state);
    });
  };

  const onSocket = (socket: Socket, ssh2Server: ssh2.Server) => {
    let key = `${socket.remoteAddress}:${socket.remotePort}`;
    sockets.add(socket);
    // Upload stalls on Nagle + delayed ACK otherwise: our only packets upstream of a bulk upload are small
    // WINDOW_ADJUSTs, each held until the client ACKs the last (measured: 63 MB/s flat on every cipher).
    socket.setNoDelay(true);
    const cut = () => socket.destroy();
    const timer = setTimeout(() => {
      log.info({ client: key, timeoutMs: ssh.limits.handshakeTimeout }, 'ssh handshake timed out');
      cut();
    }, ssh.limits.handshakeTimeout);
    const done = () => {
      clearTimeout(timer);
      handshakes.delete(key);
    };
    socket.once('close', () => {
      done();
      sockets.delete(socket);
    });
    const inject = () => {
      handshakes.set(key, { done, cut });
      ssh2Server.injectSocket(socket);
    };
    if (!ssh.proxyProtocol) return inject();
    // Behind a balancer: its header names the client, which ssh2 (its `ip`), the per-client limit and the
    // audit lines then see. The handshake timer above covers the header too.
    readProxyHeader(socket, (r) => {
      if (!r.ok) {
        log.info({ client: key, reason: r.reason }, 'ssh connection refused: no valid PROXY protocol header (ssh.proxyProtocol is on)');
        return cut();
      }
      if (r.source !== null) {
        // An own property over net.Socket's getter: ssh2 reads `socket.remoteAddress` for the connection's ip.
        Object.defineProperty(socket, 'remoteAddress', { value: r.source, configurable: true });
        key = `${r.source}:${socket.remotePort}`;
      }
      inject();
    });
  };

  const onSession = (session: Session, request: (target: string) => TunnelRequest, connClosed: () => boolean) => {
    const refuseWithUsage = (channel: ServerChannel) => {
      const answer = answerFor(usage(naming));
      deps.metrics.sshTunnelsRefused.inc({ reason: answer.reason });
      channel.stderr.write(`${answer.line}\n`);
      channel.exit(answer.status);
      channel.end();
    };
    // A terminal is harmless and refusing it only adds "PTY allocation request failed" before the usage line.
    session.on('pty', (accept) => accept());
    session.on('shell', (accept) => refuseWithUsage(accept()));
    session.on('subsystem', (accept) => refuseWithUsage(accept()));
    session.on('exec', (accept, _reject, { command }) => {
      const channel = accept();
      let target: string;
      try {
        target = parseTunnelCommand(command, naming);
      } catch {
        log.info({ command: printable(command) }, 'ssh exec refused: not a tunnel command');
        return refuseWithUsage(channel);
      }
      let channelClosed = false;
      channel.once('close', () => (channelClosed = true));
      openTunnel(runtime, request(target), {
        accept: () => (channelClosed || connClosed() ? null : channel),
        refuse: (answer) => {
          channel.stderr.write(`${answer.line}\n`);
          channel.exit(answer.status);
          channel.end();
        },
      });
    });
  };

  let authPolicy: ReturnType<typeof createAuthPolicy>;

  return {
    name: 'ssh',
    async start() {
      const hostKeys = loadHostKeys(ssh.hostKeys, log);
      authPolicy = createAuthPolicy(ssh, log);
      const ciphers = ssh.ciphers ?? DEFAULT_CIPHERS;
      let ssh2Server: ssh2.Server;
      try {
        ssh2Server = new ssh2.Server(
          {
            hostKeys: hostKeys.map((k) => k.pem),
            ident: 'ci-edge',
            keepaliveInterval: ssh.limits.keepaliveInterval,
            keepaliveCountMax: 3, // OpenSSH's ClientAliveCountMax default: ~45 s to notice a dead client
            algorithms: { cipher: [...ciphers] as ssh2.CipherAlgorithm[] },
          },
          onConnection,
        );
      } catch (err) {
        throw new CiEdgeError('E_CONFIG_INVALID', [`ssh.ciphers: ${(err as Error).message}`], { cause: err });
      }
      // Our own listener hands sockets to ssh2: ssh2 only reports a connection once the client has sent
      // its version line, so a client that never speaks would escape the handshake timeout otherwise.
      server = createServer((socket) => onSocket(socket, ssh2Server));
      const addr = await listen(server, ssh.listen);
      log.info({ address: `${addr.address}:${addr.port}`, auth: ssh.auth, ciphers, hostKeys: hostKeys.map((k) => k.fingerprint) }, 'ssh gateway listening');
    },
    /**
     * A reload that keeps the address, host keys, ciphers and keepalive (all fixed when the ssh2 server is
     * created) applies in place: open tunnels carry on; new connections get the new auth policy, limits,
     * PROXY header setting, timeouts and domain (issue #6: listeners whose address did not change keep their
     * sockets).
     */
    async reconfigure(next: Config) {
      const n = next.ssh;
      if (!n || !server) return false;
      const same = isDeepStrictEqual;
      if (!same(n.listen, ssh.listen) || !same(n.hostKeys, ssh.hostKeys) || !same(n.ciphers, ssh.ciphers) || n.limits.keepaliveInterval !== ssh.limits.keepaliveInterval) {
        return false;
      }
      authPolicy = createAuthPolicy(n, log);
      limits.setMax(n.limits.maxTunnels, n.limits.maxTunnelsPerClient);
      ssh = n;
      naming = { sshDomain: n.domain, domains: next.domains };
      runtime = runtimeFor();
      log.info({ auth: n.auth, limits: n.limits }, 'ssh gateway reconfigured in place');
      return true;
    },
    async close(deadline) {
      closing = true;
      if (!server) return;
      const srv = server;
      const stopped = new Promise<void>((resolve) => srv.close(() => resolve()));
      for (const h of handshakes.values()) h.cut();
      // Connections without a tunnel have nothing to finish; tunnels get until the deadline.
      for (const c of conns) if (c.splices.size === 0) c.client.end();
      const wait = Math.max(0, (deadline ?? Date.now()) - Date.now());
      const timers: NodeJS.Timeout[] = [];
      timers.push(
        setTimeout(() => {
          // Cut the tunnels first and let clients close their connection themselves: a DISCONNECT that
          // overtakes the channel close makes OpenSSH exit 255 and drop the exit status we just sent.
          for (const c of conns) for (const s of c.splices) s.cut();
          timers.push(setTimeout(() => conns.forEach((c) => c.client.end()), CLOSE_GRACE_MS));
          timers.push(setTimeout(() => sockets.forEach((sock) => sock.destroy()), 2 * CLOSE_GRACE_MS));
        }, wait),
      );
      await stopped;
      timers.forEach(clearTimeout);
    },
    addresses(): Record<string, AddressInfo> {
      const a = server?.address();
      return a && typeof a === 'object' ? { ssh: a } : {};
    },
  };
}

/**
 * ssh2's `reject()` sends an empty description; OpenSSH prints the description as the only reason
 * ("channel 0: open failed: administratively prohibited: ci-edge: no master named …"), so fill it in.
 * This reaches into ssh2's Protocol object for the one call; if that ever changes, plain reject() remains.
 */
function rejectWithReason(client: Connection, reject: () => void, reason: number, text: string): void {
  const proto = (client as unknown as { _protocol?: { channelOpenFail?: (r: number, reason: number, d: string) => void } })._protocol;
  const orig = proto?.channelOpenFail;
  if (!proto || typeof orig !== 'function') return reject();
  proto.channelOpenFail = (recipient: number) => orig.call(proto, recipient, reason, text);
  try {
    reject();
  } finally {
    proto.channelOpenFail = orig;
  }
}

