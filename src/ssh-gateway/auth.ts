import { readFileSync, statSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { AuthContext, ParsedKey } from 'ssh2';
import type { SshConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { fingerprintOf } from './host-keys.js';

/** Who got in, for the audit line of every tunnel on this connection. */
export interface ClientIdentity {
  readonly user: string;
  readonly method: string;
  /** `SHA256:…` of the key the client proved it holds, or null (policy `open` without a key). */
  readonly keyFingerprint: string | null;
}

export interface AuthPolicy {
  /** Decides one authentication request; calls back with the identity once the client is accepted. */
  handle(ctx: AuthContext, accepted: (who: ClientIdentity) => void): void;
}

/**
 * `open` (the default): any client gets in, because the gateway only ever opens a byte pipe to a master's
 * SSH server and the master authenticates the inner session itself (issue #4). `none` is accepted so batch
 * clients without keys work; a client that offers a key anyway must still prove it holds it, so a logged
 * fingerprint is never a claim.
 *
 * `keys`: publickey only, against an authorized_keys file, re-read when it changes on disk.
 */
export function createAuthPolicy(ssh: SshConfig, log: Logger): AuthPolicy {
  const keys = ssh.auth === 'keys' ? new AuthorizedKeys(ssh.authorizedKeys!, log) : null;
  if (keys) keys.current(); // a missing or unreadable file is an error at start, not at the first login
  return {
    handle(ctx, accepted) {
      if (ctx.method === 'publickey') {
        const blob = ctx.key.data;
        if (keys && !keys.current().some((k) => k.equals(blob))) return ctx.reject(['publickey']);
        if (!ctx.signature || !ctx.blob) return ctx.accept(); // the "would you accept this key" query (RFC 4252 §7)
        const parsed = ssh2.utils.parseKey(blob);
        if (parsed instanceof Error || Array.isArray(parsed)) return ctx.reject(['publickey']);
        if (parsed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey']);
        accepted({ user: ctx.username, method: 'publickey', keyFingerprint: fingerprintOf(blob) });
        return ctx.accept();
      }
      if (!keys && (ctx.method === 'none' || ctx.method === 'password')) {
        accepted({ user: ctx.username, method: ctx.method, keyFingerprint: null });
        return ctx.accept();
      }
      ctx.reject(keys ? ['publickey'] : ['none', 'publickey', 'password']);
    },
  };
}

/** An authorized_keys file: one key per line, `#` comments, OpenSSH options before the key type ignored. */
export class AuthorizedKeys {
  private mtimeMs = -1;
  private size = -1;
  private keys: ParsedKey[] = [];

  constructor(
    private readonly path: string,
    private readonly log: Logger,
  ) {}

  /** The keys as the file says now; parsed again only when its mtime or size changed. */
  current(): readonly ParsedKey[] {
    const st = statSync(this.path);
    if (st.mtimeMs !== this.mtimeMs || st.size !== this.size) {
      this.keys = parseAuthorizedKeys(readFileSync(this.path, 'utf8'), (line, why) => this.log.warn({ path: this.path, line, why }, 'authorized_keys line skipped'));
      this.mtimeMs = st.mtimeMs;
      this.size = st.size;
      this.log.info({ path: this.path, keys: this.keys.length }, 'authorized keys loaded');
    }
    return this.keys;
  }
}

const keyType = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)$/;

export function parseAuthorizedKeys(text: string, skipped: (line: number, why: string) => void = () => {}): ParsedKey[] {
  const out: ParsedKey[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    // Options (`no-pty,from="…" ssh-ed25519 AAAA…`) may contain quoted spaces; the key starts at its type.
    const tokens = line.split(/\s+/);
    const at = tokens.findIndex((t) => keyType.test(t));
    if (at === -1 || !tokens[at + 1]) return skipped(i + 1, 'no key type and key');
    const parsed = ssh2.utils.parseKey(`${tokens[at]} ${tokens[at + 1]}`);
    if (parsed instanceof Error || Array.isArray(parsed)) return skipped(i + 1, parsed instanceof Error ? parsed.message : 'several keys');
    out.push(parsed);
  });
  return out;
}
