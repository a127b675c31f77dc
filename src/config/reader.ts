import { CiEdgeError } from '../errors.js';
import type { ListenAddress } from './types.js';

/**
 * A cursor over untrusted YAML with the dotted path of where it is, so every message names the key:
 * `ssh.limits.idleTimeout: expected a duration like "30s", got "soon"`.
 */
export class Reader {
  constructor(
    readonly value: unknown,
    readonly path: string,
  ) {}

  fail(what: string): never {
    throw new CiEdgeError('E_CONFIG_INVALID', [`${this.path || '(top level)'}: ${what}`]);
  }

  private got(): string {
    return this.value === undefined ? 'nothing' : JSON.stringify(this.value);
  }

  get present(): boolean {
    return this.value !== undefined && this.value !== null;
  }

  /** An object whose keys must all be in `known`: a typo is an error, not silently ignored. */
  object(known: readonly string[]): Record<string, Reader> {
    if (typeof this.value !== 'object' || this.value === null || Array.isArray(this.value)) {
      this.fail(`expected a mapping, got ${this.got()}`);
    }
    const out: Record<string, Reader> = {};
    for (const k of Object.keys(this.value as Record<string, unknown>)) {
      if (!known.includes(k)) this.at(k).fail(`unknown key (known: ${known.join(', ')})`);
      out[k] = this.at(k);
    }
    for (const k of known) out[k] ??= this.at(k);
    return out;
  }

  /** A mapping with free keys (service names, labels). */
  entries(): [string, Reader][] {
    if (!this.present) return [];
    if (typeof this.value !== 'object' || Array.isArray(this.value)) this.fail(`expected a mapping, got ${this.got()}`);
    return Object.keys(this.value as object).map((k) => [k, this.at(k)]);
  }

  at(key: string | number): Reader {
    const v = this.present && typeof this.value === 'object' ? (this.value as Record<string, unknown>)[key] : undefined;
    return new Reader(v, typeof key === 'number' ? `${this.path}[${key}]` : this.path ? `${this.path}.${key}` : key);
  }

  list(): Reader[] {
    if (!this.present) return [];
    if (!Array.isArray(this.value)) this.fail(`expected a list, got ${this.got()}`);
    return this.value.map((_, i) => this.at(i));
  }

  string(fallback?: string): string {
    if (!this.present) return fallback ?? this.fail('is required');
    if (typeof this.value !== 'string' || this.value === '') this.fail(`expected a non-empty string, got ${this.got()}`);
    return this.value;
  }

  optionalString(): string | null {
    return this.present ? this.string() : null;
  }

  strings(fallback: readonly string[] = []): string[] {
    if (!this.present) return [...fallback];
    if (typeof this.value === 'string') return this.value.split(',').map((s) => s.trim()).filter(Boolean);
    return this.list().map((r) => r.string());
  }

  boolean(fallback: boolean): boolean {
    if (!this.present) return fallback;
    if (typeof this.value !== 'boolean') this.fail(`expected true or false, got ${this.got()}`);
    return this.value;
  }

  integer(fallback: number | undefined, min: number, max: number): number {
    if (!this.present) return fallback ?? this.fail('is required');
    const n = typeof this.value === 'string' && /^\d+$/.test(this.value) ? Number(this.value) : this.value;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
      this.fail(`expected a whole number from ${min} to ${max}, got ${this.got()}`);
    }
    return n;
  }

  oneOf<T extends string>(choices: readonly T[], fallback: T): T {
    if (!this.present) return fallback;
    if (!choices.includes(this.value as T)) this.fail(`expected one of ${choices.join(', ')}, got ${this.got()}`);
    return this.value as T;
  }

  /** `500ms`, `10s`, `1m`, `1h`, or a bare number of milliseconds. */
  duration(fallback: number): number {
    if (!this.present) return fallback;
    if (typeof this.value === 'number' && Number.isFinite(this.value) && this.value >= 0) return this.value;
    const m = typeof this.value === 'string' ? /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/.exec(this.value.trim()) : null;
    if (!m) this.fail(`expected a duration like "500ms", "10s" or "1m", got ${this.got()}`);
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    return Math.round(Number(m[1]) * unit);
  }

  /** `"0.0.0.0:8080"`, `"[::1]:8080"`, `":8080"` or a bare port. */
  listen(fallback?: string): ListenAddress {
    const raw = this.present ? this.value : fallback;
    if (typeof raw === 'number') return { host: '0.0.0.0', port: this.port(raw) };
    if (typeof raw !== 'string') return this.fail(`expected "host:port", got ${this.got()}`);
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d+)$/.exec(raw.trim());
    if (!m) this.fail(`expected "host:port", got ${this.got()}`);
    return { host: m[1] ?? (m[2] || '0.0.0.0'), port: this.port(Number(m[3])) };
  }

  /** `"host:port"` for an upstream endpoint. */
  hostPort(): { host: string; port: number } {
    const a = this.listen();
    if (a.host === '0.0.0.0') this.fail('expected "host:port" with a host');
    return a;
  }

  url(): string {
    const s = this.string();
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      return this.fail(`expected a URL like "http://host:8080", got ${this.got()}`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') this.fail(`expected an http or https URL, got ${this.got()}`);
    return s.replace(/\/+$/, '');
  }

  private port(n: number): number {
    if (!Number.isInteger(n) || n < 0 || n > 65535) this.fail(`port must be 0..65535, got ${n}`);
    return n;
  }
}
