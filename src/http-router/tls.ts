import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { CiEdgeError } from '../errors.js';

/**
 * SNI over several certificate/key files (issue #3: "a wildcard per domain"). Each certificate is indexed by
 * the DNS names it carries (subjectAltName, else CN); the first file is the default for clients without SNI
 * or with an unknown name.
 */
export interface SniContexts {
  readonly defaultContext: { cert: Buffer; key: Buffer };
  readonly names: readonly string[];
  select(servername: string): SecureContext;
}

export function loadSniContexts(files: readonly { readonly cert: string; readonly key: string }[]): SniContexts {
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  let first: { cert: Buffer; key: Buffer; ctx: SecureContext } | null = null;
  const names: string[] = [];
  for (const f of files) {
    let cert: Buffer;
    let key: Buffer;
    let ctx: SecureContext;
    let dnsNames: string[];
    try {
      cert = readFileSync(f.cert);
      key = readFileSync(f.key);
      ctx = createSecureContext({ cert, key });
      dnsNames = namesOf(new X509Certificate(cert));
    } catch (err) {
      throw new CiEdgeError('E_CONFIG_INVALID', [`http.https.certs: cannot load ${f.cert} / ${f.key}: ${(err as Error).message}`], { cause: err });
    }
    first ??= { cert, key, ctx };
    for (const n of dnsNames) {
      names.push(n);
      if (n.startsWith('*.')) {
        if (!wildcard.has(n.slice(2))) wildcard.set(n.slice(2), ctx);
      } else if (!exact.has(n)) exact.set(n, ctx);
    }
  }
  if (!first) throw new CiEdgeError('E_CONFIG_INVALID', ['http.https.certs: needs at least one { cert, key }']);
  const fallback = first.ctx;
  return {
    defaultContext: { cert: first.cert, key: first.key },
    names,
    select(servername) {
      const name = servername.toLowerCase();
      const hit = exact.get(name);
      if (hit) return hit;
      // A wildcard covers exactly one label (RFC 6125 §6.4.3): `*.pse.example.com` matches `master1.pse.example.com`.
      const dot = name.indexOf('.');
      return (dot > 0 ? wildcard.get(name.slice(dot + 1)) : undefined) ?? fallback;
    },
  };
}

function namesOf(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (san) {
    const dns = san
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.startsWith('DNS:'))
      .map((s) => s.slice(4).toLowerCase());
    if (dns.length > 0) return dns;
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  return cn ? [cn.toLowerCase()] : [];
}
