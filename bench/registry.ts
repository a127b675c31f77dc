/**
 * `npm run bench:registry`: the registry against a simulated Marathon of 2000 apps / 10,000 tasks (the seed's
 * cluster). The simulator runs in a child process so its serialization does not load the measured event loop.
 *
 * Measures, each next to its goal from issue #2:
 *   - full sync (GET /v2/apps?embed=apps.tasks → parse → map → Snapshot), against the reference of fetching and
 *     JSON.parse-ing the same body (the floor: nothing can sync faster than it reads);
 *   - heap after the sync (after a forced GC; run with --expose-gc, as bench/run.mjs does);
 *   - ready time: spawn `node dist/src/main.js --config <tmp yaml>`, poll GET /ready until 200;
 *   - event → `GET /routes/<name>` latency, p50/p99, over 200 moveTask events against that process.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { MarathonSource } from '../src/registry/marathon/source.js';
import { Registry } from '../src/registry/registry.js';
import { masterApp, startMarathonSim } from '../test/helpers/marathon-sim.js';
import { freePort } from '../test/helpers/ports.js';

const APPS = 2000;
const TASKS_PER_APP = 5;
const EVENTS = 200;
const now = () => performance.timeOrigin + performance.now();

function onceMessage<T>(child: ChildProcess, key: string): Promise<T> {
  return new Promise((resolve) => {
    const h = (m: Record<string, unknown>) => {
      if (key in m) {
        child.off('message', h);
        resolve(m[key] as T);
      }
    };
    child.on('message', h);
  });
}

/** Keep-alive, so polling costs the measured process one request each, not a TCP handshake too. */
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    }).on('error', reject);
  });
}


const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
const line = (what: string, value: string, goal: string, ok: boolean) => console.log(`${what.padEnd(34)} ${value.padStart(12)}   goal ${goal.padEnd(10)} ${ok ? 'ok' : 'MISSED'}`);

