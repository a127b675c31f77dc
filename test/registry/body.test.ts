import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import { AppsReader } from '../../src/registry/marathon/body.js';

const fixtures = new URL('./fixtures/', import.meta.url);

/** What AppsReader hands out for `body` fed in chunks of `size` bytes (the whole body when size is 0). */
function read(body: Buffer, size = 0): { apps: unknown[]; count: number; beforeEnd: number } {
  const apps: unknown[] = [];
  const reader = new AppsReader((a) => apps.push(a));
  if (size === 0) reader.push(body);
  else for (let i = 0; i < body.length; i += size) reader.push(body.subarray(i, i + size));
  const beforeEnd = apps.length;
  const count = reader.end();
  return { apps, count, beforeEnd };
}

function readThrows(body: string): Error {
  try {
    read(Buffer.from(body));
  } catch (err) {
    return err as Error;
  }
  throw new Error(`no error for ${body}`);
}

/** A deterministic PRNG (mulberry32), so a failure names the seed that reproduces it. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Strings that look like the separator the reader searches for, escaped every way JSON allows. */
const nasty = ['},{"id":"/', '\\', '"', '},{\\"id\\":\\"/x', '{"apps":[', ']}', 'Zoë 🚀 Zürich', '\u2028', '}', '{'];

function app(rand: () => number, i: number): Record<string, unknown> {
  const pick = () => nasty[Math.floor(rand() * nasty.length)]!;
  return {
    id: `/masters/master${i}`,
    // Nested objects whose own first key is an "id" starting with "/": the search proposes a split in them.
    dependencies: [{ id: '/a' }, { id: `/${pick()}` }],
    labels: { note: pick() + pick(), [pick()]: pick() },
    env: { JSON: JSON.stringify([{ id: '/x' }, { id: `/${pick()}` }]) },
    tasks: Array.from({ length: Math.floor(rand() * 3) }, (_, k) => ({ id: `t${k}`, host: '10.0.0.1', ports: [31000 + k] })),
  };
}

t.test('every element, in order, for any chunking, same as JSON.parse', async (t) => {
  for (let seed = 1; seed <= 25; seed++) {
    const rand = prng(seed);
    const doc = { apps: Array.from({ length: 1 + Math.floor(rand() * 30) }, (_, i) => app(rand, i)) };
    const body = Buffer.from(JSON.stringify(doc));
    for (const size of [0, 1, 3, 10, 11, 64, 1 + Math.floor(rand() * 500)]) {
      const got = read(body, size);
      t.same(got.apps, doc.apps, `seed ${seed}, chunks of ${size}`);
      t.equal(got.count, doc.apps.length);
    }
  }
});

t.test('apps are handed out while the body still arrives', async (t) => {
  const doc = { apps: Array.from({ length: 50 }, (_, i) => ({ id: `/masters/m${i}`, tasks: [] })) };
  const got = read(Buffer.from(JSON.stringify(doc)), 100);
  t.ok(got.beforeEnd >= 45, `${got.beforeEnd} of 50 before end()`);
  t.same(got.apps, doc.apps);
});

t.test('an app larger than the buffer, and many apps after it', async (t) => {
  const big = { id: '/masters/big', env: { BLOB: 'x'.repeat(600 * 1024) }, tasks: [] };
  const doc = { apps: [{ id: '/masters/a' }, big, ...Array.from({ length: 300 }, (_, i) => ({ id: `/masters/m${i}`, labels: { pad: 'y'.repeat(2000) } }))] };
  const got = read(Buffer.from(JSON.stringify(doc)), 65536);
  t.same(got.apps, doc.apps);
});

t.test('other shapes are parsed whole: pretty-printed, BOM, id not first, empty', async (t) => {
  const doc = { apps: [{ id: '/a', labels: { x: '},{"id":"/' } }, { cpus: 1, id: '/b' }] };
  t.same(read(Buffer.from(JSON.stringify(doc, null, 2)), 7).apps, doc.apps, 'pretty-printed');
  t.same(read(Buffer.from('\uFEFF' + JSON.stringify(doc)), 5).apps, doc.apps, 'BOM');
  t.same(read(Buffer.from(JSON.stringify(doc)), 4).apps, doc.apps, 'second app with another key first');
  t.same(read(Buffer.from(JSON.stringify({ version: 1, apps: doc.apps }))).apps, doc.apps, 'another key before apps');
  t.same(read(Buffer.from(JSON.stringify({ apps: doc.apps, version: 1 })), 3).apps, doc.apps, 'another key after apps');
  t.same(read(Buffer.from('{"apps":[]}'), 1), { apps: [], count: 0, beforeEnd: 0 });
  t.same(read(Buffer.from('{"apps":[null,1,"x",{"id":"/a"},[]]}'), 2).apps, [null, 1, 'x', { id: '/a' }, []], 'odd elements are handed on');
});

t.test('every fixture with an apps array reads as JSON.parse reads it, pretty and compact', async (t) => {
  let n = 0;
  for (const f of readdirSync(fixtures).filter((f) => f.endsWith('.json'))) {
    const text = readFileSync(new URL(f, fixtures), 'utf8');
    const doc = JSON.parse(text) as { apps?: unknown };
    if (!Array.isArray(doc.apps)) continue;
    n++;
    t.same(read(Buffer.from(text), 13).apps, doc.apps, `${f} as stored`);
    t.same(read(Buffer.from(JSON.stringify(doc)), 13).apps, doc.apps, `${f} compact`);
  }
  t.ok(n >= 3, `${n} fixtures with an apps array`);
});

t.test('bad JSON throws, wherever it is', async (t) => {
  for (const body of [
    '',
    '{"apps":[{"id":"/masters/broken","tasks":[{',
    '{"apps":[{"id":"/a"},{"id":"/b"}]}garbage',
    '{"apps":[{"id":"/a"} x,{"id":"/b"}]}',
    '{"apps":[{"id":"/a"},,{"id":"/b"}]}',
    '{"apps":[{"id":"/a",}]}',
    '{"apps":[{"id":"/a"},{"id":"/b"}]',
    '{"apps":{"id":"/a"}}',
    '{"app":[]}',
    'null',
  ]) {
    const err = readThrows(body);
    t.ok(err instanceof SyntaxError || /without an "apps" array/.test(err.message), `${JSON.stringify(body)}: ${err.message}`);
  }
});

t.test('a body that defeats the search costs a bounded number of failed parses, and reads right', async (t) => {
  // After three apps, Marathon-like apps whose id is not the first key: every proposal from there on fails.
  const apps = [
    ...Array.from({ length: 3 }, (_, i) => ({ id: `/masters/m${i}`, tasks: [] })),
    ...Array.from({ length: 500 }, (_, i) => ({ cpus: 1, id: `/masters/x${i}`, dependencies: [{ id: '/a' }, { id: '/b' }] })),
  ];
  // The separator does occur, between the nested objects of each app: 500 proposals, all wrong.
  const body = Buffer.from(JSON.stringify({ apps }));
  const parse = JSON.parse;
  let parses = 0;
  JSON.parse = ((text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) => {
    parses++;
    return parse(text, reviver);
  }) as typeof JSON.parse;
  let got;
  try {
    got = read(body, 4096);
  } finally {
    JSON.parse = parse;
  }
  t.same(got.apps, apps);
  t.ok(parses <= 3 + 64 + 1, `${parses} parses for 503 apps (2 split off by the search, at most 64 misses, then the rest in one parse)`);
});
