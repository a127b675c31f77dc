import t from 'tap';
import { ClientAddresses, clientAddressesOf, isAddressOrBlock } from '../../src/client-address.js';

t.test('isAddressOrBlock: addresses and CIDR blocks of both families, nothing else', async (t) => {
  for (const ok of ['10.0.0.1', '10.0.0.0/8', '0.0.0.0/0', 'fd00::1', 'fd00::/8', '::/0', '192.168.1.0/32']) t.ok(isAddressOrBlock(ok), ok);
  for (const bad of ['', 'lb.example.com', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/', '10.0.0.0/8/1', '10.0.0.0/x', '10.0.0', '*']) t.notOk(isAddressOrBlock(bad), JSON.stringify(bad));
});

t.test('without trusted proxies the client is the peer, whatever X-Forwarded-For says', async (t) => {
  const c = new ClientAddresses([]);
  t.equal(c.of('::ffff:10.1.2.3', '1.1.1.1'), '10.1.2.3', 'an IPv4 peer on a dual-stack socket, normalized');
  t.equal(c.of(undefined, undefined), '');
});

t.test('behind trusted proxies: the rightmost X-Forwarded-For entry that is not trusted', async (t) => {
  const c = new ClientAddresses(['10.0.0.0/8', '192.0.2.10', 'fd00::/8']);
  const cases: [string | undefined, string | string[] | undefined, string, string][] = [
    ['10.0.0.5', '203.0.113.7', '203.0.113.7', 'one balancer'],
    ['10.0.0.5', '6.6.6.6, 203.0.113.7, 10.1.2.3', '203.0.113.7', 'a spoofed entry left of the real client is ignored'],
    ['10.0.0.5', ['6.6.6.6, 203.0.113.7', '10.1.2.3'], '203.0.113.7', 'a repeated header reads as one list'],
    ['::ffff:10.0.0.5', '::ffff:203.0.113.7', '203.0.113.7', 'dual-stack forms on both sides'],
    ['fd00::2', '2001:db8::7, fd00::3', '2001:db8::7', 'IPv6 hops'],
    ['10.0.0.5', '203.0.113.7:51234', '203.0.113.7', 'an entry with a port'],
    ['10.0.0.5', '[2001:db8::7]:443', '2001:db8::7', 'a bracketed IPv6 entry with a port'],
    ['10.0.0.5', '10.9.9.9, 192.0.2.10', '10.9.9.9', 'every hop trusted: the leftmost'],
    ['10.0.0.5', 'unknown, 10.2.2.2', '10.2.2.2', 'a hop that is no address stops the walk at the last good one'],
    ['10.0.0.5', undefined, '10.0.0.5', 'no header: the peer'],
    ['203.0.113.9', '198.51.100.1', '203.0.113.9', 'an untrusted peer: its header is not believed'],
  ];
  for (const [peer, xff, want, what] of cases) t.equal(c.of(peer, xff), want, what);
  t.ok(c.isTrusted('10.255.0.1'));
  t.notOk(c.isTrusted('11.0.0.1'));
  t.notOk(c.isTrusted('not-an-ip'));
});

t.test('clientAddressesOf: one per configured list', async (t) => {
  const list = ['10.0.0.0/8'];
  t.equal(clientAddressesOf(list), clientAddressesOf(list), 'the same list, the same instance');
  t.not(clientAddressesOf(list), clientAddressesOf(['10.0.0.0/8']), 'a reload brings a new list');
});
