/**
 * Marathon's REST API over axios (the one module that knows axios), across several Marathon URLs: requests go
 * to the leader found through `/v2/leader`, and fail over to the next URL when one stops answering.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { Readable } from 'node:stream';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { CiEdgeError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import { AppsReader, decodeBody } from './body.js';
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

  /**
   * `GET /v2/apps?embed=apps.tasks`, handing each app to `onApp` as it is parsed, while the body still arrives
   * (see body.ts), so that the caller can map it and let it go. Returns the number of apps and of body bytes.
   */
  async listApps(onApp: (app: unknown) => void): Promise<{ apps: number; bytes: number }> {
    const path = '/v2/apps?embed=apps.tasks';
    const { res, url } = await this.send<Readable>(path, 'stream');
    if (res.status >= 300) {
      const reply = toReply(res.status, await readAll(res.data));
      if (reply.status === 404) throw new CiEdgeError('E_MARATHON_BAD_RESPONSE', ['/v2/apps without an "apps" array']);
      this.checkStatus(reply, path);
    }
    const reader = new AppsReader(onApp);
    let lastByte = performance.now();
    try {
      for await (const chunk of res.data) {
        lastByte = performance.now();
        reader.push(chunk as Buffer);
      }
    } catch (err) {
      this.opts.metrics?.marathonErrors.inc({ kind: 'unreachable' });
      // axios's timeout is the socket's idle timeout, and it ends a stalled body as plainly 'aborted'.
      const idle = performance.now() - lastByte;
      const why = idle >= this.opts.requestTimeout * 0.9 ? `no byte for ${Math.round(idle)} ms` : describe(err);
      throw new CiEdgeError('E_MARATHON_UNREACHABLE', [`${url}${path}: ${why} after ${reader.bytes} bytes`], { cause: err });
    }
    const apps = this.parsing(path, () => reader.end());
    return { apps, bytes: reader.bytes };
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
    const { reply, raw, url } = await this.get(path);
    onStatus?.(reply);
    if (reply.status === 404) return { body: {} as T, bytes: raw.length, url };
    this.checkStatus(reply, path);
    const body = this.parsing(path, () => {
      const parsed: unknown = JSON.parse(reply.text);
      if (!parsed || typeof parsed !== 'object') throw new Error('not a JSON object');
      return parsed as T;
    });
    return { body, bytes: raw.length, url };
  }

  /** A GET against the leader, its body read whole. */
  private async get(path: string): Promise<{ reply: MarathonReply; raw: Buffer; url: string }> {
    const { res, url } = await this.send<Buffer>(path, 'arraybuffer');
    return { reply: toReply(res.status, res.data), raw: res.data, url };
  }

  /** A GET against the leader, failing over to the next URL while one does not answer or answers 5xx. */
  private async send<T extends Buffer | Readable>(path: string, responseType: 'arraybuffer' | 'stream'): Promise<{ res: AxiosResponse<T>; url: string }> {
    let lastError = 'no Marathon URL configured';
    for (let n = 0; n < this.urls.length; n++) {
      const i = (this.current + n) % this.urls.length;
      const base = this.urls[i]!;
      let res: AxiosResponse<T> | undefined;
      try {
        res = await this.http.get<T>(base + path, { responseType });
      } catch (err) {
        lastError = `${base}${path}: ${describe(err)}`;
      }
      if (unreachable(res)) {
        if (res) {
          lastError = `${base}${path}: HTTP ${res.status}`;
          if (!Buffer.isBuffer(res.data)) res.data.destroy();
        }
        this.opts.metrics?.marathonErrors.inc({ kind: 'unreachable' });
        this.log.warn({ url: base + path, err: lastError }, 'Marathon did not answer');
        continue;
      }
      if (i !== this.current) {
        this.log.warn({ from: this.baseUrl, to: base }, 'failed over to another Marathon');
        this.current = i;
      }
      return { res: res!, url: base };
    }
    throw new CiEdgeError('E_MARATHON_UNREACHABLE', [lastError]);
  }

  private checkStatus(res: MarathonReply, path: string): void {
    if (res.status < 300) return;
    this.opts.metrics?.marathonErrors.inc({ kind: 'status' });
    throw new CiEdgeError('E_MARATHON_BAD_RESPONSE', [`${path}: HTTP ${res.status} ${this.bodyMessage(res)}`]);
  }

  /** Runs a parse; bad JSON is counted and reported as Marathon's malformed answer. */
  private parsing<T>(path: string, parse: () => T): T {
    try {
      return parse();
    } catch (err) {
      if (err instanceof CiEdgeError) throw err;
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

function toReply(status: number, raw: Buffer): MarathonReply {
  return { status, text: decodeBody(raw) };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function describe(err: unknown): string {
  if (axios.isAxiosError(err)) return err.code === 'ECONNABORTED' ? `timeout (${err.message})` : (err.code ?? err.message);
  return err instanceof Error ? err.message : String(err);
}
