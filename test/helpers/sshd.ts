/**
 * A real OpenSSH server for the SSH gateway's tests and bench: its own config, host key and authorized key
 * in a temp dir, on 127.0.0.1:<free port>. It plays a Jenkins master's built-in SSH server (issue #4), so
 * tests prove the gateway with real OpenSSH on both ends instead of ssh2 talking to itself.
 *
 * Also the `ssh` client side: a temp identity and `runSsh()` that runs /usr/bin/ssh with a bounded time.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/schema.js';
import type { Config } from '../../src/config/types.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import type { RegistryView } from '../../src/registry/types.js';
import type { Deps, FrontDoor } from '../../src/service.js';
import { createSshGateway } from '../../src/ssh-gateway/server.js';
import { freePort } from './ports.js';

export const SSH = '/usr/bin/ssh';
export const SSHD = '/usr/sbin/sshd';

export interface KeyPair {
  /** Private key file (OpenSSH format, mode 0600). */
  readonly path: string;
  /** The `ssh-ed25519 AAAA… comment` line. */
  readonly publicLine: string;
}

/** `ssh-keygen -t ed25519` into `path` (and `path.pub`), no passphrase. */
export function keygen(path: string, comment = 'ci-edge-test'): KeyPair {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path], { stdio: 'ignore' });
  return { path, publicLine: readFileSync(`${path}.pub`, 'utf8').trim() };
}

export { freePort };

