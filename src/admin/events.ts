import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RegistryView, Snapshot } from '../registry/types.js';
import { routeToJson } from './routes-json.js';

/**
 * Proxies between the operator and the admin port (nginx's proxy_read_timeout is 60 s by default) drop a
 * silent stream; a comment line every 15 s keeps it open.
 */
const heartbeatMs = 15_000;
/** A browser tab that stopped reading (laptop asleep) is dropped past this backlog; it reconnects later. */
const maxBacklogBytes = 8 * 1024 * 1024;

export interface StatusExtra {
  draining: boolean;
}

function statusJson(s: Snapshot, extra: StatusExtra) {
  return { version: s.version, now: new Date().toISOString(), ...s.status, ...extra };
}

/**
 * The dashboard's live feed (`GET /events`, Server-Sent Events). A new client gets the whole table once
 * (`snapshot`); after that every client gets `diff` events: routes upserted and names removed, computed once
 * for everyone and at most once per throttle window, however fast Marathon redeploys. Diffs carry whole
 * route states, so applying one twice (a client that connected in between) is harmless.
 */
export class RouteEvents {
  private readonly clients = new Set<ServerResponse>();
  private sent: Snapshot;
  private timer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private lastFlush = 0;
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly registry: RegistryView,
    private readonly extra: () => StatusExtra,
    public throttleMs: number,
  ) {
    this.sent = registry.current();
  }

  start(): void {
    this.unsubscribe = this.registry.subscribe(() => this.schedule());
    this.heartbeat = setInterval(() => this.broadcast(': ping\n\n'), heartbeatMs);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  attach(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // nginx buffers proxied responses unless told not to; a buffered event stream is not live.
      'x-accel-buffering': 'no',
    });
    const s = this.registry.current();
    const routes = [...s.routes.values()].sort((a, b) => a.name.localeCompare(b.name)).map(routeToJson);
    res.write(`retry: 2000\nevent: snapshot\ndata: ${JSON.stringify({ status: statusJson(s, this.extra()), routes })}\n\n`);
    this.clients.add(res);
    const drop = () => this.clients.delete(res);
    req.socket.setNoDelay(true);
    res.on('close', drop);
  }

  /** Sends the change now if the window has passed, else once it does. */
  private schedule(): void {
    if (this.timer) return;
    const wait = Math.max(0, this.lastFlush + this.throttleMs - Date.now());
    this.timer = setTimeout(() => this.flush(), wait);
    this.timer.unref();
  }

  private flush(): void {
    this.timer = null;
    this.lastFlush = Date.now();
    const cur = this.registry.current();
    const prev = this.sent;
    this.sent = cur;
    if (cur === prev || this.clients.size === 0) return;
    const upsert = [];
    const remove = [];
    // Unchanged routes keep their object across snapshots (the registry reuses them), so identity is the diff.
    for (const [name, r] of cur.routes) if (prev.routes.get(name) !== r) upsert.push(routeToJson(r));
    for (const name of prev.routes.keys()) if (!cur.routes.has(name)) remove.push(name);
    const body = { status: statusJson(cur, this.extra()), upsert, remove };
    this.broadcast(`event: diff\ndata: ${JSON.stringify(body)}\n\n`);
  }

  private broadcast(chunk: string): void {
    for (const res of this.clients) {
      if (res.writableLength > maxBacklogBytes) {
        this.clients.delete(res);
        res.destroy();
        continue;
      }
      res.write(chunk);
    }
  }

  /** Ends every stream (the browser reconnects to whatever listens next) and stops listening to the registry. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.timer = this.heartbeat = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.endClients();
  }

  endClients(): void {
    for (const res of this.clients) res.end();
    this.clients.clear();
  }
}
