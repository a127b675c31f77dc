import t from 'tap';
import { decodeModifiedUtf8, encodeWriteUtf, PreambleParser, type PreambleResult } from '../../src/jnlp-discovery/preamble.js';
import { proxyPreamble, writeUtf } from '../helpers/agent-resolver.js';

/** What follows the preamble on a real agent: JnlpProtocol4Handler's own writeUTF, then TLS bytes. */
const AFTER = Buffer.concat([writeUtf('Protocol:JNLP4-connect'), Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x0d, 0x0a, 0x0a, 0x00, 0xff])]);

/** Pushes chunks until the parser decides; what arrives after that is the socket's again, appended to `rest`. */
function feed(chunks: Buffer[], max = 8192): PreambleResult {
  const p = new PreambleParser(max);
  let r: PreambleResult = { kind: 'more' };
  let i = 0;
  for (; i < chunks.length && r.kind === 'more'; i++) r = p.push(chunks[i]!);
  if (r.kind !== 'done') return r;
  return { ...r, rest: Buffer.concat([r.rest, ...chunks.slice(i)]) };
}

function done(r: PreambleResult) {
  if (r.kind !== 'done') throw new Error(`expected done, got ${JSON.stringify(r)}`);
  return r;
}

t.test('writeUTF framing: the two encoders agree with Java on known vectors', async (t) => {
  // DataOutputStream.writeUTF("Protocol:Ping") = 00 0D + ASCII.
  t.equal(writeUtf('Protocol:Ping').toString('hex'), '000d50726f746f636f6c3a50696e67');
  // U+0000 is C0 80, U+00E9 is C3 A9, U+20AC is E2 82 AC, U+1F600 is two surrogates of 3 bytes each.
  const tricky = 'a\u0000\u00e9\u20ac\u{1f600}';
  const java = '000e' + '61' + 'c080' + 'c3a9' + 'e282ac' + 'eda0bd' + 'edb880';
  t.equal(writeUtf(tricky).toString('hex'), java);
  t.equal(encodeWriteUtf(tricky).toString('hex'), java);
  t.equal(decodeModifiedUtf8(Buffer.from(java.slice(4), 'hex')), tricky);
  t.equal(decodeModifiedUtf8(Buffer.from([0xc3])), null, 'truncated sequence');
  t.equal(decodeModifiedUtf8(Buffer.from([0xf0, 0x9f, 0x98, 0x80])), null, '4-byte UTF-8 is not modified UTF-8');
});

t.test('JNLP4-connect-proxy: every split of preamble + following bytes parses the same', async (t) => {
  for (const sep of ['\n', '\r\n'] as const) {
    const whole = Buffer.concat([proxyPreamble('agent-é1', sep), AFTER]);
    const preambleLength = proxyPreamble('agent-é1', sep).length;
    for (let cut = 0; cut <= whole.length; cut++) {
      const r = done(feed([whole.subarray(0, cut), whole.subarray(cut)]));
      if (r.protocol !== 'JNLP4-connect-proxy' || r.headers.get('node-name') !== 'agent-é1' || !r.rest.equals(whole.subarray(preambleLength))) {
        t.fail(`split at ${cut} (${JSON.stringify(sep)}) parsed wrong`);
        return;
      }
    }
    const p = new PreambleParser(8192);
    const bytes = [...whole];
    let at = 0;
    while (p.push(Buffer.from([bytes[at++]!])).kind === 'more' && at < bytes.length);
    t.equal(at, preambleLength, `byte at a time (${JSON.stringify(sep)}): decided exactly at the blank line`);
    const oneChunk = done(feed([whole]));
    t.ok(oneChunk.rest.equals(AFTER), `one packet (${JSON.stringify(sep)}): the JNLP4-connect bytes follow intact`);
    t.ok(oneChunk.received.equals(whole));
  }
});

t.test('other protocols end right after their writeUTF', async (t) => {
  const plain = Buffer.concat([writeUtf('Protocol:JNLP4-connect'), Buffer.from('tls')]);
  const r = done(feed([plain]));
  t.equal(r.protocol, 'JNLP4-connect');
  t.equal(r.rest.toString(), 'tls');
  t.ok(r.received.equals(plain), 'the opening bytes are kept for replay');
  t.equal(done(feed([writeUtf('Protocol:Ping')])).protocol, 'Ping');
});

t.test('malformed and oversized preambles are refused with a reason', async (t) => {
  t.same(feed([Buffer.from('GET / HTTP/1.1\r\n')]), { kind: 'error', reason: 'an HTTP request, not an agent protocol' });
  t.same(feed([writeUtf('Hello')]), { kind: 'error', reason: 'unrecognized protocol "Hello"' });
  t.same(feed([Buffer.concat([writeUtf('Protocol:JNLP4-connect-proxy'), Buffer.from('Node-Name agent1\n')])]), {
    kind: 'error',
    reason: 'malformed proxy header line "Node-Name agent1"',
  });
  t.same(feed([Buffer.from([0x00, 0x02, 0xc3, 0x28])]), { kind: 'error', reason: 'protocol name is not valid modified UTF-8' });
  t.same(feed([Buffer.from([0x7f, 0xff])], 1024), { kind: 'error', reason: 'protocol name of 32767 bytes exceeds 1024' });
  const endless = Buffer.concat([writeUtf('Protocol:JNLP4-connect-proxy'), Buffer.from(`Node-Name: ${'x'.repeat(200)}`)]);
  t.same(feed([endless], 128), { kind: 'error', reason: 'proxy header exceeds 128 bytes' });
  const big = Buffer.concat([proxyPreamble('a'), Buffer.alloc(4096, 1)]);
  t.equal(done(feed([big], 128)).rest.length, 4096, 'bytes after the preamble do not count against the limit');
  t.same(feed([Buffer.from([0x00])]), { kind: 'more' });
});

t.test('a parser that finished keeps its answer', async (t) => {
  const p = new PreambleParser(8192);
  const first = p.push(writeUtf('Protocol:Ping'));
  t.equal(p.push(Buffer.from('more')), first);
});
