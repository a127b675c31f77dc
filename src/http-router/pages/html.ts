/** HTML building blocks shared by the router's pages: the escaping function and one layout. */
import { escapeHtml } from '../../html.js';

export { escapeHtml };

/** `body` is already-escaped HTML. A refreshing page re-asks by itself (the 503 of a starting master). */
export function layout(title: string, body: string, refreshSeconds?: number): string {
  const refresh = refreshSeconds === undefined ? '' : `<meta http-equiv="refresh" content="${refreshSeconds}">`;
  return (
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8">${refresh}<title>${escapeHtml(title)} · ci-edge</title>` +
    '<style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:50rem;padding:0 1rem}' +
    'table{border-collapse:collapse}td,th{padding:.2rem .8rem;text-align:left;border-bottom:1px solid #ddd}' +
    '.running{color:#080}.starting{color:#a60}.unhealthy,.gone{color:#b00}</style></head>\n' +
    `<body>${body}</body></html>\n`
  );
}
