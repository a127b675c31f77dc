import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { adoptOnRead, BULK_SIZE, relayReads } from '../../src/jnlp-discovery/relay.js';
import { splice } from '../../src/jnlp-discovery/splice.js';
import { createMetrics } from '../../src/metrics.js';
import { testRegistry } from '../helpers/registry.js';
import { captureLog, eventually } from './fixtures.js';

const MiB = 1024 * 1024;

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function connectTo(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Whether Node reads this socket into a user buffer (the onread path), not into fresh chunks. */
function readsIntoUserBuffer(s: Socket): boolean {
  const k = Object.getOwnPropertySymbols(s).find((x) => x.description === 'kBuffer');
  return k !== undefined && Boolean((s as unknown as Record<symbol, unknown>)[k]);
}

/** Deterministic bytes, different at every offset of a run, so a lost, doubled or reordered read shows. */
function pattern(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE((Math.imul(i, 2654435761) + seed) >>> 0, i);
  return b;
}

const sha = (b: Buffer | Buffer[]) => createHash('sha256').update(Array.isArray(b) ? Buffer.concat(b) : b).digest('hex');

async function byteCounts(metrics: ReturnType<typeof createMetrics>): Promise<{ up: number; down: number }> {
  const values = (await metrics.jnlpBytes.get()).values;
  const of = (direction: string) => values.filter((v) => v.labels.direction === direction).reduce((n, v) => n + v.value, 0);
  return { up: of('up'), down: of('down') };
}

async function connections(metrics: ReturnType<typeof createMetrics>, via: string, outcome: string): Promise<number> {
  return (await metrics.jnlpConnections.get()).values.find((v) => v.labels.via === via && v.labels.outcome === outcome)?.value ?? 0;
}

async function connectTimes(metrics: ReturnType<typeof createMetrics>): Promise<number> {
  return (await metrics.jnlpConnectDuration.get()).values.find((v) => v.metricName === 'ci_edge_jnlp_connect_duration_seconds_count')?.value ?? 0;
}

/** A master's agent port (`onMaster` gets each accepted socket) and a gateway-mode listener splicing to it. */
async function harness(t: Test, onMaster: (s: Socket) => void) {
  const masters: Socket[] = [];
  const master = createServer({ allowHalfOpen: true }, (s) => {
    masters.push(s);
    s.on('error', () => undefined);
    onMaster(s);
  });
  const masterPort = await listen(master);
  const { registry } = await testRegistry([]);
  const { log, lines } = captureLog();
  const metrics = createMetrics();
  const accepted: Socket[] = [];
  const front = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    accepted.push(client);
    splice({
      id: `r${accepted.length}`,
      via: 'gateway',
      route: 'm1',
      portName: 'jnlp',
      client,
      target: { host: '127.0.0.1', port: masterPort },
      connectTimeout: 5000,
      registry,
      log,
      metrics,
      accepted: performance.now(),
    });
  });
  const port = await listen(front);
  const clients: Socket[] = [];
  t.teardown(async () => {
    for (const s of [...clients, ...accepted, ...masters]) s.destroy();
    await new Promise((r) => front.close(r));
    await new Promise((r) => master.close(r));
    await registry.close();
  });
  const agent = async () => {
    const s = await connectTo(port);
    s.on('error', () => undefined);
    clients.push(s);
    return s;
  };
  const forwarded = () => lines().filter((l) => l['msg'] === 'agent connection forwarded');
  return { agent, masters, accepted, forwarded, metrics };
}

function collect(s: Socket): { chunks: Buffer[]; bytes: () => number; ended: Promise<void> } {
  const chunks: Buffer[] = [];
  let n = 0;
  s.on('data', (c: Buffer) => {
    chunks.push(c);
    n += c.length;
  });
  return { chunks, bytes: () => n, ended: new Promise((resolve) => s.once('end', resolve)) };
}

