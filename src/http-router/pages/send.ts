import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Page } from './pages.js';

/** Writes a page as a complete response; HEAD gets the headers only (RFC 9110 §9.3.2). */
export function sendPage(res: ServerResponse, page: Page, head: boolean): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(page.body);
  // Set one by one, not passed to writeHead: the access log reads content-length back with getHeader.
  for (const [k, v] of Object.entries(page.headers)) res.setHeader(k, v);
  res.setHeader('content-length', body.length);
  res.writeHead(page.status);
  res.end(head ? undefined : body);
}

/**
 * A page on a raw socket (upgrade requests, parse errors, the fast lane): the connection closes after it.
 * A HEAD request gets the headers only.
 */
export function writeRawPage(socket: Duplex, page: Page, head = false, requestId?: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = Buffer.from(page.body);
  let lines = `HTTP/1.1 ${page.status} ${STATUS_CODES[page.status] ?? ''}\r\n`;
  for (const [k, v] of Object.entries(page.headers)) lines += `${k}: ${v}\r\n`;
  if (requestId !== undefined) lines += `x-request-id: ${requestId}\r\n`;
  lines += `content-length: ${body.length}\r\nconnection: close\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(lines, 'latin1'), head ? Buffer.alloc(0) : body]));
}

export function redirect(res: ServerResponse, status: 301 | 308, location: string): void {
  res.writeHead(status, { location, 'content-length': '0', 'cache-control': 'no-store' });
  res.end();
}
