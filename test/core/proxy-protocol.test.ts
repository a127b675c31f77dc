import t from 'tap';
import { ProxyHeaderParser, type ProxyHeaderResult } from '../../src/proxy-protocol.js';

const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A v2 header as a balancer writes it: PROXY (or LOCAL), the family, addresses, ports and any TLVs. */
function v2(cmd: number, family: number, addresses: Buffer, tlvs = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x20 | cmd;
  head[1] = (family << 4) | 0x1;
  head.writeUInt16BE(addresses.length + tlvs.length, 2);
  return Buffer.concat([SIG, head, addresses, tlvs]);
}

const v4 = (src: number[], dst: number[]) => Buffer.concat([Buffer.from(src), Buffer.from(dst), Buffer.from([0xdc, 0x04, 0x01, 0xbb])]);
const v6 = (src: number[]) => Buffer.concat([Buffer.from(src), Buffer.alloc(16), Buffer.from([0xdc, 0x04, 0x01, 0xbb])]);
const agentBytes = Buffer.from([0x00, 0x1c, ...Buffer.from('Protocol:JNLP4-connect-proxy'), 0x0d, 0x0a]);

/** Feeds `bytes` in pieces of `step` and returns the first result that is not `more`. */
function parse(bytes: Buffer, step = bytes.length): ProxyHeaderResult {
  const p = new ProxyHeaderParser();
  let r: ProxyHeaderResult = { kind: 'more' };
  for (let i = 0; i < bytes.length && r.kind === 'more'; i += step) r = p.push(bytes.subarray(i, i + step));
  return r;
}

t.test('headers of both versions, whole and split at every byte; what follows is handed on untouched', async (t) => {
  const cases: [string, Buffer, string | null][] = [
    ['v1 TCP4', Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.5 56324 50000\r\n'), '203.0.113.7'],
    ['v1 TCP6', Buffer.from('PROXY TCP6 2001:db8::7 fd00::5 56324 50000\r\n'), '2001:db8::7'],
    ['v1 UNKNOWN (a balancer\'s own check)', Buffer.from('PROXY UNKNOWN\r\n'), null],
    ['v2 TCP4', v2(1, 1, v4([203, 0, 113, 7], [10, 0, 0, 5])), '203.0.113.7'],
    ['v2 TCP4 with TLVs (AWS adds the VPC endpoint id)', v2(1, 1, v4([198, 51, 100, 9], [10, 0, 0, 5]), Buffer.from([0xea, 0x00, 0x03, 0x01, 0x61, 0x62])), '198.51.100.9'],
    ['v2 TCP6', v2(1, 2, v6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7])), '2001:db8::7'],
    ['v2 TCP6, v4-mapped', v2(1, 2, v6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1])), '192.0.2.1'],
    ['v2 TCP6, no zero run', v2(1, 2, v6([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6])), '2001:db8:1:2:3:4:5:6'],
    ['v2 LOCAL', v2(0, 0, Buffer.alloc(0)), null],
    ['v2 UNSPEC', v2(1, 0, Buffer.alloc(0)), null],
  ];
  for (const [what, header, source] of cases) {
    const bytes = Buffer.concat([header, agentBytes]);
    for (const step of [bytes.length, 1, 5]) {
      const r = parse(bytes, step);
      if (r.kind !== 'done') {
        t.fail(`${what}, pieces of ${step}: ${JSON.stringify(r)}`);
        continue;
      }
      t.equal(r.source, source, `${what}, pieces of ${step}: client`);
      if (step === bytes.length) t.ok(r.rest.equals(agentBytes), `${what}: the agent's bytes follow intact`);
    }
  }
});