async function main(): Promise<void> {
  const simChild = fork(fileURLToPath(import.meta.url), ['--sim-child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const simUrl = await onceMessage<string>(simChild, 'url');
  const gc = (globalThis as { gc?: () => void }).gc;
  try {
    // Reference: the floor of a full sync, reading and parsing the same body.
    const refs: number[] = [];
    let bytes = 0;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const { body } = await httpGet(`${simUrl}/v2/apps?embed=apps.tasks`);
      const parsed = JSON.parse(body) as { apps: unknown[] };
      refs.push(performance.now() - t0);
      bytes = body.length;
      if (parsed.apps.length !== APPS) throw new Error('simulator served the wrong number of apps');
    }

    // Full sync through the real source and registry; the source logs `ms` per sync.
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({
      level: 'info',
      destination: new Writable({
        write(chunk: Buffer, _e, cb) {
          for (const l of chunk.toString().split('\n')) if (l.includes('"marathon sync"')) lines.push(JSON.parse(l) as Record<string, unknown>);
          cb();
        },
      }),
    });
    gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    const source = new MarathonSource({
      config: { urls: [simUrl], auth: null, mastersGroup: '/masters', resyncInterval: 3_600_000, requestTimeout: 10_000, eventsIdleTimeout: 30_000, reconnectBackoff: { min: 500, max: 30_000 }, coalesce: 5 },
      log,
      metrics: createMetrics(),
    });
    const registry = new Registry({ log }).add(source);
    await registry.start();
    await source.firstSync;
    while (source.syncing) await new Promise((r) => setTimeout(r, 5)); // the sync the stream attach asks for
    for (let i = 0; i < 5; i++) {
      source.fullSync('bench');
      while (source.syncing) await new Promise((r) => setTimeout(r, 1));
    }
    const syncs = lines.map((l) => l['ms'] as number);
    if (registry.current().routes.size !== APPS) throw new Error(`expected ${APPS} routes, got ${registry.current().routes.size}`);
    gc?.();
    const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    const heapTotalMb = process.memoryUsage().heapUsed / 2 ** 20;
    await registry.close();

    // Ready time and event latency against the real process.
    const dir = mkdtempSync(join(tmpdir(), 'ci-edge-bench-'));
    const adminPort = await freePort();
    const cfg = join(dir, 'bench.yaml');
    writeFileSync(cfg, `domains: [pse.example.com]\nmarathon:\n  urls: [${simUrl}]\nadmin: { listen: "127.0.0.1:${adminPort}" }\nlog: { level: warn }\n`);
    const admin = `http://127.0.0.1:${adminPort}`;
    const readyTimes: number[] = [];
    let gateway: ChildProcess | null = null;
    for (let run = 0; run < 3; run++) {
      const t0 = performance.now();
      gateway = spawn(process.execPath, ['dist/src/main.js', '--config', cfg], { stdio: ['ignore', 'ignore', 'inherit'] });
      const deadline = t0 + 15_000;
      for (;;) {
        const r = await httpGet(`${admin}/ready`).catch(() => ({ status: 0, body: '' }));
        if (r.status === 200) break;
        if (performance.now() > deadline) throw new Error('gateway not ready within 15 s');
        await new Promise((res) => setTimeout(res, 5));
      }
      readyTimes.push(performance.now() - t0);
      agent.destroy();
      if (run < 2) {
        const g = gateway;
        await new Promise((r) => (g.once('exit', r), g.kill('SIGTERM')));
      }
    }
    // Let the process settle (the stream's attach sync) before timing events.
    await new Promise((r) => setTimeout(r, 500));
    const latencies: number[] = [];
    for (let i = 0; i < EVENTS; i++) {
      const name = `master${(i * 7) % APPS}`;
      const port = 40000 + i;
      simChild.send({ moveTask: { app: `/masters/${name}`, port } });
      const moved = onceMessage<number>(simChild, 'moved');
      const want = `"port":${port}`;
      const deadline = performance.now() + 5_000;
      for (;;) {
        const r = await httpGet(`${admin}/routes/${name}`);
        if (r.body.includes(want)) {
          latencies.push(now() - (await moved));
          break;
        }
        if (performance.now() > deadline) throw new Error(`event for ${name} not applied within 5 s`);
      }
    }
    await new Promise((r) => (gateway!.once('exit', r), gateway!.kill('SIGTERM')));
    rmSync(dir, { recursive: true, force: true });

    const ref = median(refs);
    const sync = median(syncs);
    console.log(`simulated Marathon: ${APPS} apps, ${APPS * TASKS_PER_APP} tasks, /v2/apps body ${(bytes / 2 ** 20).toFixed(1)} MiB`);
    console.log(`reference: fetch + JSON.parse of that body, median of 5: ${ref.toFixed(1)} ms`);
    line('full sync (median of 6)', `${sync.toFixed(1)} ms`, '≤ 100 ms', sync <= 100);
    console.log(`  first sync ${syncs[0]} ms; all ${JSON.stringify(syncs)}; ratio to reference ${(sync / ref).toFixed(2)}x`);
    line('heap held by the registry', `${heapMb.toFixed(1)} MB`, '≤ 80 MB', heapMb <= 80);
    console.log(`  whole bench process heap after GC: ${heapTotalMb.toFixed(1)} MB${gc ? '' : ' (no --expose-gc: figures include garbage)'}`);
    line('ready from process start (median 3)', `${median(readyTimes).toFixed(0)} ms`, '≤ 1500 ms', median(readyTimes) <= 1500);
    console.log(`  runs ${JSON.stringify(readyTimes.map((x) => Math.round(x)))}`);
    line('event → GET /routes/<name> p50', `${pct(latencies, 50).toFixed(1)} ms`, '', true);
    line('event → GET /routes/<name> p99', `${pct(latencies, 99).toFixed(1)} ms`, '≤ 20 ms', pct(latencies, 99) <= 20);
    console.log(`  over ${latencies.length} moveTask events; max ${Math.max(...latencies).toFixed(1)} ms`);
  } finally {
    agent.destroy();
    simChild.send({ close: true });
  }
}

// ---- the simulator child ----------------------------------------------------------------------------------
async function simChildMain(): Promise<void> {
  const apps = Array.from({ length: APPS }, (_, i) =>
    masterApp(`master${i}`, {
      host: `10.0.${i >> 8}.${i & 255}`,
      ports: { http: 31000 + (i % 1000), jnlp: 32000 + (i % 1000), ssh: 33000 + (i % 1000) },
      servicePorts: { jnlp: 10000 + i },
      healthy: true,
      extraTasks: Array.from({ length: TASKS_PER_APP - 1 }, (_, k) => ({ host: `10.1.${k}.${i & 255}`, ports: [34000 + k, 35000 + k, 36000 + k], healthy: true })),
    }),
  );
  const sim = await startMarathonSim({ apps });
  process.on('message', (m: { moveTask?: { app: string; port: number }; close?: true }) => {
    if (m.moveTask) {
      const t = now();
      sim.moveTask(m.moveTask.app, { ports: [m.moveTask.port, 50000, 2222] });
      process.send!({ moved: t });
    }
    if (m.close) void sim.close().then(() => process.exit(0));
  });
  process.send!({ url: sim.url });
}

if (process.argv[2] === '--sim-child') await simChildMain();
else await main();
