import t from 'tap';
import { silentLogger } from '../../src/log.js';
import { Registry, syncAgeSeconds } from '../../src/registry/registry.js';
import type { RouteInput, RouteSource } from '../../src/registry/types.js';
import { Handle, masterRoute } from '../helpers/registry.js';


function clock(start = Date.parse('2026-01-01T00:00:00Z')) {
  let now = start;
  return { now: () => new Date(now), advance: (ms: number) => (now += ms) };
}

const r1: RouteInput = masterRoute('master1', { http: [{ host: '10.0.0.1', port: 31000 }] });

t.test('not ready until every source synced; then ready with syncedAt', async (t) => {
  const c = clock();
  const a = new Handle('a');
  const b = new Handle('b');
  const reg = new Registry({ log: silentLogger(), now: c.now }).add(a).add(b);
  await reg.start();
  t.equal(reg.current().status.ready, false);
  a.sink.replace([r1]);
  t.equal(reg.current().status.ready, false);
  t.equal(reg.get('master1')?.state, 'running', 'routes serve before every source is ready');
  c.advance(1000);
  b.sink.replace([], { leader: 'm1:8080' });
  const s = reg.current().status;
  t.same(s, { ready: true, stale: false, syncedAt: '2026-01-01T00:00:00.000Z', marathonLeader: 'm1:8080', lastError: null });
  c.advance(5000);
  t.equal(syncAgeSeconds(s, c.now()), 6);
});

t.test('unchanged routes keep identity and do not notify', async (t) => {
  const a = new Handle('a');
  const reg = new Registry({ log: silentLogger() }).add(a);
  await reg.start();
  a.sink.replace([r1]);
  const first = reg.get('master1');
  let calls = 0;
  reg.subscribe(() => calls++);
  a.sink.upsert({ ...r1 });
  t.equal(reg.get('master1'), first, 'same object');
  t.equal(calls, 0);
  a.sink.upsert({ ...r1, state: 'starting', endpoints: { http: [], jnlp: [], ssh: [] }, detail: 'task staging since 12:03' });
  t.equal(calls, 1);
  t.equal(reg.get('master1')?.detail, 'task staging since 12:03');
});

t.test('a failed sync keeps routes and marks stale; only remove() deletes', async (t) => {
  const a = new Handle('a');
  const reg = new Registry({ log: silentLogger() }).add(a);
  await reg.start();
  a.sink.replace([r1]);
  a.sink.failed(new Error('ECONNREFUSED'));
  t.equal(reg.current().status.stale, true);
  t.equal(reg.current().status.lastError, 'ECONNREFUSED');
  t.ok(reg.get('master1'), 'route kept');
  a.sink.replace([r1]);
  t.equal(reg.current().status.stale, false, 'a good sync clears stale');
  a.sink.remove('master1');
  t.equal(reg.get('master1'), undefined);
});

t.test('the first source added wins a name; the other shows when it goes', async (t) => {
  const file = new Handle('file');
  const marathon = new Handle('marathon');
  const reg = new Registry({ log: silentLogger() }).add(file).add(marathon);
  await reg.start();
  marathon.sink.replace([r1]);
  file.sink.replace([{ ...r1, source: 'file', endpoints: { http: [{ host: '127.0.0.1', port: 1 }], jnlp: [], ssh: [] } }]);
  t.equal(reg.get('master1')?.source, 'file');
  file.sink.replace([]);
  t.equal(reg.get('master1')?.source, 'manual', "Marathon's route shows again");
});

t.test('snapshots are immutable and versioned; listeners see next and prev', async (t) => {
  t.plan(4);
  const a = new Handle('a');
  const reg = new Registry({ log: silentLogger() }).add(a);
  await reg.start();
  reg.subscribe((next, prev) => {
    t.equal(next.version, prev.version + 1);
    t.equal(prev.routes.has('master1'), false);
    t.equal(next.routes.has('master1'), true);
  });
  a.sink.replace([r1]);
  t.ok(Object.isFrozen(reg.current()));
});

t.test('a throwing listener does not stop the others', async (t) => {
  const a = new Handle('a');
  const reg = new Registry({ log: silentLogger() }).add(a);
  await reg.start();
  let seen = 0;
  reg.subscribe(() => {
    throw new Error('boom');
  });
  reg.subscribe(() => seen++);
  a.sink.replace([r1]);
  t.equal(seen, 1);
});

t.test('endpointFailed reaches the owning source', async (t) => {
  const calls: string[] = [];
  const a = new Handle('a');
  (a as RouteSource).endpointFailed = (name, ep) => calls.push(`${name} ${ep.host}:${ep.port}`);
  const reg = new Registry({ log: silentLogger() }).add(a);
  await reg.start();
  a.sink.replace([r1]);
  reg.endpointFailed('master1', { host: '10.0.0.1', port: 31000 });
  reg.endpointFailed('nope', { host: 'x', port: 1 });
  t.same(calls, ['master1 10.0.0.1:31000']);
});
