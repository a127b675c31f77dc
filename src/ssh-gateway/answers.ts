import { isCiEdgeError, type ErrorCode } from '../errors.js';

/** RFC 4254 §5.1 channel open failure reason codes. */
export const OPEN_FAILURE = { prohibited: 1, connectFailed: 2, resourceShortage: 4 } as const;

export interface Answer {
  /** The stderr line (`exec tunnel`) or open-failure description (direct-tcpip), without newline. */
  readonly line: string;
  /** Exit status of `exec`: 1 refused or failed, 2 usage. */
  readonly status: 1 | 2;
  readonly openFailure: (typeof OPEN_FAILURE)[keyof typeof OPEN_FAILURE];
  /** Metric label and audit `end`. */
  readonly reason: ErrorCode | 'E_INTERNAL';
}

/**
 * The one place an error code becomes the SSH gateway's answer (DESIGN.md "Conventions"). Every line starts
 * with `ci-edge:` because it lands in the user's terminal next to ssh's own messages, and says who spoke.
 */
export function answerFor(err: unknown): Answer {
  if (!isCiEdgeError(err)) return { line: 'ci-edge: internal error', status: 1, openFailure: OPEN_FAILURE.connectFailed, reason: 'E_INTERNAL' };
  const line = `ci-edge: ${err.message}`;
  switch (err.code) {
    case 'E_SSH_USAGE':
      return { line, status: 2, openFailure: OPEN_FAILURE.prohibited, reason: err.code };
    case 'E_SSH_LIMIT':
      return { line, status: 1, openFailure: OPEN_FAILURE.resourceShortage, reason: err.code };
    case 'E_NO_HEALTHY_ENDPOINT':
    case 'E_ROUTES_LOADING':
    case 'E_UPSTREAM_REFUSED':
    case 'E_UPSTREAM_TIMEOUT':
    case 'E_UPSTREAM_RESET':
      return { line, status: 1, openFailure: OPEN_FAILURE.connectFailed, reason: err.code };
    default:
      // E_NO_ROUTE, E_SSH_FORBIDDEN_TARGET, E_SSH_FORBIDDEN_PORT: the open-proxy guard said no.
      return { line, status: 1, openFailure: OPEN_FAILURE.prohibited, reason: err.code };
  }
}
