import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const root = join(import.meta.dirname, '..', '..');

/**
 * Runs the real bin (`src/main.ts`) in a child process through tap's own TypeScript loader, so the test
 * needs no build step and cannot race another test writing dist/. Outside tap it runs dist/src/main.js.
 */
export function spawnCiEdge(args: string[], env: NodeJS.ProcessEnv = {}) {
  const loader = process.execArgv.find((a) => a.includes('@tapjs/typescript'));
  const argv = loader ? [loader, join(root, 'src', 'main.ts'), ...args] : [join(root, 'dist', 'src', 'main.js'), ...args];
  const child: ChildProcess = spawn(process.execPath, argv, {
    cwd: root,
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  const waiters: { match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { msg: text };
    }
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.match(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    lines,
    stderr: () => stderr,
    exited,
    /** The first log line (past or future) whose `msg` matches, or a rejection after `timeoutMs`. */
    waitFor(msg: string | RegExp, timeoutMs = 30_000, extra: (l: Record<string, unknown>) => boolean = () => true) {
      const match = (l: Record<string, unknown>) => (typeof msg === 'string' ? l['msg'] === msg : msg.test(String(l['msg']))) && extra(l);
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise<Record<string, unknown>>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no log line "${String(msg)}" within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
        timer.unref();
        waiters.push({ match, resolve: (l) => { clearTimeout(timer); resolve(l); } });
        void exited.then(() => { clearTimeout(timer); reject(new Error(`exited before "${String(msg)}"; stderr: ${stderr}`)); });
      });
    },
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** The port a listener logged (`"address":"127.0.0.1:40123"`). */
export function portOf(line: Record<string, unknown>): number {
  return Number(String(line['address']).split(':').pop());
}