t.test('anything else is refused with the reason, never guessed', async (t) => {
  const cases: [string, Buffer, RegExp][] = [
    ['an agent without a header', agentBytes, /no PROXY protocol header/],
    ['HTTP', Buffer.from('GET / HTTP/1.1\r\n'), /no PROXY protocol header/],
    ['a v1 line that never ends', Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`), /longer than 107 bytes/],
    ['v1 with a bad address', Buffer.from('PROXY TCP4 300.1.1.1 10.0.0.5 1 2\r\n'), /malformed PROXY v1 line/],
    ['v1 with the wrong family', Buffer.from('PROXY TCP4 2001:db8::7 10.0.0.5 1 2\r\n'), /malformed PROXY v1 line/],
    ['v1 with a bad port', Buffer.from('PROXY TCP4 1.2.3.4 10.0.0.5 99999 2\r\n'), /malformed PROXY v1 line/],
    ['v1 with a bad protocol', Buffer.from('PROXY UDP4 1.2.3.4 10.0.0.5 1 2\r\n'), /malformed PROXY v1 line/],
    ['v2 of version 1', Buffer.concat([SIG, Buffer.from([0x11, 0x11, 0, 0])]), /version 1/],
    ['v2 with command 2', Buffer.concat([SIG, Buffer.from([0x22, 0x11, 0, 0])]), /command 2/],
    ['v2 TCP4 too short for its addresses', v2(1, 1, Buffer.alloc(4)), /address family 1/],
    ['v2 longer than 4096 bytes', Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0x20, 0x00])]), /of 8192 bytes/],
  ];
  for (const [what, bytes, reason] of cases) t.match(parse(bytes), { kind: 'error', reason }, what);
  t.same(parse(Buffer.from('PROXY TCP4 1.2.3.4')), { kind: 'more' }, 'a v1 line cut short waits for the rest');
  t.same(parse(SIG.subarray(0, 7)), { kind: 'more' }, 'so does a v2 signature');
});

t.test('random and mutated input never throws, and a header found is always followed by exactly the bytes after it', async (t) => {
  // A small seeded generator (mulberry32), so a failure replays.
  let seed = 0x5eed;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const valid = [Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.5 56324 50000\r\n'), v2(1, 1, v4([203, 0, 113, 7], [10, 0, 0, 5])), v2(1, 2, v6(Array.from({ length: 16 }, (_, i) => i)))];
  let done = 0;
  let errors = 0;
  let intactCases = 0;
  for (let i = 0; i < 3000; i++) {
    const base = Buffer.from(valid[i % valid.length]!);
    // Flip a few bytes of a valid header, or start from noise.
    const bytes = i % 4 === 0 ? Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256))) : base;
    for (let k = Math.floor(rand() * 3); k > 0; k--) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
    const tail = Buffer.from(`tail-${i}`);
    const all = Buffer.concat([bytes, tail]);
    const intact = valid.some((v) => v.equals(bytes));
    if (intact) intactCases++;
    const p = new ProxyHeaderParser();
    let r: ProxyHeaderResult = { kind: 'more' };
    let at = 0;
    while (at < all.length && r.kind === 'more') {
      const n = 1 + Math.floor(rand() * 8);
      r = p.push(all.subarray(at, at + n));
      at += n;
    }
    if (r.kind === 'done') {
      done++;
      // What the parser hands on, then what was not pushed yet: exactly the bytes after the header.
      const after = Buffer.concat([r.rest, all.subarray(Math.min(at, all.length))]);
      if (intact && !after.equals(tail)) t.fail(`case ${i}: ${JSON.stringify(after.toString('latin1'))} instead of the bytes after the header`);
      if (r.source !== null && !/^[0-9a-f.:]+$/.test(r.source)) t.fail(`case ${i}: source ${r.source}`);
    } else if (r.kind === 'error') {
      errors++;
      if (typeof r.reason !== 'string' || r.reason === '') t.fail(`case ${i}: an error without a reason`);
    }
  }
  t.ok(done > 500 && errors > 500, `both outcomes reached (${done} headers, ${errors} refusals)`);
  t.ok(intactCases > 500, `${intactCases} intact headers checked byte for byte`);
});
