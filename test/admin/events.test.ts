import t from 'tap';
import { masterRoute } from '../helpers/registry.js';
import { openEvents } from './sse-client.js';
import { startAdmin } from './start-admin.js';

const ep = (port: number) => [{ host: '127.0.0.1', port }];

interface Diff {
  status: { version: number; ready: boolean; stale: boolean; draining: boolean };
  upsert: { name: string; state: string; endpoints: { http: { port: number }[] } }[];
  remove: string[];
}

t.test('GET /events: a snapshot on connect, then diffs of what changed', async (t) => {
  const a = await startAdmin({ routes: [masterRoute('master2', { http: ep(8082) }), masterRoute('master1', { http: ep(8081) })] });
  t.teardown(a.close);
  const es = await openEvents(`${a.url}/events`);
  t.teardown(es.close);
  t.equal(es.status, 200);
  t.equal(es.headers['content-type'], 'text/event-stream; charset=utf-8');
  const first = await es.next();
  t.equal(first.event, 'snapshot');
  const snap = JSON.parse(first.data) as { status: Diff['status']; routes: { name: string }[] };
  t.same(snap.routes.map((r) => r.name), ['master1', 'master2'], 'sorted by name');
  t.match(snap.status, { ready: true, stale: false, draining: false, marathonLeader: null });

  a.source.set(masterRoute('master1', { http: ep(9091) }));
  const moved = JSON.parse((await es.next()).data) as Diff;
  t.same(moved.upsert.map((r) => [r.name, r.endpoints.http[0]?.port]), [['master1', 9091]]);
  t.same(moved.remove, []);

  a.source.remove('master2');
  const removed = JSON.parse((await es.next()).data) as Diff;
  t.same(removed.upsert, []);
  t.same(removed.remove, ['master2']);
});

t.test('changes in one burst reach the browser as one diff', async (t) => {
  const a = await startAdmin({ routes: [masterRoute('master1', { http: ep(8081) })] });
  t.teardown(a.close);
  const es = await openEvents(`${a.url}/events`);
  t.teardown(es.close);
  await es.next();
  for (let i = 0; i < 50; i++) a.source.set(masterRoute(`m${i}`, { http: ep(10_000 + i) }));
  a.source.set(masterRoute('master1', {}, { state: 'unhealthy' }));
  const diff = JSON.parse((await es.next()).data) as Diff;
  t.equal(diff.upsert.length, 51);
  t.same(diff.upsert.find((r) => r.name === 'master1')?.state, 'unhealthy');
  t.equal(es.pending(), 0, 'nothing queued behind it');
});

t.test('closing the admin listener ends open event streams instead of waiting for the deadline', async (t) => {
  const a = await startAdmin();
  const es = await openEvents(`${a.url}/events`);
  await es.next();
  await a.close();
  await es.ended;
  t.equal(es.pending(), 0);
});