/** Resolves once something on the port sends an SSH banner; bounded in attempts. */
export async function waitForBanner(port: number, attempts = 100): Promise<string> {
  for (let i = 0; i < attempts; i++) {
    const banner = await new Promise<string | null>((resolve) => {
      const sock = connect(port, '127.0.0.1');
      let buf = '';
      const done = (v: string | null) => {
        sock.destroy();
        resolve(v);
      };
      sock.setTimeout(1000, () => done(null));
      sock.on('data', (d) => {
        buf += d.toString('latin1');
        const nl = buf.indexOf('\n');
        if (nl !== -1) done(buf.slice(0, nl).trim());
      });
      sock.on('error', () => done(null));
      sock.on('close', () => done(null));
    });
    if (banner?.startsWith('SSH-')) return banner;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no SSH banner on 127.0.0.1:${port}`);
}

export interface Sshd {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly dir: string;
  /** The listening sshd's pid (its per-connection children are reaped into its cutime/cstime). */
  readonly pid: number;
  /** The client key its authorized_keys accepts. */
  readonly identity: KeyPair;
  /** The user to log in as (whoever runs the tests; root in CI, hence `PermitRootLogin prohibit-password`). */
  readonly user: string;
  /** What sshd wrote on stderr (`-e`), for failure messages. */
  stderr(): string;
  /** Stops sshd and keeps its directory (a master moving: start another on the same keys). */
  stop(): Promise<void>;
  /** Stops sshd and removes its directory unless it was given one. */
  close(): Promise<void>;
}

export interface SshdOptions {
  /** Port to listen on (default: a free one). */
  port?: number;
  /** Reuse a directory (keys stay the same across a restart on another port). */
  dir?: string;
  /** More `sshd_config` lines (`AllowTcpForwarding yes` for a jump host). */
  extraConfig?: readonly string[];
}

/** Starts `sshd -D -e -f <cfg>` and resolves once it answers with its banner. Close it in t.teardown. */
export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  try {
    mkdirSync('/run/sshd', { recursive: true }); // privilege separation directory sshd checks for when root
  } catch {
    // not root: sshd does not need it
  }
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'ci-edge-sshd-'));
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  const idPath = join(dir, 'id_ed25519');
  let identity: KeyPair;
  try {
    identity = { path: idPath, publicLine: readFileSync(`${idPath}.pub`, 'utf8').trim() };
    readFileSync(hostKey);
  } catch {
    keygen(hostKey, 'sshd-host');
    identity = keygen(idPath);
    writeFileSync(join(dir, 'authorized_keys'), `${identity.publicLine}\n`, { mode: 0o600 });
  }
  let lastError: Error | null = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = opts.port ?? (await freePort());
    const cfg = join(dir, `sshd_config.${port}`);
    writeFileSync(
      cfg,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey}`,
        'PidFile none',
        'UsePAM no',
        'StrictModes no',
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        // 20 tunnels at once must not meet sshd's default 10:30:100 random early drop.
        'MaxStartups 200',
        'MaxSessions 200',
        'LogLevel ERROR',
        ...(opts.extraConfig ?? []),
        '',
      ].join('\n'),
    );
    const proc = spawn(SSHD, ['-D', '-e', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-8192)));
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    try {
      await Promise.race([waitForBanner(port), exited.then(() => Promise.reject(new Error(`sshd exited: ${err.trim()}`)))]);
    } catch (e) {
      proc.kill('SIGKILL');
      lastError = e as Error;
      if (opts.port !== undefined) break;
      continue;
    }
    const stop = async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await exited;
      }
    };
    return {
      host: '127.0.0.1',
      port,
      dir,
      pid: proc.pid!,
      identity,
      user: userInfo().username,
      stderr: () => err,
      stop,
      close: async () => {
        await stop();
        if (!opts.dir) rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  throw lastError ?? new Error('sshd did not start');
}

export interface SshResult {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

export interface RunOptions {
  /** Bytes for ssh's stdin (default: none, stdin closed). */
  input?: Buffer | string;
  /** Pipe this file into stdin instead. */
  inputFile?: string;
  /** Kill after this long (default 20 s): every test's ssh is bounded in time. */
  timeoutMs?: number;
}

/** Runs `ssh <args>` to completion. Never rejects: the exit code and stderr are what tests assert. */
export function runSsh(args: readonly string[], opts: RunOptions = {}): Promise<SshResult> {
  return runProcess(SSH, args, opts);
}

export function runProcess(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<SshResult> {
  return new Promise((resolve) => {
    const proc: ChildProcess = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    proc.stdout!.on('data', (d: Buffer) => out.push(d));
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    proc.stdin!.on('error', () => {});
    const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
    if (opts.inputFile) {
      createReadStream(opts.inputFile).pipe(proc.stdin!);
    } else {
      proc.stdin!.end(opts.input ?? '');
    }
  });
}

/** Options every test ssh gets: no user config, no prompts, no known_hosts writes, quiet. */
export function baseSshOptions(identity: string, logLevel = 'ERROR'): string[] {
  return [
    '-F', '/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', `LogLevel=${logLevel}`,
    '-o', 'ConnectTimeout=10',
    '-o', `IdentityFile=${identity}`,
    '-o', 'IdentitiesOnly=yes',
  ];
}

/**
 * A ssh_config file for `-J` runs: ProxyJump starts a second ssh that does not inherit `-o` options, only
 * `-F`, so the jump hop's BatchMode and known-hosts settings must live in a file.
 */
export function writeJumpConfig(dir: string, identity: string, extra: readonly string[] = []): string {
  const path = join(dir, `ssh_config.${process.pid}.${Math.random().toString(36).slice(2)}`);
  writeFileSync(
    path,
    [
      'Host *',
      '  BatchMode yes',
      '  StrictHostKeyChecking no',
      '  UserKnownHostsFile /dev/null',
      '  LogLevel ERROR',
      '  ConnectTimeout 10',
      `  IdentityFile ${identity}`,
      '  IdentitiesOnly yes',
      ...extra.map((l) => `  ${l}`),
      '',
    ].join('\n'),
  );
  return path;
}

export interface TestGateway {
  readonly port: number;
  readonly frontDoor: FrontDoor;
  readonly metrics: Metrics;
  readonly config: Config;
  close(deadline?: number): Promise<void>;
}

/**
 * The SSH gateway alone, on 127.0.0.1:0, over a given registry (ManualSource or Marathon simulator).
 * `ssh` is the raw `ssh:` config section, merged over loopback + a temp host key.
 */
export async function startTestSshGateway(registry: RegistryView, ssh: Record<string, unknown> = {}, log: Logger = silentLogger()): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'ci-edge-gw-'));
  const config = parseConfig({
    domains: ['pse.example.com'],
    ssh: { listen: '127.0.0.1:0', domain: 'ci.example.com', hostKeys: [join(dir, 'host_key')], ...ssh },
  });
  const metrics = createMetrics();
  const deps: Deps = {
    registry,
    log,
    metrics,
    httpExtensions: [],
    config,
    lifecycle: { isDraining: () => false, reload: async () => ({ ok: false, error: 'not in tests' }) },
  };
  const frontDoor = createSshGateway(config, deps);
  await frontDoor.start();
  return {
    port: frontDoor.addresses()['ssh']!.port,
    frontDoor,
    metrics,
    config,
    close: async (deadline) => {
      await frontDoor.close(deadline ?? Date.now());
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `-o ProxyCommand=ssh … tunnel %h`, the issue's ~/.ssh/config line with the test's options. */
export function proxyCommand(gwPort: number, identity: string, extra = ''): string {
  return `${SSH} -q -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentityFile=${identity} -o IdentitiesOnly=yes ${extra} -p ${gwPort} 127.0.0.1 tunnel %h`;
}

/**
 * Opens a tunnel to `target` through the gateway on `port` and holds it (ssh with stdin open keeps the channel
 * and the inner banner exchange alive); resolves once the master's banner came through. `release` ends it.
 */
export async function holdTunnel(t: { teardown(fn: () => unknown): void }, identity: string, port: number, target = 'master1'): Promise<{ release(): Promise<void> }> {
  const holder = spawn(SSH, [...baseSshOptions(identity), '-p', String(port), '127.0.0.1', 'tunnel', target], { stdio: ['pipe', 'pipe', 'ignore'] });
  t.teardown(() => {
    holder.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no banner through the held tunnel')), 15_000);
    holder.stdout.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return {
    release: async () => {
      holder.stdin.end();
      await new Promise((r) => holder.once('close', r));
    },
  };
}
