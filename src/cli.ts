import { parseArgs } from 'node:util';
import { loadConfig } from './config/loader.js';
import { isCiEdgeError } from './errors.js';
import { startGateway } from './gateway.js';
import { createLogger } from './log.js';

export const usage = `Usage: ci-edge --config FILE [options]

The front door of a Jenkins-on-Mesos cluster: HTTP router, SSH gateway and JNLP discovery,
fed live by Marathon (or by the static routes of the file).

Options:
  -c, --config FILE   configuration file (YAML); see README "Configuration reference"
      --check         validate the configuration, print the effective config and exit
      --pretty        human-readable logs (the default when stdout is a terminal)
      --log-level L   fatal, error, warn, info, debug, trace or silent
  -h, --help          show this help
  -v, --version       print the version

Environment: CI_EDGE_MARATHON_URLS, CI_EDGE_MARATHON_BASIC, CI_EDGE_MARATHON_TOKEN, CI_EDGE_DOMAINS,
CI_EDGE_HTTP_LISTEN, CI_EDGE_SSH_LISTEN, CI_EDGE_SSH_HOST_KEYS, CI_EDGE_ADMIN_LISTEN, CI_EDGE_LOG_LEVEL.
Signals: SIGTERM/SIGINT drain and stop; SIGHUP reloads the configuration.
`;

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

const defaultIo: CliIo = { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) };

/** Returns the exit code once the gateway has stopped (or at once for --help, --check and errors). */
export async function runCli(argv: string[] = process.argv.slice(2), io: CliIo = defaultIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        check: { type: 'boolean' },
        pretty: { type: 'boolean' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
      strict: true,
    }));
  } catch (err) {
    io.stderr(`ci-edge: ${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  if (values.help) {
    io.stdout(usage);
    return 0;
  }
  if (values.version) {
    io.stdout(`${process.env['npm_package_version'] ?? '0.1.0'}\n`);
    return 0;
  }
  if (!values.config) {
    io.stderr(`ci-edge: --config FILE is required\n\n${usage}`);
    return 2;
  }
  const file = values.config;
  let config;
  try {
    config = await loadConfig(file);
  } catch (err) {
    io.stderr(`ci-edge: ${isCiEdgeError(err) ? err.message : String(err)}\n`);
    return 1;
  }
  if (values.check) {
    io.stdout(`${file}: OK\n`);
    return 0;
  }
  const log = createLogger({ level: values['log-level'] ?? config.log.level, pretty: values.pretty ?? config.log.pretty ?? undefined });
  log.info({ config: { ...config, source: file } }, 'effective configuration');
  let gateway;
  try {
    gateway = await startGateway(config, { log, reloadConfig: () => loadConfig(file), logLevelPinned: values['log-level'] !== undefined });
  } catch (err) {
    log.fatal({ err: isCiEdgeError(err) ? err.message : err, code: isCiEdgeError(err) ? err.code : undefined }, 'cannot start');
    io.stderr(`ci-edge: ${isCiEdgeError(err) ? err.message : String(err)}\n`);
    log.flush?.();
    return 1;
  }
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'signal received');
      gateway.close().then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    // A bad file is refused inside reload (logged with the reason); the running configuration stays.
    process.on('SIGHUP', () => {
      log.info({ signal: 'SIGHUP' }, 'signal received: reloading the configuration');
      void gateway.reload();
    });
  });
}