t.test('bytes arrive intact both ways, big streams through the connection\'s own buffer and small writes through the shared one', async (t) => {
  const toMaster = pattern(8 * MiB, 1);
  const toAgent = pattern(6 * MiB + 12, 2);
  const got: Buffer[] = [];
  const { agent, accepted, forwarded, metrics } = await harness(t, (m) => {
    m.on('data', (c: Buffer) => got.push(c));
    m.once('end', () => m.end(toAgent));
  });
  const s = await agent();
  const back = collect(s);
  // Small writes first (each read fits the shared buffer and is copied out), then the stream.
  for (let i = 0; i < 50; i++) s.write(toMaster.subarray(i * 10, i * 10 + 10));
  s.end(toMaster.subarray(500));
  await back.ended;
  t.equal(sha(got), sha(toMaster), `${toMaster.length} bytes reached the master in order`);
  t.equal(sha(back.chunks), sha(toAgent), `${toAgent.length} bytes reached the agent in order`);
  t.equal(readsIntoUserBuffer(accepted[0]!), true, 'the accepted socket was relayed by onread, not piped');
  s.end();
  const [line] = await eventually(() => forwarded().length === 1 && forwarded(), 'the connection\'s log line');
  t.match(line, { id: 'r1', route: 'm1', bytesIn: toMaster.length, bytesOut: toAgent.length, outcome: 'closed' });
  t.same(await byteCounts(metrics), { up: toMaster.length, down: toAgent.length }, 'ci_edge_jnlp_bytes_total both ways');
  t.type(line!['connectMs'], 'number');
  t.ok((line!['connectMs'] as number) >= 0 && (line!['connectMs'] as number) <= (line!['ms'] as number) + 1, 'connectMs is part of ms');
  t.equal(await connectTimes(metrics), 1, 'one connect time observed');
  t.equal(await connections(metrics, 'gateway', 'forwarded'), 1);
});

t.test('bytes are counted while a connection lives, not only when it ends', async (t) => {
  const { agent, metrics } = await harness(t, (m) => m.on('data', (c: Buffer) => m.write(c)));
  const s = await agent();
  const back = collect(s);
  s.write(pattern(200_000, 5));
  await eventually(() => back.bytes() === 200_000, 'the echo');
  t.same(await byteCounts(metrics), { up: 200_000, down: 200_000 }, 'counted with the connection still open');
});

t.test('a master that refuses: counted as failed, no connect time', async (t) => {
  const { registry } = await testRegistry([]);
  const { log, lines } = captureLog();
  const metrics = createMetrics();
  // A port that was listening a moment ago and is closed now refuses.
  const probe = createServer();
  const closed = await listen(probe);
  await new Promise((r) => probe.close(r));
  const front = createServer({ pauseOnConnect: true }, (client) => {
    splice({ id: 'f1', via: 'gateway', route: 'm1', portName: 'jnlp', client, target: { host: '127.0.0.1', port: closed }, connectTimeout: 5000, registry, log, metrics, accepted: performance.now() });
  });
  const port = await listen(front);
  t.teardown(async () => {
    await new Promise((r) => front.close(r));
    await registry.close();
  });
  const s = await connectTo(port);
  s.on('error', () => undefined);
  // Half-open allowed on this side: the gateway's close arrives as an end.
  await new Promise((r) => s.once('end', r));
  s.destroy();
  const line = await eventually(() => lines().find((l) => l['msg'] === 'agent connection failed'), 'the log line');
  t.match(line, { outcome: 'refused', connectMs: null });
  t.equal(await connections(metrics, 'gateway', 'failed'), 1);
  t.equal(await connections(metrics, 'gateway', 'forwarded'), 0);
  t.equal(await connectTimes(metrics), 0, 'no connect time observed');
});

t.test('two connections relaying at once through the shared read buffer keep their own bytes', async (t) => {
  const { agent } = await harness(t, (m) => m.on('data', (c: Buffer) => m.write(c)));
  const [a, b] = [await agent(), await agent()];
  const [ea, eb] = [collect(a), collect(b)];
  const [pa, pb] = [pattern(64 * 1000, 3), pattern(64 * 1000, 4)];
  for (let i = 0; i < 1000; i++) {
    a.write(pa.subarray(i * 64, i * 64 + 64));
    b.write(pb.subarray(i * 64, i * 64 + 64));
  }
  await eventually(() => ea.bytes() === pa.length && eb.bytes() === pb.length, 'both echoes', 500);
  t.equal(sha(ea.chunks), sha(pa), 'connection a got its own bytes back');
  t.equal(sha(eb.chunks), sha(pb), 'connection b got its own bytes back');
});

