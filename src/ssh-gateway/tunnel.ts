import { connect, type Socket } from 'node:net';
import type { Channel } from 'ssh2';
import { CiEdgeError } from '../errors.js';
import type { Endpoint } from '../registry/types.js';

/** Concurrent tunnels in all and per client address (issue #4 "Limits"). */
export class TunnelLimits {
  private total = 0;
  private readonly perClient = new Map<string, number>();

  constructor(
    private maxTotal: number,
    private maxPerClient: number,
  ) {}

  /** New limits for new tunnels (reload); open ones keep their slots even above a lowered limit. */
  setMax(maxTotal: number, maxPerClient: number): void {
    this.maxTotal = maxTotal;
    this.maxPerClient = maxPerClient;
  }

  /** Takes a slot, or throws E_SSH_LIMIT; the returned function gives it back (idempotent). */
  acquire(client: string): () => void {
    if (this.total >= this.maxTotal) throw new CiEdgeError('E_SSH_LIMIT', [`${this.maxTotal} open on this gateway`]);
    const mine = this.perClient.get(client) ?? 0;
    if (mine >= this.maxPerClient) throw new CiEdgeError('E_SSH_LIMIT', [`${this.maxPerClient} open from ${client}`]);
    this.total++;
    this.perClient.set(client, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const n = (this.perClient.get(client) ?? 1) - 1;
      if (n <= 0) this.perClient.delete(client);
      else this.perClient.set(client, n);
    };
  }

  open(): number {
    return this.total;
  }
}

/**
 * TCP to the first endpoint that answers. An endpoint that refuses or times out is reported, so the
 * registry can re-check a task that died between two Marathon events, and the next one is tried.
 */
export async function connectUpstream(
  name: string,
  endpoints: readonly Endpoint[],
  timeoutMs: number,
  failed: (ep: Endpoint) => void,
): Promise<{ socket: Socket; endpoint: Endpoint }> {
  let last: CiEdgeError | null = null;
  for (const endpoint of endpoints) {
    try {
      return { socket: await connectOne(name, endpoint, timeoutMs), endpoint };
    } catch (err) {
      last = err as CiEdgeError;
      failed(endpoint);
    }
  }
  throw last ?? new CiEdgeError('E_NO_HEALTHY_ENDPOINT', [name, 'not serving SSH']);
}

function connectOne(name: string, endpoint: Endpoint, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: endpoint.host, port: endpoint.port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new CiEdgeError('E_UPSTREAM_TIMEOUT', [name]));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      const code = (err as NodeJS.ErrnoException).code;
      reject(new CiEdgeError(code === 'ETIMEDOUT' ? 'E_UPSTREAM_TIMEOUT' : 'E_UPSTREAM_REFUSED', [name], { cause: err }));
    });
  });
}

export type EndedBy = 'master closed' | 'client closed' | 'idle timeout' | 'master reset' | 'shutdown';

export interface SpliceResult {
  readonly endedBy: EndedBy;
  /** Exit status sent on an `exec` channel (0 on a clean end). */
  readonly status: number;
  /** Client → master. */
  readonly bytesUp: number;
  /** Master → client. */
  readonly bytesDown: number;
  readonly error?: string;
}

export interface Splice {
  /** Ends the tunnel now (shutdown deadline). */
  cut(): void;
}

/**
 * Pipes an SSH channel and a TCP socket both ways. `pipe()` carries the backpressure: a slow master stops
 * ssh2 from re-opening the client's window, a slow client pauses the socket (and TCP pushes back on the
 * master). Data passes as the Buffers ssh2 and the socket hand over: no copies, no per-chunk work but a
 * byte count. When either side closes the other is closed; on `exec` channels the exit status goes out
 * after the last byte (0 when the master ended the stream, 1 when it reset or was cut).
 */
export interface SpliceOptions {
  readonly exec: boolean;
  readonly idleTimeout: number;
  /** Called per chunk, so byte counters move while a tunnel lives (tunnels last hours). */
  readonly onBytes?: { up(n: number): void; down(n: number): void };
  readonly onEnd: (r: SpliceResult) => void;
}

export function splice(channel: Channel, socket: Socket, opts: SpliceOptions): Splice {
  let bytesUp = 0;
  let bytesDown = 0;
  let clientEnded = false;
  let done = false;
  let error: string | undefined;

  const finish = (endedBy: EndedBy, status: number) => {
    if (done) return;
    done = true;
    socket.destroy();
    opts.onEnd({ endedBy, status, bytesUp, bytesDown, ...(error ? { error } : {}) });
  };
  /** Last bytes first, then the exit status, then EOF and close (what sshd itself sends, in that order). */
  let closing = false;
  const closeChannel = (endedBy: EndedBy, status: number, now = false) => {
    if (done || (closing && !now)) return;
    closing = true;
    const end = () => {
      if (done) return;
      if (opts.exec) channel.exit(status);
      channel.end();
      finish(endedBy, status);
    };
    // An empty write calls back once every earlier chunk went out, so the status follows the last byte.
    if (channel.writable && !now) channel.write(Buffer.alloc(0), end);
    else end();
  };

  channel.on('data', (d: Buffer) => {
    bytesUp += d.length;
    opts.onBytes?.up(d.length);
  });
  socket.on('data', (d: Buffer) => {
    bytesDown += d.length;
    opts.onBytes?.down(d.length);
  });
  channel.pipe(socket);
  socket.pipe(channel, { end: false });
  channel.on('end', () => (clientEnded = true));
  channel.on('error', () => {}); // a channel write after the client vanished; 'close' follows
  channel.on('close', () => {
    if (done) return;
    finish('client closed', 0);
  });
  socket.setTimeout(opts.idleTimeout, () => {
    error = `no bytes either way for ${opts.idleTimeout} ms`;
    closeChannel('idle timeout', 1);
  });
  socket.on('error', (err) => (error = (err as NodeJS.ErrnoException).code ?? err.message));
  socket.on('end', () => closeChannel(clientEnded ? 'client closed' : 'master closed', 0));
  socket.on('close', (hadError) => {
    if (hadError) closeChannel('master reset', 1);
    else closeChannel(clientEnded ? 'client closed' : 'master closed', 0);
  });
  return {
    cut: () => {
      error = 'gateway shutting down';
      socket.unpipe(channel);
      // At the deadline a client that stopped reading must not hold the shutdown: no waiting for the window.
      closeChannel('shutdown', 1, true);
    },
  };
}
