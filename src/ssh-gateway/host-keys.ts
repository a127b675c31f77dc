import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';
import { CiEdgeError } from '../errors.js';
import type { Logger } from '../log.js';

export interface HostKey {
  readonly path: string;
  readonly type: string;
  /** `SHA256:…` exactly as `ssh-keygen -l` and the client's "host key fingerprint is" line print it. */
  readonly fingerprint: string;
  /** The private key file's text, for ssh2's `hostKeys`. */
  readonly pem: Buffer;
  readonly generated: boolean;
}

/** OpenSSH's fingerprint format: base64 of SHA-256 over the public key blob, without `=` padding. */
export function fingerprintOf(publicBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Loads every configured host key, generating an ed25519 key (mode 0600, OpenSSH format, with a `.pub`
 * beside it) where the file does not exist yet. Several instances behind one DNS name share these files so
 * clients see one host key (issue #4); two starting at once must not each write their own key, so the new
 * key is written to a private temp file and hard-linked into place, which fails if another instance won.
 */
export function loadHostKeys(paths: readonly string[], log: Logger): HostKey[] {
  return paths.map((path) => {
    let generated = false;
    let pem: Buffer;
    try {
      pem = readFileSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CiEdgeError('E_SSH_HOST_KEY', [`${path}: ${(err as Error).message}`], { cause: err });
      generated = generateInto(path);
      pem = readFileSync(path);
    }
    const parsed = ssh2.utils.parseKey(pem);
    if (parsed instanceof Error || Array.isArray(parsed) || !parsed.isPrivateKey()) {
      throw new CiEdgeError('E_SSH_HOST_KEY', [`${path}: not an unencrypted private key (${parsed instanceof Error ? parsed.message : 'public key or several keys'})`]);
    }
    const key: HostKey = { path, type: parsed.type, fingerprint: fingerprintOf(parsed.getPublicSSH()), pem, generated };
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) log.warn({ path, mode: mode.toString(8) }, 'SSH host key is readable by others; it should be 0600');
    log.info({ path, type: key.type, fingerprint: key.fingerprint, generated }, generated ? 'SSH host key generated' : 'SSH host key loaded');
    return key;
  });
}

/**
 * ssh2 1.17's generator drops a leading zero byte of the ed25519 public key (it encodes it like a bignum), so
 * one key in 256 comes out 31 bytes long and its own parser rejects the file ("Malformed OpenSSH private
 * key"; 13 of 3000 here). Such a key is thrown away and another drawn; 8 tries fail with odds of 2^-64.
 */
function generateEd25519(): { private: string; public: string } {
  for (let attempt = 0; attempt < 8; attempt++) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'ci-edge host key' });
    if (!(ssh2.utils.parseKey(pair.private) instanceof Error)) return pair;
  }
  throw new CiEdgeError('E_SSH_HOST_KEY', ['cannot generate a valid ed25519 key']);
}

/** Returns true if this call created the key, false if another process created it first. */
function generateInto(path: string): boolean {
  const pair = generateEd25519();
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new CiEdgeError('E_SSH_HOST_KEY', [`${path}: ${(err as Error).message}`], { cause: err });
  }
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, pair.private, { mode: 0o600, flag: 'wx' });
    chmodSync(tmp, 0o600); // the umask may have narrowed it further, never widened; be exact
    try {
      linkSync(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    writeFileSync(`${path}.pub`, `${pair.public}\n`, { mode: 0o644 });
    return true;
  } catch (err) {
    throw new CiEdgeError('E_SSH_HOST_KEY', [`${path}: ${(err as Error).message}`], { cause: err });
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  }
}
