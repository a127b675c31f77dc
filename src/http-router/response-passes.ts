import type { IncomingHttpHeaders } from 'node:http';
import type { HttpExtension, ResponseContext } from '../extension.js';
import type { Logger } from '../log.js';
import type { Endpoint } from '../registry/types.js';
import { responseHeaders, rewriteResponseLocations, type OutgoingHeaders } from './headers.js';
import type { Job } from './proxy.js';
import { pathOnly } from './resolve.js';

/** What the response passes need to know about the exchange (both HTTP paths fill it in). */
export interface PassInput {
  readonly job: Job;
  readonly endpoint: Endpoint;
  readonly status: number;
  /** The request headers as forwarded (X-Forwarded-Host holds the authority the client used). */
  readonly requestHeaders: IncomingHttpHeaders;
  readonly upgrade: boolean;
}

export type ResponsePasses = (raw: IncomingHttpHeaders, p: PassInput) => OutgoingHeaders;

/**
 * An upstream response's headers as the client must see them, in one place for the http-proxy path and the
 * fast lane: hop-by-hop headers out, Location/Content-Location/Set-Cookie back under the public origin and
 * prefix, then the extensions' rewrites (JNLP advertisement, X-SSH-Endpoint) on master routes.
 */
export function createResponsePasses(extensions: readonly HttpExtension[], log: Logger): ResponsePasses {
  return (raw, p) => {
    const job = p.job;
    const headers = responseHeaders(raw, p.upgrade);
    rewriteResponseLocations(headers, {
      publicAuthority: (p.requestHeaders['x-forwarded-host'] as string | undefined) ?? '',
      proto: job.proto,
      prefix: job.pathRouted && job.target.route.stripPrefix ? job.target.route.path : '',
      endpoint: p.endpoint,
    });
    headers['x-request-id'] = job.id;
    if (job.target.route.kind !== 'master' || extensions.length === 0) return headers;
    const ctx: ResponseContext = {
      route: job.target.route,
      requestHeaders: p.requestHeaders,
      clientAddress: job.client,
      upstreamPath: pathOnly(job.upstreamPath),
      statusCode: p.status,
      publicHost: job.publicHost,
      pathRouted: job.pathRouted,
    };
    for (const ext of extensions) {
      try {
        ext.rewriteResponse?.(ctx, headers);
      } catch (err) {
        log.error({ extension: ext.name, err }, 'extension rewriteResponse threw');
      }
    }
    return headers;
  };
}
