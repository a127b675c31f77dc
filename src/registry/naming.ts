/**
 * Names: how a Host header, a URL path, an SSH target or a Marathon app id becomes a route name.
 * Route names are DNS labels (RFC 1123): lower-case letters, digits and inner hyphens, at most 63 chars.
 */

const label = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function isRouteName(s: string): boolean {
  return label.test(s);
}

/** `Master1.PSE.example.com.:8443` → `master1.pse.example.com`; IPv6 literals keep their brackets. */
export function normalizeHost(host: string | undefined): string {
  if (!host) return '';
  let h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end === -1 ? h : h.slice(0, end + 1);
  }
  const colon = h.indexOf(':');
  if (colon !== -1) h = h.slice(0, colon);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

export type HostMatch =
  | { readonly type: 'name'; readonly name: string; readonly domain: string }
  | { readonly type: 'domain'; readonly domain: string }
  | { readonly type: 'none' };

/**
 * `master1.pse.example.com` → name `master1` (domain routing); `pse.example.com` → the domain itself
 * (path routing). Deeper names (`a.b.pse.example.com`) match nothing: a route name is one label.
 */
export function matchHost(host: string, domains: readonly string[]): HostMatch {
  for (const domain of domains) {
    if (host === domain) return { type: 'domain', domain };
    if (host.length > domain.length + 1 && host.endsWith(domain) && host[host.length - domain.length - 1] === '.') {
      const name = host.slice(0, host.length - domain.length - 1);
      if (isRouteName(name)) return { type: 'name', name, domain };
    }
  }
  return { type: 'none' };
}

/** `/master1/job/x` → `{ name: 'master1', rest: '/job/x' }`; `/master1` → rest ''. */
export function matchPath(path: string): { readonly name: string; readonly rest: string } | null {
  if (!path.startsWith('/')) return null;
  const slash = path.indexOf('/', 1);
  const q = path.indexOf('?', 1);
  const end = slash === -1 ? (q === -1 ? path.length : q) : q !== -1 && q < slash ? q : slash;
  const name = path.slice(1, end).toLowerCase();
  if (!isRouteName(name)) return null;
  return { name, rest: path.slice(end) };
}

/**
 * The SSH gateway's target: `master1`, `master1.<sshDomain>` or `master1.<domain>`. Anything else (an IP
 * address, another host) is not a name and is refused without a lookup.
 */
export function sshTargetName(target: string, sshDomain: string | undefined, domains: readonly string[]): string | null {
  const host = normalizeHost(target);
  if (isRouteName(host) && !/^\d+$/.test(host)) return host;
  const all = sshDomain ? [sshDomain, ...domains] : domains;
  const m = matchHost(host, all);
  return m.type === 'name' ? m.name : null;
}

/** `/masters/master1` with group `/masters` → `master1`; apps outside the group → null. */
export function appIdToMasterName(appId: string, mastersGroup: string): string | null {
  const group = mastersGroup.endsWith('/') ? mastersGroup : `${mastersGroup}/`;
  if (!appId.startsWith(group)) return null;
  const rest = appId.slice(group.length).toLowerCase();
  // Nested groups (`/masters/team-a/master1`) use the last segment: names are one DNS label.
  const last = rest.split('/').filter(Boolean).pop();
  return last && isRouteName(last) ? last : null;
}
