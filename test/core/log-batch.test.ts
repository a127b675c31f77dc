import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { LineBatch, type LineSink } from '../../src/log-batch.js';

class RecordingSink implements LineSink {
  readonly writes: string[] = [];
  flushes = 0;
  write(data: string) {
    this.writes.push(data);
    return true;
  }
  flush(cb?: (err?: Error) => void) {
    this.flushes++;
    cb?.();
  }
  flushSync() {}
}

t.test('lines are held until a batch is full, then handed over as one string, in order', async (t) => {
  const sink = new RecordingSink();
  const batch = new LineBatch(sink, 1, 10);
  batch.write('aaaa\n');
  batch.write('bbb\n');
  t.same(sink.writes, [], 'below the batch size nothing is written');
  batch.write('cc\n');
  t.same(sink.writes, ['aaaa\nbbb\ncc\n']);
  batch.write('d\n');
  batch.flush();
  t.same(sink.writes, ['aaaa\nbbb\ncc\n', 'd\n'], 'flush hands over what is held');
  t.equal(sink.flushes, 1, 'and flushes the sink');
  batch.flush();
  t.same(sink.writes.length, 2, 'an empty batch writes nothing');
});

t.test('flushSync writes what the sink holds first, then the batch, to the descriptor', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ci-edge-log-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'out.log');
  const fd = openSync(file, 'w');
  const sink = new RecordingSink();
  sink.flushSync = () => void writeSync(fd, 'held by the sink\n');
  const batch = new LineBatch(sink, fd, 4096);
  batch.write('newer line\n');
  batch.flushSync();
  closeSync(fd);
  t.equal(readFileSync(file, 'utf8'), 'held by the sink\nnewer line\n');
});

function run(n: number, how: 'drain' | 'exit'): Promise<number[]> {
  const fixture = fileURLToPath(new URL('./fixtures/log-exit.ts', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, fixture, String(n), how], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => (text += c));
    child.on('error', reject);
    child.on('close', () => resolve(text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { i: number }).i)));
  });
}

const upTo = (n: number) => Array.from({ length: n }, (_, i) => i);

t.test('the production logger on stdout loses no line when the process ends', async (t) => {
  t.same(await run(500, 'drain'), upTo(500), 'ending as the gateway does (the loop drains): every line, once, in order');
  t.same(await run(20, 'exit'), upTo(20), 'process.exit() with lines still in the batch: written by the exit hook');
});
