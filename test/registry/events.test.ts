import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { silentLogger } from '../../src/log.js';
import { EventStream, SseParser, backoffDelay, type Clock, type SseEvent } from '../../src/registry/marathon/events.js';

const sample = readFileSync(new URL('./fixtures/raml-events-sse.txt', import.meta.url), 'utf8');

function parseAll(chunks: string[]): SseEvent[] {
  const out: SseEvent[] = [];
  const p = new SseParser((e) => out.push(e));
  for (const c of chunks) p.push(c);
  return out;
}

t.test("Marathon's RAML SSE sample parses the same with LF, CRLF and CR line ends, split at any byte", async (t) => {
  const lf = parseAll([sample]);
  t.same(
    lf.map((e) => [e.event, (JSON.parse(e.data) as { eventType: string }).eventType]),
    [
      ['event_stream_attached', 'event_stream_attached'],
      ['status_update_event', 'status_update_event'],
      ['status_update_event', 'status_update_event'],
    ],
  );
  const crlf = sample.replace(/\n/g, '\r\n');
  const cr = sample.replace(/\n/g, '\r');
  for (const [name, text] of [['CRLF', crlf], ['CR', cr]] as const) {
    t.same(parseAll([text]), lf, `${name} in one chunk`);
    let splitsOk = 0;
    for (let i = 1; i < text.length; i++) if (JSON.stringify(parseAll([text.slice(0, i), text.slice(i)])) === JSON.stringify(lf)) splitsOk++;
    t.equal(splitsOk, text.length - 1, `${name} split at every one of ${text.length - 1} positions`);
  }
  t.same(parseAll([...crlf]), lf, 'one character per chunk');
});

t.test('heartbeats, comments, multi-line data and ids', async (t) => {
  const events = parseAll(['\r\n\r\n: comment\r\n\r\nevent: x\r\ndata: a\r\ndata:b\r\nid: 7\r\n\r\n\r\ndata: plain\n\n']);
  t.same(events, [
    { event: 'x', data: 'a\nb', id: '7' },
    { event: 'message', data: 'plain', id: '7' },
  ]);
  t.same(parseAll(['event: x\r\ndata: incomplete']), [], 'nothing dispatched without the blank line');
});

t.test('backoff: exponential, equal jitter, capped', async (t) => {
  const b = { min: 500, max: 30_000 };
  t.same(
    [0, 1, 2, 3, 10, 100].map((a) => [backoffDelay(a, b, () => 0), backoffDelay(a, b, () => 1)]),
    [
      [250, 500],
      [500, 1000],
      [1000, 2000],
      [2000, 4000],
      [15_000, 30_000],
      [15_000, 30_000],
    ],
  );
});

t.test('reconnect attempts against a dead Marathon back off (fake clock)', async (t) => {
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const port = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));

  const scheduled: { fn: () => void; ms: number }[] = [];
  const clock: Clock = {
    setTimeout: (fn, ms) => scheduled.push({ fn, ms }),
    clearTimeout: () => undefined,
    random: () => 1,
  };
  const downs: string[] = [];
  let notify: () => void = () => undefined;
  const stream = new EventStream({
    baseUrl: () => `http://127.0.0.1:${port}`,
    headers: () => ({}),
    eventTypes: ['status_update_event'],
    idleTimeout: 30_000,
    backoff: { min: 10, max: 100 },
    connectTimeout: 1_000,
    log: silentLogger(),
    clock,
    onOpen: () => t.fail('must not open'),
    onEvent: () => t.fail('no events'),
    onDown: (reason) => {
      downs.push(reason);
      notify();
    },
  });
  t.teardown(() => stream.close());
  stream.start();
  for (let i = 0; i < 6; i++) {
    await new Promise<void>((r) => {
      if (downs.length > i) r();
      else notify = r;
    });
    scheduled[i]!.fn(); // run the retry the stream scheduled
  }
  t.same(downs.slice(0, 6), Array(6).fill('connect ECONNREFUSED 127.0.0.1:' + port));
  t.same(scheduled.slice(0, 6).map((s) => s.ms), [10, 20, 40, 80, 100, 100]);
});

t.test('a redirect loop between two standbys gives up after 5 hops and backs off', async (t) => {
  const { startMarathonSim } = await import('../helpers/marathon-sim.js');
  const a = await startMarathonSim();
  const b = await startMarathonSim({ leader: a.url });
  a.setLeader(b.url);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const scheduled: number[] = [];
  let resolveDown: (reason: string) => void = () => undefined;
  const down = new Promise<string>((r) => (resolveDown = r));
  const stream = new EventStream({
    baseUrl: () => a.url,
    headers: () => ({}),
    eventTypes: [],
    idleTimeout: 30_000,
    backoff: { min: 10, max: 100 },
    connectTimeout: 1_000,
    log: silentLogger(),
    clock: { setTimeout: (_fn, ms) => scheduled.push(ms), clearTimeout: () => undefined, random: () => 1 },
    onOpen: () => t.fail('must not open'),
    onEvent: () => t.fail('no events'),
    onDown: (reason) => resolveDown(reason),
  });
  t.teardown(() => stream.close());
  stream.start();
  t.equal(await down, 'more than 5 redirects');
  t.same([a.count('/v2/events') + b.count('/v2/events'), scheduled], [6, [10]]);
});
