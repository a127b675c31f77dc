/** What the benchmarks share: their Debian tools, and waiting for a reference server to listen. */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';

/** A tool a benchmark runs, and the Debian package that brings it when it is missing. */
export interface Tool {
  /** A command on PATH (or in /usr/sbin), or an absolute file path. */
  readonly needs: string;
  readonly pkg: string;
}

export const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

/** Installs the missing ones with apt-get (the bench machine is a Debian one, as CI's is). */
export function ensureTools(tools: readonly Tool[]): void {
  const present = (t: Tool) => (t.needs.startsWith('/') ? existsSync(t.needs) : spawnSync('sh', ['-c', `command -v ${t.needs} || test -x /usr/sbin/${t.needs}`]).status === 0);
  const missing = tools.filter((t) => !present(t)).map((t) => t.pkg);
  if (missing.length === 0) return;
  console.log(`installing ${missing.join(' ')} with apt-get`);
  execFileSync('apt-get', ['update'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', ...missing], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

export async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}
