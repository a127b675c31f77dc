import t from 'tap';
import { silentLogger } from '../../src/log.js';
import { Registry } from '../../src/registry/registry.js';
import type { Snapshot } from '../../src/registry/types.js';
import { Handle, masterRoute } from '../helpers/registry.js';


const at = new Date('2026-01-01T00:00:00Z');
const r = (name: string, port: number) => masterRoute(name, { http: [{ host: '10.0.0.1', port }] });

t.test('a full replace publishes only what changed: other routes keep their objects', async (t) => {
  const a = new Handle('a');
  const reg = new Registry({ log: silentLogger(), now: () => at }).add(a);
  await reg.start();
  a.sink.replace([r('master1', 1), r('master2', 2), r('master3', 3)]);
  const before = reg.current();
  const seen: Snapshot[] = [];
  reg.subscribe((next) => seen.push(next));

  a.sink.replace([r('master1', 1), r('master2', 2), r('master3', 3)]);
  t.equal(seen.length, 0, 'the same routes and status: no new snapshot');
  t.equal(reg.current(), before);

  a.sink.replace([r('master1', 1), r('master2', 22)]);
  t.equal(seen.length, 1, 'one snapshot for the whole replace');
  const after = reg.current();
  t.equal(after.version, before.version + 1);
  t.same([...after.routes.keys()], ['master1', 'master2']);
  t.equal(after.routes.get('master1'), before.routes.get('master1'), 'unchanged route: same object');
  t.not(after.routes.get('master2'), before.routes.get('master2'));
  t.equal(after.routes.get('master2')?.endpoints.http[0]?.port, 22);
  t.equal(before.routes.get('master3')?.name, 'master3', 'the previous snapshot is untouched');
});

t.test('a name two sources hold: the first source wins, and the second takes over when it lets go', async (t) => {
  const a = new Handle('a');
  const b = new Handle('b');
  const reg = new Registry({ log: silentLogger(), now: () => at }).add(a).add(b);
  await reg.start();
  a.sink.replace([r('master1', 1)]);
  b.sink.replace([r('master1', 100), r('master2', 2)]);
  t.equal(reg.get('master1')?.endpoints.http[0]?.port, 1);
  b.sink.replace([r('master1', 100), r('master2', 2)]);
  t.equal(reg.get('master1')?.endpoints.http[0]?.port, 1, 'an unchanged replace of the loser changes nothing');
  a.sink.replace([]);
  t.equal(reg.get('master1')?.endpoints.http[0]?.port, 100, 'the other source\'s route once the first lets go');
  b.sink.replace([r('master2', 2)]);
  t.equal(reg.get('master1'), undefined);
  t.same([...reg.current().routes.keys()], ['master2']);
});
