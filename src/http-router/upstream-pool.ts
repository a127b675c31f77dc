import { connect, type Socket } from 'node:net';
import type { Endpoint } from '../registry/types.js';

/** What an upstream connection reports to the exchange that holds it (fast-lane.ts). */
export interface UpstreamOwner {
  onUpstreamData(chunk: Buffer): void;
  onUpstreamEnd(): void;
  onUpstreamError(err: NodeJS.ErrnoException): void;
  onUpstreamTimeout(): void;
}

/**
 * One keep-alive connection to a backend. Its listeners are attached once and forward to whichever exchange
 * holds it, so a request on a reused connection adds no listener (the cost the fast lane exists to avoid).
 */
export class Upstream {
  owner: UpstreamOwner | null = null;

  constructor(
    readonly socket: Socket,
    readonly key: string,
    private readonly pool: UpstreamPool,
  ) {
    socket.on('data', (chunk: Buffer) => {
      if (this.owner) this.owner.onUpstreamData(chunk);
      // Bytes nobody asked for on an idle connection: it is out of step, never reuse it.
      else socket.destroy();
    });
    socket.on('end', () => {
      if (this.owner) this.owner.onUpstreamEnd();
      else socket.destroy();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => this.owner?.onUpstreamError(err));
    socket.on('timeout', () => {
      if (this.owner) this.owner.onUpstreamTimeout();
      else socket.destroy();
    });
    socket.on('close', () => {
      pool.forget(this);
      // A close without an error or an end first (a destroy from elsewhere) still ends the exchange.
      this.owner?.onUpstreamError(Object.assign(new Error('upstream closed'), { code: 'ECONNRESET' }));
    });
  }

  /** Back to the pool if the exchange left it clean, otherwise closed. */
  release(reusable: boolean): void {
    this.owner = null;
    if (reusable && !this.socket.destroyed) this.pool.give(this);
    else this.socket.destroy();
  }
}

export interface PoolOptions {
  /** Idle connections kept per endpoint. */
  readonly maxIdle: number;
  /** An idle connection is closed after this (ms). */
  readonly idleTimeout: number;
}

/**
 * Idle keep-alive connections per endpoint, newest first (LIFO keeps few connections warm and lets the
 * others time out). The fast lane's equivalent of the http.Agent the http-proxy path uses.
 */
export class UpstreamPool {
  private readonly idle = new Map<string, Upstream[]>();
  private closed = false;

  constructor(private options: PoolOptions) {}

  reconfigure(options: PoolOptions): void {
    this.options = options;
  }

  /** An idle connection to `endpoint`, or a new one (connecting; writes queue until it is up). */
  acquire(endpoint: Endpoint, owner: UpstreamOwner, connectTimeout: number): Upstream {
    const key = `${endpoint.host}:${endpoint.port}`;
    const list = this.idle.get(key);
    let up = list?.pop();
    while (up && up.socket.destroyed) up = list?.pop();
    if (up) {
      up.owner = owner;
      return up;
    }
    const socket = connect({ host: endpoint.host, port: endpoint.port, noDelay: true });
    up = new Upstream(socket, key, this);
    up.owner = owner;
    socket.setTimeout(connectTimeout);
    return up;
  }

  give(up: Upstream): void {
    const list = this.idle.get(up.key) ?? [];
    if (this.closed || list.length >= this.options.maxIdle) {
      up.socket.destroy();
      return;
    }
    // Paused when the last client read slowly (backpressure): an idle connection must notice a close.
    up.socket.resume();
    up.socket.setTimeout(this.options.idleTimeout);
    list.push(up);
    this.idle.set(up.key, list);
  }

  forget(up: Upstream): void {
    const list = this.idle.get(up.key);
    if (!list) return;
    const i = list.indexOf(up);
    if (i !== -1) list.splice(i, 1);
    if (list.length === 0) this.idle.delete(up.key);
  }

  close(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const up of [...list]) up.socket.destroy();
    this.idle.clear();
  }
}
