/**
 * `npm run bench:jnlp` (issue #5): agent TCP throughput through a gateway-mode forwarder and through the shared
 * port (JNLP4-connect-proxy) versus a direct TCP connection to the master's agent port, 256 MiB, one run each
 * (goal ≥ 0.9); and connection setup through the shared port: added p99 latency over 500 connections (goal
 * ≤ 2 ms). ci-edge's JNLP front door runs in a child process, as it would on its own host; the agent and
 * the Jenkins stand-in share this one.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../src/config/schema.js';
import { createJnlpDiscovery } from '../src/jnlp-discovery/jnlp-discovery.js';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { proxyPreamble, writeUtf } from '../test/helpers/agent-resolver.js';
import { startJenkinsStandin } from '../test/helpers/jenkins-standin.js';
import { masterRoute, testRegistry } from '../test/helpers/registry.js';
import { freePort } from '../test/helpers/ports.js';

const TOTAL = 256 * 1024 * 1024;
const CHUNK = 64 * 1024;
const CONNECTIONS = 500;
const RUNS = 5;
const JNLP4 = writeUtf('Protocol:JNLP4-connect');

interface Ports {
  forward: number;
  shared: number;
}

/** The child: ci-edge's JNLP discovery (gateway mode + shared port) over a registry with the two stand-ins. */
async function serveGateway(sink: number, echo: number, forward: number, shared: number): Promise<void> {
  const config = parseConfig({
    domains: ['bench.example.com'],
    http: { listen: '127.0.0.1:0' },
    jnlp: { mode: 'gateway', advertiseHost: '127.0.0.1', bindHost: '127.0.0.1', sharedPort: shared },
  });
  // Production logs one info line per connection; they go to /dev/null here, but they are written.
  const log = createLogger({ level: 'info', destination: createWriteStream('/dev/null') });
  const { registry } = await testRegistry(
    [
      masterRoute('sink', { jnlp: [{ host: '127.0.0.1', port: sink }] }, { servicePorts: { jnlp: forward } }),
      masterRoute('echo', { jnlp: [{ host: '127.0.0.1', port: echo }] }),
    ],
    log,
  );
  const jnlp = createJnlpDiscovery(config, {
    registry,
    log,
    metrics: createMetrics(),
    httpExtensions: [],
    config,
    lifecycle: { isDraining: () => false, reload: async () => ({ ok: false, error: 'bench' }) },
  });
  await jnlp.start();
  await jnlp.settled();
  // What the agents' discovery GETs would have recorded.
  jnlp.discoveries.record('bench-sink', '127.0.0.1', 'sink');
  jnlp.discoveries.record('bench-echo', '127.0.0.1', 'echo');
  const a = jnlp.addresses();
  process.send!({ forward: a['agent.sink']!.port, shared: a['shared']!.port } satisfies Ports);
}


/** Sends `head` then TOTAL bytes (respecting backpressure), ends, waits for the sink's 8-byte count. */
function pump(port: number, head: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const s: Socket = connect({ host: '127.0.0.1', port, noDelay: true }, async () => {
      s.write(head);
      const block = Buffer.alloc(CHUNK, 0x5a);
      for (let sent = 0; sent < TOTAL; sent += CHUNK) {
        if (!s.write(block)) await new Promise((r) => s.once('drain', r));
      }
      s.end();
    });
    const got: Buffer[] = [];
    s.on('data', (c: Buffer) => got.push(c));
    s.on('error', reject);
    s.on('close', () => {
      const count = Buffer.concat(got);
      if (count.length !== 8 || count.readBigUInt64BE(0) !== BigInt(TOTAL)) return reject(new Error(`sink counted ${count.length === 8 ? count.readBigUInt64BE(0) : '?'} of ${TOTAL}`));
      resolve(Number(process.hrtime.bigint() - started) / 1e9);
    });
  });
}

