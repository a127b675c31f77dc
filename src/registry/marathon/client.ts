/**
 * Marathon's REST API over axios (the one module that knows axios), across several Marathon URLs: requests go
 * to the leader found through `/v2/leader`, and fail over to the next URL when one stops answering.
 */
import { isAscii } from 'node:buffer';
import * as http from 'node:http';
import * as https from 'node:https';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { CiEdgeError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import type { MarathonApp } from './types.js';

export interface MarathonClientOptions {
  readonly urls: readonly string[];
  readonly auth: { readonly basic?: string; readonly token?: string } | null;
  readonly requestTimeout: number;
  readonly log: Logger;
  readonly metrics?: Metrics;
}

/** `Authorization` for Marathon: basic, or a DC/OS ACS token (`token=<jwt>`, DC/OS's scheme). */
export function authHeader(auth: MarathonClientOptions['auth']): Record<string, string> {
  if (auth?.basic) return { authorization: `Basic ${Buffer.from(auth.basic).toString('base64')}` };
  if (auth?.token) return { authorization: `token=${auth.token}` };
  return {};
}

/** Whether a failure means "this Marathon is not answering" (try another) rather than "it said no". */
function unreachable(res: AxiosResponse | undefined): boolean {
  return res === undefined || res.status >= 500;
}

/** A Marathon answer: its status and its body, decoded once. */
export interface MarathonReply {
  readonly status: number;
  readonly text: string;
}

/**
 * The body as a string. Marathon's JSON is ASCII in practice (ids, hosts, ISO times; JSON escapes the rest), and
 * an ASCII buffer decodes as latin1 with a plain copy, where V8's UTF-8 decoder took ~5 ms for the 8.3 MiB
 * /v2/apps of 2000 apps (issue #2). Anything else is decoded as UTF-8 with a leading BOM dropped, as axios's
 * own `responseType: 'text'` did.
 */
export function decodeBody(body: Buffer): string {
  if (isAscii(body)) return body.toString('latin1');
  const text = body.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

export class MarathonClient {
  private readonly urls: string[];
  private current = 0;
  private readonly http: AxiosInstance;
  private readonly agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  private readonly log: Logger;
  /** `host:port` of the leader as Marathon reports it, once known. */
  leader: string | null = null;

  constructor(private readonly opts: MarathonClientOptions) {
    this.urls = opts.urls.map((u) => u.replace(/\/+$/, ''));
    this.log = opts.log;
    this.http = axios.create({
      timeout: opts.requestTimeout,
      headers: { accept: 'application/json', ...authHeader(opts.auth) },
      // We decode (decodeBody) and parse ourselves: axios silently hands back the raw string when JSON.parse fails.
      responseType: 'arraybuffer',
      transformResponse: [(d: unknown) => d],
      validateStatus: () => true,
      maxRedirects: 5,
      maxContentLength: -1,
      httpAgent: this.agents.http,
      httpsAgent: this.agents.https,
    });
  }

  /** The URL requests go to first (the leader when known). */
  get baseUrl(): string {
    return this.urls[this.current]!;
  }

  headers(): Record<string, string> {
    return authHeader(this.opts.auth);
  }

  /** A URL failed outside this client (the event stream): start with the next one. */
  markFailed(url: string): void {
    const i = this.urls.findIndex((u) => url.startsWith(u));
    if (i === this.current && this.urls.length > 1) {
      this.current = (this.current + 1) % this.urls.length;
      this.log.warn({ failed: url, next: this.baseUrl }, 'Marathon URL failed; failing over');
    }
  }

  /** Asks `/v2/leader` and prefers the configured URL that is the leader. Returns `host:port`. */
  async discoverLeader(): Promise<string> {
    const { body } = await this.getJson<{ leader?: unknown }>('/v2/leader', (res) => {
      if (res.status === 404) throw new CiEdgeError('E_MARATHON_NO_LEADER', [this.bodyMessage(res)]);
    });
    if (typeof body.leader !== 'string' || body.leader === '') throw new CiEdgeError('E_MARATHON_BAD_RESPONSE', ['/v2/leader without a leader']);
    const leader = body.leader;
    const i = this.urls.findIndex((u) => new URL(u).host === leader);
    if (i !== -1 && i !== this.current) {
      this.log.info({ leader, url: this.urls[i] }, 'Marathon leader moved');
      this.current = i;
    }
    this.leader = leader;
    return leader;
  }

  /** `GET /v2/apps?embed=apps.tasks`. */
  async listApps(): Promise<{ apps: unknown[]; bytes: number }> {
    const { body, bytes } = await this.getJson<{ apps?: unknown }>('/v2/apps?embed=apps.tasks');
    if (!Array.isArray(body.apps)) throw new CiEdgeError('E_MARATHON_BAD_RESPONSE', ['/v2/apps without an "apps" array']);
    return { apps: body.apps, bytes };
  }

  /** `GET /v2/apps/<id>?embed=app.tasks`; null when Marathon says the app does not exist. */
  async getApp(id: string): Promise<MarathonApp | null> {
    const path = `/v2/apps${id.split('/').map(encodeURIComponent).join('/')}?embed=app.tasks`;
    let gone = false;
    const { body } = await this.getJson<{ app?: MarathonApp }>(path, (res) => {
      if (res.status !== 404) return;
      // Only Marathon's own "App '/x' does not exist" removes a route; a 404 from a proxy in between does not.
      const message = this.bodyMessage(res);
      if (!/does not exist/.test(message)) throw new CiEdgeError('E_MARATHON_BAD_RESPONSE', [`${path}: HTTP 404 ${message}`]);
      gone = true;
    });
    if (gone) return null;
    if (!body.app || typeof body.app !== 'object') throw new CiEdgeError('E_MARATHON_BAD_RESPONSE', [`${path} without an "app"`]);
    return body.app;
  }

  /** Any JSON GET against the leader with failover (used for leader probes of services too). */
  async getJson<T>(path: string, onStatus?: (res: MarathonReply) => void): Promise<{ body: T; bytes: number; url: string }> {
    let lastError = 'no Marathon URL configured';
    for (let n = 0; n < this.urls.length; n++) {
      const i = (this.current + n) % this.urls.length;
      const base = this.urls[i]!;
      let res: AxiosResponse<Buffer> | undefined;
      try {
        res = await this.http.get<Buffer>(base + path);
      } catch (err) {
        lastError = `${base}${path}: ${describe(err)}`;
      }
      if (unreachable(res)) {
        if (res) lastError = `${base}${path}: HTTP ${res.status}`;
        this.opts.metrics?.marathonErrors.inc({ kind: 'unreachable' });
        this.log.warn({ url: base + path, err: lastError }, 'Marathon did not answer');
        continue;
      }
      if (i !== this.current) {
        this.log.warn({ from: this.baseUrl, to: base }, 'failed over to another Marathon');
        this.current = i;
      }
      const reply: MarathonReply = { status: res!.status, text: decodeBody(res!.data) };
      onStatus?.(reply);
      return { body: this.parse<T>(reply, path), bytes: res!.data.length, url: base };
    }
    throw new CiEdgeError('E_MARATHON_UNREACHABLE', [lastError]);
  }

  private parse<T>(res: MarathonReply, path: string): T {
    if (res.status === 404) return {} as T;
    if (res.status >= 300) {
      this.opts.metrics?.marathonErrors.inc({ kind: 'status' });
      throw new CiEdgeError('E_MARATHON_BAD_RESPONSE', [`${path}: HTTP ${res.status} ${this.bodyMessage(res)}`]);
    }
    try {
      const body: unknown = JSON.parse(res.text);
      if (!body || typeof body !== 'object') throw new Error('not a JSON object');
      return body as T;
    } catch (err) {
      this.opts.metrics?.marathonErrors.inc({ kind: 'malformed' });
      throw new CiEdgeError('E_MARATHON_BAD_RESPONSE', [`${path}: malformed JSON (${(err as Error).message})`], { cause: err });
    }
  }

  private bodyMessage(res: MarathonReply): string {
    try {
      const m = (JSON.parse(res.text) as { message?: unknown }).message;
      return typeof m === 'string' ? m : '';
    } catch {
      return res.text.slice(0, 200);
    }
  }

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}

export function describe(err: unknown): string {
  if (axios.isAxiosError(err)) return err.code === 'ECONNABORTED' ? `timeout (${err.message})` : (err.code ?? err.message);
  return err instanceof Error ? err.message : String(err);
}