t.test('half-close passes through both ways, the open direction keeps working', async (t) => {
  let master!: Socket;
  const masterGot: Buffer[] = [];
  let masterEnded = false;
  const { agent, forwarded } = await harness(t, (m) => {
    master = m;
    m.on('data', (c: Buffer) => masterGot.push(c));
    m.once('end', () => (masterEnded = true));
  });
  const s = await agent();
  const back = collect(s);
  s.end('last words');
  await eventually(() => masterEnded, 'the master sees the agent\'s FIN');
  t.equal(Buffer.concat(masterGot).toString(), 'last words');
  master.write('still talking');
  await eventually(() => back.bytes() === 13, 'the agent still receives after its own FIN');
  master.end(' - bye');
  await back.ended;
  t.equal(Buffer.concat(back.chunks).toString(), 'still talking - bye');
  const [line] = await eventually(() => forwarded().length === 1 && forwarded(), 'the connection\'s log line');
  t.match(line, { bytesIn: 10, bytesOut: 19, outcome: 'closed' });
});

t.test('a slow master: the relay waits for it, nothing is lost', async (t) => {
  const payload = pattern(16 * MiB, 5);
  const got: Buffer[] = [];
  let pauses = 0;
  const { agent } = await harness(t, (m) => {
    // Reads one chunk, then nothing until the next macrotask: the agent outruns it by far.
    m.on('data', (c: Buffer) => {
      got.push(c);
      m.pause();
      pauses++;
      setImmediate(() => m.resume());
    });
    m.once('end', () => m.end());
  });
  const s = await agent();
  s.end(payload);
  await new Promise((r) => s.once('close', r));
  t.ok(pauses > 1, `the master paused ${pauses} times`);
  t.equal(sha(got), sha(payload), 'every byte arrived in order');
});

t.test('backpressure: while the far side does not read, the relay holds at most one read (256 KiB) queued', async (t) => {
  // agent -> (accepted, adopted) relay -> out -> master, all real sockets; the master does not read at first.
  const accepted: Socket[] = [];
  const masters: Socket[] = [];
  const front = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => accepted.push(s));
  const master = createServer({ allowHalfOpen: true }, (m) => {
    m.pause();
    masters.push(m);
  });
  const [frontPort, masterPort] = [await listen(front), await listen(master)];
  const agentSocket = await connectTo(frontPort);
  const out = await connectTo(masterPort);
  t.teardown(() => {
    for (const s of [agentSocket, out, ...accepted, ...masters]) s.destroy();
    front.close();
    master.close();
  });
  await eventually(() => accepted.length === 1 && masters.length === 1, 'both legs');
  const relayIn = accepted[0]!;
  let refused = 0;
  let maxQueued = 0;
  const write = out.write.bind(out) as (chunk: Buffer) => boolean;
  out.write = ((chunk: Buffer) => {
    const ok = write(chunk);
    if (!ok) refused++;
    maxQueued = Math.max(maxQueued, out.writableLength);
    return ok;
  }) as typeof out.write;
  t.equal(adoptOnRead(relayIn, relayReads(out, () => relayIn)), true);
  relayIn.once('end', () => out.end());
  relayIn.resume();

  const payload = pattern(48 * MiB, 6);
  agentSocket.end(payload);
  await eventually(() => refused > 0, 'the master side refusing more', 1000);
  t.ok(relayIn.bytesRead < payload.length, `the relay stopped after ${relayIn.bytesRead} of ${payload.length} bytes`);
  t.ok(agentSocket.writableLength > 0, 'the rest waits at the agent');

  const got: Buffer[] = [];
  const m = masters[0]!;
  m.on('data', (c: Buffer) => got.push(c));
  m.resume();
  await new Promise((r) => m.once('end', r));
  t.equal(sha(got), sha(payload), 'every byte arrived once the master read');
  t.ok(maxQueued <= BULK_SIZE, `at most one read queued in the relay (${maxQueued} bytes at the peak)`);
});

t.test('a reset on either side takes the other leg down and is logged', async (t) => {
  const masters: Socket[] = [];
  const { agent, forwarded } = await harness(t, (m) => {
    masters.push(m);
    m.resume();
  });
  const a = await agent();
  a.write('x');
  await eventually(() => masters.length === 1 && masters[0]!.bytesRead === 1, 'first master leg');
  const masterEnded = new Promise((r) => masters[0]!.once('end', r));
  a.resetAndDestroy();
  await masterEnded;
  await eventually(() => forwarded().length === 1, 'first log line');
  t.match(forwarded()[0], { outcome: 'client-error ECONNRESET', client: /^127\.0\.0\.1:\d+$/ }, 'the agent\'s reset closes the master\'s leg');

  const b = await agent();
  b.write('y');
  await eventually(() => masters.length === 2 && masters[1]!.bytesRead === 1, 'second master leg');
  const agentEnded = new Promise((r) => b.once('end', r));
  b.resume();
  masters[1]!.resetAndDestroy();
  await agentEnded;
  await eventually(() => forwarded().length === 2, 'second log line');
  t.match(forwarded()[1], { outcome: 'upstream-error ECONNRESET' }, 'the master\'s reset closes the agent\'s leg');
});

