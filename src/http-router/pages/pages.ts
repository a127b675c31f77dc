import { CiEdgeError } from '../../errors.js';
import type { Route } from '../../registry/types.js';
import { escapeHtml, layout } from './html.js';
import { retryAfterSeconds, statusOf, titles } from './status.js';

/** What the router could not do, with just enough to explain it. Never carries an internal address. */
export type Problem =
  | { readonly code: 'E_NO_ROUTE'; readonly name: string; readonly index: string }
  | { readonly code: 'E_NO_HOST_ROUTE'; readonly host: string }
  | { readonly code: 'E_NO_HEALTHY_ENDPOINT'; readonly route: Route }
  | { readonly code: 'E_UPSTREAM_REFUSED' | 'E_UPSTREAM_RESET' | 'E_UPSTREAM_TIMEOUT' | 'E_ROUTES_LOADING'; readonly name: string }
  | { readonly code: 'E_BAD_REQUEST'; readonly reason: string };

export interface Page {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** JSON for API clients and scripts (`Accept: application/json`), HTML for browsers and everyone else. */
export function wantsJson(accept: string | undefined): boolean {
  return accept !== undefined && accept.includes('application/json');
}

/** `starting: task staging since 12:03`, the wording of the 503 ("master1 is starting: …"). */
export function stateText(route: Route): string {
  if (route.state === 'running') return 'unavailable: no healthy HTTP endpoint';
  return route.detail ? `${route.state}: ${route.detail}` : route.state;
}

function messageOf(p: Problem): string {
  switch (p.code) {
    case 'E_NO_ROUTE':
      return new CiEdgeError(p.code, [p.name]).message;
    case 'E_NO_HOST_ROUTE':
      return new CiEdgeError(p.code, [p.host]).message;
    case 'E_NO_HEALTHY_ENDPOINT':
      return new CiEdgeError(p.code, [p.route.name, stateText(p.route)]).message;
    case 'E_BAD_REQUEST':
      return new CiEdgeError(p.code, [p.reason]).message;
    default:
      return new CiEdgeError(p.code, [p.name]).message;
  }
}

export function problemStatus(p: Problem): number {
  return statusOf[p.code] ?? 500;
}

export function errorPage(p: Problem, json: boolean): Page {
  const status = problemStatus(p);
  const message = messageOf(p);
  const headers: Record<string, string> = { 'cache-control': 'no-store' };
  const retry = p.code === 'E_NO_HEALTHY_ENDPOINT' || p.code === 'E_ROUTES_LOADING';
  if (retry) headers['retry-after'] = String(retryAfterSeconds);
  if (json) {
    headers['content-type'] = 'application/json; charset=utf-8';
    const extra =
      p.code === 'E_NO_ROUTE'
        ? { index: p.index }
        : p.code === 'E_NO_HEALTHY_ENDPOINT'
          ? { route: p.route.name, state: p.route.state, ...(p.route.detail ? { detail: p.route.detail } : {}), retryAfter: retryAfterSeconds }
          : p.code === 'E_ROUTES_LOADING'
            ? { route: p.name, retryAfter: retryAfterSeconds }
            : 'name' in p
            ? { route: p.name }
            : {};
    return { status, headers, body: JSON.stringify({ status, error: p.code, message, ...extra }) };
  }
  headers['content-type'] = 'text/html; charset=utf-8';
  const title = titles[status] ?? 'Error';
  let body = `<h1>${status} ${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`;
  if (p.code === 'E_NO_ROUTE') body += `<p><a href="${escapeHtml(p.index)}">All masters</a></p>`;
  if (retry) body += `<p>This page reloads itself every ${retryAfterSeconds} seconds.</p>`;
  return { status, headers, body: layout(title, body, retry ? retryAfterSeconds : undefined) };
}

export interface IndexEntry {
  readonly name: string;
  readonly kind: string;
  readonly state: string;
  readonly detail?: string;
  /** Path-routed URL, `/master1/`. */
  readonly path: string;
}

/** `<domain>/`: every route with its path URL and its own host name (`<name>.<domain>`), and its state. */
export function indexPage(entries: readonly IndexEntry[], domain: string, portSuffix: string, json: boolean): Page {
  const headers: Record<string, string> = { 'cache-control': 'no-store' };
  if (json) {
    headers['content-type'] = 'application/json; charset=utf-8';
    const routes = entries.map((e) => ({
      name: e.name,
      kind: e.kind,
      state: e.state,
      ...(e.detail ? { detail: e.detail } : {}),
      url: e.path,
      hostUrl: `//${e.name}.${domain}${portSuffix}/`,
    }));
    return { status: 200, headers, body: JSON.stringify({ domain, routes }) };
  }
  headers['content-type'] = 'text/html; charset=utf-8';
  const rows = entries
    .map((e) => {
      const host = `${e.name}.${domain}`;
      return (
        `<tr><td><a href="${escapeHtml(e.path)}">${escapeHtml(e.name)}</a></td>` +
        `<td><a href="//${escapeHtml(host + portSuffix)}/">${escapeHtml(host)}</a></td><td>${escapeHtml(e.kind)}</td>` +
        `<td class="${escapeHtml(e.state)}">${escapeHtml(e.state)}${e.detail ? `: ${escapeHtml(e.detail)}` : ''}</td></tr>`
      );
    })
    .join('\n');
  const body =
    `<h1>${escapeHtml(domain)}</h1><p>${entries.length} routes</p>\n` +
    `<table><thead><tr><th>name</th><th>host</th><th>kind</th><th>state</th></tr></thead><tbody>\n${rows}\n</tbody></table>`;
  return { status: 200, headers, body: layout(domain, body) };
}
