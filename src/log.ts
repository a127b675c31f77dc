import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { LineBatch } from './log-batch.js';

export type { Logger } from 'pino';

export interface LogOptions {
  level?: string;
  /** Human-readable lines (pino-pretty); the default when stdout is a terminal. */
  pretty?: boolean;
  /** Where lines go; tests pass a sink to assert structured lines, benchmarks a batch like production's. */
  destination?: DestinationStream;
}

/** Secrets that may appear in the effective config or request headers never reach the log. */
export const redactPaths = [
  'config.marathon.auth.basic',
  'config.marathon.auth.token',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers["secret-key"]',
];

let stampedAt = 0;
let stamp = '';

/**
 * pino's ISO `time`, formatted once per millisecond: the router writes several access-log lines per
 * millisecond under load, and `toISOString` was the largest single cost of a line (bench:http).
 */
function isoTimeByMillisecond(): string {
  const now = Date.now();
  if (now !== stampedAt) {
    stampedAt = now;
    stamp = `,"time":"${new Date(now).toISOString()}"`;
  }
  return stamp;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? process.env['CI_EDGE_LOG_LEVEL'] ?? 'info',
    base: { name: 'ci-edge' },
    redact: { paths: redactPaths, censor: '[redacted]' },
    timestamp: isoTimeByMillisecond,
  };
  if (opts.destination) return pino(options, opts.destination);
  if (opts.pretty ?? process.stdout.isTTY) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true } } });
  }
  // Asynchronous writes in 4 KiB batches: a synchronous write per access-log line cost the router 10-15 % of
  // its throughput (bench:http). The batches are joined before sonic-boom (log-batch.ts); both are flushed
  // on exit.
  const logger = pino(options, new LineBatch(pino.destination({ dest: 1, sync: false, minLength: 0 }), 1, 4096));
  // A quiet gateway must not sit on its last lines: flush at least once a second.
  setInterval(() => logger.flush(), 1000).unref();
  return logger;
}

/** A logger that drops everything, for tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
