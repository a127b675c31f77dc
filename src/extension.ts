import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Route } from './registry/types.js';

/**
 * A hook into the HTTP router that another front door provides, so that JNLP discovery can rewrite what
 * masters advertise without depending on the router module (services depend on registry and config only).
 */
export interface HttpExtension {
  readonly name: string;
  /** Answer a request ci-edge serves itself (`/_ci-edge/...`). Returns true when it took the request. */
  handleRequest?(req: IncomingMessage, res: ServerResponse): boolean;
  /**
   * Adjust a master's response headers in place before they reach the client. `publicHost` is the host the
   * client used (without port); `pathRouted` tells whether it came in as `<domain>/<name>/…`.
   */
  rewriteResponse?(ctx: ResponseContext, headers: Record<string, string | string[] | undefined>): void;
}

export interface ResponseContext {
  readonly route: Route;
  /** The client's request headers, as the router received them (both HTTP paths build this context). */
  readonly requestHeaders: IncomingHttpHeaders;
  /** Who sent the request: the peer, or behind a trusted load balancer the client it names (client-address.ts). */
  readonly clientAddress: string;
  /** Path as the master sees it (after any prefix strip), without the query. */
  readonly upstreamPath: string;
  readonly statusCode: number;
  readonly publicHost: string;
  readonly pathRouted: boolean;
}
