import type { ErrorCode } from '../../errors.js';

/**
 * The router's answer to each catalogued error, in one place (issue #3: "answers for what cannot be
 * routed"). 502 for a backend that refused or dropped the connection, 504 when it did not answer in time
 * (RFC 9110 §15.6.3, §15.6.5), 503 while a master starts (with Retry-After, §10.2.3).
 */
export const statusOf: Partial<Record<ErrorCode, number>> = {
  E_BAD_REQUEST: 400,
  E_NO_ROUTE: 404,
  E_NO_HOST_ROUTE: 404,
  E_NO_HEALTHY_ENDPOINT: 503,
  E_ROUTES_LOADING: 503,
  E_UPSTREAM_REFUSED: 502,
  E_UPSTREAM_RESET: 502,
  E_UPSTREAM_TIMEOUT: 504,
};

export const titles: Record<number, string> = {
  400: 'Bad request',
  404: 'Not found',
  502: 'Bad gateway',
  503: 'Not available yet',
  504: 'Gateway timeout',
};

/** Seconds a client should wait before asking again for a master that is starting (tasks stage in ~5-60 s). */
export const retryAfterSeconds = 5;