/** Connect, send the preamble and one byte, wait for the echo: what an agent waits for before its handshake moves. */
function roundTrip(port: number, head: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const s = connect({ host: '127.0.0.1', port, noDelay: true }, () => s.write(Buffer.concat([head, Buffer.from('x')])));
    s.once('data', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      s.destroy();
      resolve(ms);
    });
    s.on('error', reject);
  });
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Direct and shared-port connections alternate, so both see the same machine; the first 50 of each warm up. */
async function latencies(direct: number, shared: number): Promise<{ d: number[]; s: number[] }> {
  const d: number[] = [];
  const s: number[] = [];
  const sharedHead = Buffer.concat([proxyPreamble('bench-echo'), JNLP4]);
  for (let i = 0; i < CONNECTIONS + 50; i++) {
    const a = await roundTrip(direct, JNLP4);
    const b = await roundTrip(shared, sharedHead);
    if (i >= 50) {
      d.push(a);
      s.push(b);
    }
  }
  return { d: d.sort((x, y) => x - y), s: s.sort((x, y) => x - y) };
}

async function main(): Promise<void> {
  const sink = await startJenkinsStandin({ name: 'sink', agentMode: 'sink' });
  const echo = await startJenkinsStandin({ name: 'echo', key: { publicKey: sink.publicKey } });
  const [forwardPort, sharedPort] = [await freePort(), await freePort()];
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['serve', String(sink.agentPort), String(echo.agentPort), String(forwardPort), String(sharedPort)], {
    stdio: 'inherit',
  });
  try {
    const ports = await new Promise<Ports>((resolve, reject) => {
      child.once('message', (m) => resolve(m as Ports));
      child.once('exit', (code) => reject(new Error(`gateway process exited (${code})`)));
    });
    const mib = TOTAL / (1024 * 1024);
    // Warm both paths once (JIT) with a round trip before measuring.
    await roundTrip(echo.agentPort, JNLP4);
    await roundTrip(ports.shared, Buffer.concat([proxyPreamble('bench-echo'), JNLP4]));
    // Interleaved and best of RUNS: on a 2-core machine one run swings by ±30 % with whatever else the
    // scheduler does; the best of each path, measured side by side, compares the paths, not the moment.
    const times = { direct: [] as number[], gateway: [] as number[], shared: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      times.direct.push(await pump(sink.agentPort, JNLP4));
      times.gateway.push(await pump(ports.forward, JNLP4));
      times.shared.push(await pump(ports.shared, Buffer.concat([proxyPreamble('bench-sink'), JNLP4])));
    }
    const [direct, gateway, shared] = [Math.min(...times.direct), Math.min(...times.gateway), Math.min(...times.shared)];
    const rate = (s: number) => `${(mib / s).toFixed(0)} MiB/s`;
    console.log(`throughput ${mib} MiB, best of ${RUNS} interleaved: direct ${direct.toFixed(2)} s (${rate(direct)})`);
    console.log(`throughput ${mib} MiB: gateway forwarder ${gateway.toFixed(2)} s (${rate(gateway)}), ratio ${(direct / gateway).toFixed(2)} (goal >= 0.9)`);
    console.log(`throughput ${mib} MiB: shared port ${shared.toFixed(2)} s (${rate(shared)}), ratio ${(direct / shared).toFixed(2)} (goal >= 0.9)`);

    const { d, s } = await latencies(echo.agentPort, ports.shared);
    console.log(`connection setup x${CONNECTIONS}: direct p50 ${pct(d, 50).toFixed(3)} ms p99 ${pct(d, 99).toFixed(3)} ms`);
    console.log(`connection setup x${CONNECTIONS}: shared port p50 ${pct(s, 50).toFixed(3)} ms p99 ${pct(s, 99).toFixed(3)} ms`);
    console.log(`connection setup: added p50 ${(pct(s, 50) - pct(d, 50)).toFixed(3)} ms, added p99 ${(pct(s, 99) - pct(d, 99)).toFixed(3)} ms (goal <= 2 ms)`);
  } finally {
    child.kill();
    await sink.close();
    await echo.close();
  }
}

if (process.argv[2] === 'serve') {
  const [sink, echo, forward, shared] = process.argv.slice(3).map(Number) as [number, number, number, number];
  serveGateway(sink, echo, forward, shared).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
} else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