t.test('adoptOnRead: an accepted, unread socket is adopted; one with buffered bytes or an onread already is not', async (t) => {
  const accepted: Socket[] = [];
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => accepted.push(s));
  const port = await listen(server);
  const [c1, c2] = [await connectTo(port), await connectTo(port)];
  t.teardown(() => {
    for (const s of [c1, c2, ...accepted]) s.destroy();
    server.close();
  });
  await eventually(() => accepted.length === 2, 'two accepted sockets');
  const [fresh, buffered] = accepted as [Socket, Socket];
  // A socket that read into its stream buffer first (what the shared port's preamble reader leaves behind).
  buffered.on('data', () => buffered.pause());
  buffered.resume();
  c2.write('early');
  await eventually(() => buffered.readableLength === 0 && buffered.isPaused(), 'the data event');
  c2.write('more');
  await eventually(() => buffered.readableLength === 4, 'bytes waiting in the stream buffer');
  t.equal(adoptOnRead(buffered, relayReads(c1, () => buffered)), false, 'bytes already in the stream buffer: not adopted');

  // Relaying a socket's reads into itself: the client gets an echo.
  t.equal(adoptOnRead(fresh, relayReads(fresh, () => fresh)), true, 'adopted');
  t.equal(adoptOnRead(fresh, relayReads(fresh, () => fresh)), false, 'a socket with an onread is not adopted twice');
  fresh.resume();
  const echo = collect(c1);
  c1.write('via onread');
  await eventually(() => echo.bytes() === 10, 'the echo');
  t.equal(Buffer.concat(echo.chunks).toString(), 'via onread');
});

t.test('bytes and a FIN that arrived before the master leg connects are forwarded in order (shared port: piped)', async (t) => {
  const got: Buffer[] = [];
  const masters: Socket[] = [];
  const master = createServer({ allowHalfOpen: true }, (m) => {
    masters.push(m);
    m.on('data', (c: Buffer) => got.push(c));
    m.once('end', () => m.end('bye'));
  });
  const masterPort = await listen(master);
  const { registry } = await testRegistry([]);
  const { log, lines } = captureLog();
  const accepted: Socket[] = [];
  // Like the shared port: the first chunk is read by a 'data' handler, the socket paused, bytes keep arriving.
  const front = createServer({ allowHalfOpen: true }, (s) => {
    accepted.push(s);
    s.once('data', () => s.pause());
  });
  const port = await listen(front);
  const agent = await connectTo(port);
  t.teardown(async () => {
    for (const s of [agent, ...accepted, ...masters]) s.destroy();
    front.close();
    master.close();
    await registry.close();
  });
  agent.write('preamble');
  await eventually(() => accepted[0]?.isPaused(), 'the preamble read');
  const client = accepted[0]!;
  const back = collect(agent);
  agent.end('early bytes');
  await eventually(() => client.readableLength === 11, 'early bytes in the stream buffer');
  const metrics = createMetrics();
  splice({
    id: 'e1',
    via: 'shared',
    route: 'm1',
    portName: 'jnlp',
    client,
    target: { host: '127.0.0.1', port: masterPort },
    head: Buffer.from('head:'),
    connectTimeout: 5000,
    registry,
    log,
    metrics,
    accepted: performance.now(),
  });
  await back.ended;
  t.equal(Buffer.concat(got).toString(), 'head:early bytes', 'head, then what was buffered, then the FIN');
  t.equal(Buffer.concat(back.chunks).toString(), 'bye');
  t.equal(readsIntoUserBuffer(client), false, 'a socket that had buffered bytes is piped');
  await eventually(() => lines().some((l) => l['msg'] === 'agent connection forwarded'), 'the log line');
  t.same(await byteCounts(metrics), { up: 16, down: 3 }, 'the piped path counts its bytes too, head and early ones included');
});
