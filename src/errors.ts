/**
 * The error catalogue. Every failure ci-edge reports carries one of these codes; each front door maps a
 * code to its own answer (HTTP status and page, SSH stderr line and exit status) in exactly one place.
 */
export const catalogue = {
  E_CONFIG_READ: 'cannot read configuration file %s',
  E_CONFIG_INVALID: 'invalid configuration: %s',
  E_NO_ROUTE: 'no master named "%s"',
  E_NO_HOST_ROUTE: 'no route for host "%s"',
  E_NO_HEALTHY_ENDPOINT: '%s is %s',
  E_ROUTES_LOADING: 'ci-edge is starting: the route table is not loaded yet (looking for "%s")',
  E_UPSTREAM_REFUSED: '%s refused the connection',
  E_UPSTREAM_TIMEOUT: '%s did not answer in time',
  E_UPSTREAM_RESET: '%s closed the connection',
  E_BAD_REQUEST: 'bad request: %s',
  E_MARATHON_UNREACHABLE: 'Marathon is unreachable: %s',
  E_MARATHON_BAD_RESPONSE: 'Marathon answered something unexpected: %s',
  E_MARATHON_NO_LEADER: 'no Marathon leader: %s',
  E_LEADER_UNKNOWN: 'cannot find the leader of %s: %s',
  E_SSH_USAGE: 'usage: tunnel <master>[.%s]',
  E_SSH_FORBIDDEN_TARGET: '%s is not a master; only masters can be reached',
  E_SSH_LIMIT: 'too many tunnels: %s',
  E_SSH_FORBIDDEN_PORT: '%s: only its SSH server can be reached (port 22), not port %s',
  E_SSH_HOST_KEY: 'cannot load SSH host key %s',
  E_JNLP_UNATTRIBUTED: 'cannot tell which master agent connection belongs to: %s',
  E_JNLP_DISABLED: '%s has its TCP agent listener disabled',
  E_JNLP_NO_ENDPOINT: '%s has no reachable agent port: %s',
  E_JNLP_LIMIT: 'agent connection refused: %s',
  E_LISTEN: 'cannot listen on %s',
} as const;

export type ErrorCode = keyof typeof catalogue;

function format(template: string, args: readonly unknown[]): string {
  let i = 0;
  return template.replace(/%s/g, () => String(args[i++] ?? ''));
}

export class CiEdgeError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, args: readonly unknown[] = [], options?: { cause?: unknown }) {
    super(format(catalogue[code], args), options);
    this.name = 'CiEdgeError';
    this.code = code;
  }
}

/** Shorthand: `fail('E_NO_ROUTE', name)`. */
export function fail(code: ErrorCode, ...args: unknown[]): CiEdgeError {
  return new CiEdgeError(code, args);
}

export function isCiEdgeError(err: unknown, code?: ErrorCode): err is CiEdgeError {
  return err instanceof CiEdgeError && (code === undefined || err.code === code);
}
