import t from 'tap';
import { normalizeAddress } from '../../src/client-address.js';
import { DiscoveryLog } from '../../src/jnlp-discovery/attribution.js';

t.test('two agents named alike on two masters are told apart by client address', async (t) => {
  const log = new DiscoveryLog({ ttl: 60_000, now: () => 0 });
  log.record('agent1', '127.0.0.1', 'master1');
  log.record('agent1', '::ffff:127.0.0.2', 'master2');
  t.same(log.attribute('agent1', '127.0.0.1'), { ok: true, master: 'master1', by: 'node-and-address' });
  t.same(log.attribute('agent1', '127.0.0.2'), { ok: true, master: 'master2', by: 'node-and-address' });
  t.same(log.attribute('agent1', '127.0.0.3'), {
    ok: false,
    reason: 'agent "agent1" from 127.0.0.3 is known on several masters (master1, master2)',
  });
  t.same(log.attribute('ghost', '127.0.0.1'), { ok: false, reason: 'agent "ghost" from 127.0.0.1 never discovered a master through ci-edge' });
});

t.test('the latest discovery wins; a node name alone routes when unambiguous', async (t) => {
  const log = new DiscoveryLog({ ttl: 60_000, now: () => 0 });
  log.record('agent1', '10.0.0.1', 'master1');
  log.record('agent1', '10.0.0.1', 'master3');
  t.equal(log.size, 1);
  t.same(log.attribute('agent1', '10.0.0.1'), { ok: true, master: 'master3', by: 'node-and-address' });
  t.same(log.attribute('agent1', '192.0.2.7'), { ok: true, master: 'master3', by: 'node-name' }, 'HTTP and TCP leave by different NAT');
});

t.test('plain protocols route by address only when it discovered exactly one master', async (t) => {
  const log = new DiscoveryLog({ ttl: 60_000, now: () => 0 });
  log.record('a', '10.0.0.1', 'master1');
  log.record('b', '10.0.0.1', 'master1');
  log.record('c', '10.0.0.2', 'master1');
  log.record('d', '10.0.0.2', 'master2');
  t.same(log.attribute(null, '10.0.0.1'), { ok: true, master: 'master1', by: 'address' });
  t.same(log.attribute(null, '10.0.0.2'), { ok: false, reason: 'agents from 10.0.0.2 discovered several masters (master1, master2)' });
  t.same(log.attribute(null, '10.0.0.9'), { ok: false, reason: 'no agent from 10.0.0.9 discovered a master through ci-edge' });
});

t.test('discoveries expire after the TTL (fake clock) and the oldest go first past the bound', async (t) => {
  let now = 0;
  const log = new DiscoveryLog({ ttl: 1000, maxEntries: 2, now: () => now });
  log.record('agent1', '10.0.0.1', 'master1');
  now = 1000;
  t.equal(log.attribute('agent1', '10.0.0.1').ok, true, 'alive at exactly the TTL');
  now = 1001;
  t.equal(log.attribute('agent1', '10.0.0.1').ok, false, 'gone after it');
  t.equal(log.size, 0, 'and forgotten');
  log.record('a', '1', 'm1');
  log.record('b', '1', 'm2');
  log.record('a', '1', 'm1');
  log.record('c', '1', 'm3');
  t.equal(log.size, 2);
  t.equal(log.attribute('b', '1').ok, false, 'b was the oldest (a was refreshed)');
  t.same(log.attribute('a', '1'), { ok: true, master: 'm1', by: 'node-and-address' });
});

t.test('address normalization', async (t) => {
  t.equal(normalizeAddress('::ffff:10.1.2.3'), '10.1.2.3');
  t.equal(normalizeAddress('fd00::1'), 'fd00::1');
  t.equal(normalizeAddress(undefined), '');
});
