/**
 * Marathon's event bus (`GET /v2/events`, Server-Sent Events) as a self-healing stream of parsed events.
 *
 * - Wire format: WHATWG SSE. Marathon ends lines with CRLF and sends a bare CRLF heartbeat every 10 s;
 *   a line end may be split across TCP chunks, so the parser keeps a pending CR.
 * - A stream with no bytes for `idleTimeout` is dead (marathon-lb#238: a silently dead stream froze routes).
 * - Marathon closes every stream when it loses leadership, and a standby answers with a redirect to the leader.
 * - Reconnects back off exponentially with jitter, so a fleet of gateways does not stampede a new leader.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import type { Logger } from '../../log.js';

export interface SseEvent {
  readonly event: string;
  readonly data: string;
  readonly id?: string;
}

/** Incremental SSE parser. Feed it decoded text in any chunking; it calls `onEvent` per dispatched event. */
export class SseParser {
  private buf = '';
  private pendingCR = false;
  private event = '';
  private data: string[] = [];
  private id: string | undefined;

  constructor(private readonly onEvent: (e: SseEvent) => void) {}

  push(text: string): void {
    let s = text;
    // A CR ending the previous chunk and an LF starting this one are one line end.
    if (this.pendingCR && s.startsWith('\n')) s = s.slice(1);
    this.pendingCR = false;
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(this.buf + s.slice(start, i));
      this.buf = '';
      if (c === 13) {
        if (i + 1 === s.length) this.pendingCR = true;
        else if (s.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    this.buf += s.slice(start);
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id') this.id = value;
  }

  private dispatch(): void {
    // A blank line without data (Marathon's heartbeat) dispatches nothing.
    if (this.data.length > 0) {
      this.onEvent({ event: this.event || 'message', data: this.data.join('\n'), ...(this.id !== undefined ? { id: this.id } : {}) });
    }
    this.event = '';
    this.data = [];
  }
}

/** Exponential backoff with "equal jitter": half fixed, half random, capped at `max`. */
export function backoffDelay(attempt: number, backoff: { min: number; max: number }, random: () => number = Math.random): number {
  const exp = Math.min(backoff.max, backoff.min * 2 ** Math.min(attempt, 30));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

export interface Clock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  random(): number;
}

export const realClock: Clock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  random: Math.random,
};

export interface EventStreamOptions {
  /** Where to connect now (the client's current leader URL). */
  baseUrl(): string;
  headers(): Record<string, string>;
  /** Event types Marathon should send (`event_type=` filter, as marathon-lb asks). */
  eventTypes: readonly string[];
  idleTimeout: number;
  backoff: { readonly min: number; readonly max: number };
  connectTimeout: number;
  log: Logger;
  clock?: Clock;
  /** The stream is up (HTTP 200 from the leader): events from now on are seen, so a full sync closes the gap. */
  onOpen(url: string): void;
  onEvent(e: SseEvent): void;
  /** The stream broke (or never came up); `url` is the base URL that failed. */
  onDown(reason: string, url: string): void;
}

const maxRedirects = 5;

export class EventStream {
  private req: http.ClientRequest | null = null;
  private idleTimer: unknown = null;
  private retryTimer: unknown = null;
  private attempt = 0;
  private closed = false;
  private readonly clock: Clock;

  constructor(private readonly o: EventStreamOptions) {
    this.clock = o.clock ?? realClock;
  }

  start(): void {
    this.connect(this.o.baseUrl(), 0);
  }

  close(): void {
    this.closed = true;
    this.clock.clearTimeout(this.retryTimer);
    this.clock.clearTimeout(this.idleTimer);
    this.req?.destroy();
    this.req = null;
  }

  private connect(base: string, redirects: number, target?: string): void {
    if (this.closed) return;
    const url = new URL(target ?? `${base}/v2/events`);
    if (!target) for (const t of this.o.eventTypes) url.searchParams.append('event_type', t);
    const lib = url.protocol === 'https:' ? https : http;
    // Marathon answers 405 to anything but exactly this Accept header.
    const req = lib.get(url, { headers: { ...this.o.headers(), accept: 'text/event-stream' }, timeout: this.o.connectTimeout });
    this.req = req;
    let done = false;
    const down = (reason: string) => {
      if (done) return;
      done = true;
      this.clock.clearTimeout(this.idleTimer);
      req.destroy();
      if (this.req === req) this.req = null;
      if (this.closed) return;
      this.o.onDown(reason, base);
      this.scheduleRetry(reason);
    };
    req.on('timeout', () => down(`no answer within ${this.o.connectTimeout} ms`));
    req.on('error', (err) => down(err.message));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (status >= 300 && status < 400 && location) {
        res.resume();
        if (redirects >= maxRedirects) return down(`more than ${maxRedirects} redirects`);
        done = true;
        const next = new URL(location, url).toString();
        this.o.log.info({ from: url.toString(), to: next }, 'event stream redirected to the leader');
        req.destroy();
        return this.connect(base, redirects + 1, next);
      }
      if (status !== 200) {
        res.resume();
        return down(`HTTP ${status}`);
      }
      req.setTimeout(0);
      this.attempt = 0;
      const decoder = new StringDecoder('utf8');
      const parser = new SseParser((e) => this.o.onEvent(e));
      this.armIdle(() => down(`no bytes for ${this.o.idleTimeout} ms (dead stream)`));
      res.on('data', (chunk: Buffer) => {
        this.armIdle(() => down(`no bytes for ${this.o.idleTimeout} ms (dead stream)`));
        parser.push(decoder.write(chunk));
      });
      res.on('end', () => down('stream ended by Marathon'));
      res.on('close', () => down('stream closed'));
      res.on('error', (err) => down(err.message));
      this.o.log.info({ url: url.toString() }, 'event stream open');
      this.o.onOpen(url.origin);
    });
  }

  private armIdle(onIdle: () => void): void {
    this.clock.clearTimeout(this.idleTimer);
    this.idleTimer = this.clock.setTimeout(onIdle, this.o.idleTimeout);
  }

  private scheduleRetry(reason: string): void {
    const delay = backoffDelay(this.attempt++, this.o.backoff, this.clock.random);
    this.o.log.warn({ reason, retryInMs: delay, attempt: this.attempt }, 'event stream down; reconnecting');
    this.retryTimer = this.clock.setTimeout(() => this.connect(this.o.baseUrl(), 0), delay);
  }
}
