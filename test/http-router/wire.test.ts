/**
 * The fast lane's wire layer (src/http-router/wire.ts, issue #3 req/s goal): what the strict request-head
 * parser takes and what it leaves to Node's llhttp, response framing (RFC 9112 §6.3), the chunked-body end
 * finder under every split, and head serialization.
 */
import t from 'tap';
import { BadResponse, ChunkedTracker, hasToken, parseRequestHead, parseResponseHead, serializeHead } from '../../src/http-router/wire.js';

/** A request head as the lane sees it: the bytes before the blank line, lines joined with CRLF. */
const head = (...lines: string[]) => lines.join('\r\n');

t.test('parseRequestHead accepts bodyless GET/HEAD in origin form with one Host', async (t) => {
  const g = parseRequestHead(head('GET /master1/job/x?y=1 HTTP/1.1', 'Host: pse.example.com', 'Accept:  text/html \t', 'X-Empty:'));
  t.same(g && { ...g, headers: { ...g.headers } }, {
    method: 'GET',
    url: '/master1/job/x?y=1',
    headers: { host: 'pse.example.com', accept: 'text/html', 'x-empty': '' },
    close: false,
  });
  // A plain object (fast in V8): names Object's prototype has must not leak in or mislead the checks.
  t.equal(parseRequestHead(head('GET / HTTP/1.1', 'Host: a', '__proto__: x')), null, '__proto__ goes to Node');
  t.same(parseRequestHead(head('GET / HTTP/1.1', 'Host: a', 'Constructor: x'))?.headers, { host: 'a', constructor: 'x' }, 'an inherited name is an ordinary header');
  t.equal(parseRequestHead(head('GET / HTTP/1.1', 'Host: a', 'constructor: x', 'constructor: y')), null, 'and repeating it is a repeat');
  t.equal(parseRequestHead(head('GET / HTTP/1.1', 'Host: a', 'toString: x'))?.headers['tostring'], 'x');
  const h = parseRequestHead(head('HEAD / HTTP/1.1', 'HOST:\tpse.example.com', 'User-Agent: curl/8'));
  t.equal(h?.method, 'HEAD');
  t.equal(h?.url, '/');
  t.same({ ...h?.headers }, { host: 'pse.example.com', 'user-agent': 'curl/8' }, 'names lower-cased, OWS trimmed');

  const table: [string, boolean][] = [
    ['close', true],
    ['Close', true],
    ['keep-alive', false],
    ['Keep-Alive', false],
    ['keep-alive, close', true],
    ['x-trace', false],
  ];
  for (const [value, close] of table) {
    const r = parseRequestHead(head('GET / HTTP/1.1', 'Host: a', `Connection: ${value}`));
    t.equal(r?.close, close, `Connection: ${value}`);
    t.equal(r?.headers.connection, value);
  }
  t.equal(parseRequestHead(head('GET / HTTP/1.1', 'Host: a'))?.close, false, 'no Connection header: keep-alive');
  t.equal(parseRequestHead(head('GET / HTTP/1.1', 'Host: a', 'X-Latin: caf\xe9'))?.headers['x-latin'], 'caf\xe9', 'obs-text in a value is kept');
});

t.test('parseRequestHead leaves everything else to Node (null)', async (t) => {
  const table: [string, string][] = [
    ['POST', head('POST / HTTP/1.1', 'Host: a')],
    ['lower-case method', head('get / HTTP/1.1', 'Host: a')],
    ['OPTIONS', head('OPTIONS / HTTP/1.1', 'Host: a')],
    ['HTTP/1.0', head('GET / HTTP/1.0', 'Host: a')],
    ['HTTP/2.0', head('GET / HTTP/2.0', 'Host: a')],
    ['version with trailing space', head('GET / HTTP/1.1 ', 'Host: a')],
    ['absolute-form target', head('GET http://a/ HTTP/1.1', 'Host: a')],
    ['asterisk target', head('GET * HTTP/1.1', 'Host: a')],
    ['authority-form target', head('GET a:80 HTTP/1.1', 'Host: a')],
    ['double space before target', head('GET  / HTTP/1.1', 'Host: a')],
    ['space in target', head('GET /a b HTTP/1.1', 'Host: a')],
    ['HTAB in target', head('GET /a\tb HTTP/1.1', 'Host: a')],
    ['CTL in target', head('GET /a\x01b HTTP/1.1', 'Host: a')],
    ['NUL in target', head('GET /a\x00b HTTP/1.1', 'Host: a')],
    ['DEL in target', head('GET /a\x7fb HTTP/1.1', 'Host: a')],
    ['non-ASCII in target', head('GET /caf\xe9 HTTP/1.1', 'Host: a')],
    ['request line only', 'GET / HTTP/1.1'],
    ['no Host', head('GET / HTTP/1.1', 'Accept: */*')],
    ['empty Host', head('GET / HTTP/1.1', 'Host:')],
    ['blank Host', head('GET / HTTP/1.1', 'Host:  \t ')],
    ['two Hosts', head('GET / HTTP/1.1', 'Host: a', 'Host: b')],
    ['two Hosts, case-different', head('GET / HTTP/1.1', 'Host: a', 'hOST: a')],
    ['duplicate other header', head('GET / HTTP/1.1', 'Host: a', 'Accept: x', 'accept: y')],
    ['content-length', head('GET / HTTP/1.1', 'Host: a', 'Content-Length: 0')],
    ['transfer-encoding', head('GET / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked')],
    ['expect', head('GET / HTTP/1.1', 'Host: a', 'Expect: 100-continue')],
    ['upgrade', head('GET / HTTP/1.1', 'Host: a', 'Upgrade: websocket')],
    ['http2-settings', head('GET / HTTP/1.1', 'Host: a', 'HTTP2-Settings: AAMAAABkAAQAAP__')],
    ['Connection: upgrade', head('GET / HTTP/1.1', 'Host: a', 'Connection: Upgrade')],
    ['Connection: keep-alive, upgrade', head('GET / HTTP/1.1', 'Host: a', 'Connection: keep-alive, upgrade')],
    ['obs-fold with SP', head('GET / HTTP/1.1', 'Host: a', 'X-A: one', ' two')],
    ['obs-fold with HTAB', head('GET / HTTP/1.1', 'Host: a', 'X-A: one', '\ttwo: three')],
    ['space in header name', head('GET / HTTP/1.1', 'Host: a', 'X A: 1')],
    ['space before colon', head('GET / HTTP/1.1', 'Host : a')],
    ['non-tchar in name', head('GET / HTTP/1.1', 'Host: a', 'X(A): 1')],
    ['non-ASCII in name', head('GET / HTTP/1.1', 'Host: a', 'X-\xe9: 1')],
    ['empty name', head('GET / HTTP/1.1', 'Host: a', ': 1')],
    ['NUL in value', head('GET / HTTP/1.1', 'Host: a', 'X-A: 1\x002')],
    ['CR in value', head('GET / HTTP/1.1', 'Host: a', 'X-A: 1\r2')],
    ['LF in value', head('GET / HTTP/1.1', 'Host: a', 'X-A: 1\n2')],
    ['DEL in value', head('GET / HTTP/1.1', 'Host: a', 'X-A: 1\x7f2')],
    ['CTL in Host', head('GET / HTTP/1.1', 'Host: a\x0bb')],
    ['line without colon', head('GET / HTTP/1.1', 'Host: a', 'X-A 1')],
    ['bare LF line endings', 'GET / HTTP/1.1\nHost: a\nAccept: */*'],
    ['bare LF after the request line', 'GET / HTTP/1.1\nHost: a\r\nAccept: */*'],
    ['bare LF between fields', head('GET / HTTP/1.1', 'Host: a\nX-A: 1')],
  ];
  for (const [name, h] of table) t.equal(parseRequestHead(h), null, name);
});

const res = (...lines: string[]) => lines.join('\r\n');

/** The BadResponse `fn` throws ('' when it returns, or the error's text when it is not a BadResponse). */
function refusal(fn: () => unknown): string {
  try {
    fn();
    return '';
  } catch (err) {
    return err instanceof BadResponse ? 'BadResponse' : String(err);
  }
}

t.test('parseResponseHead: framing and keep-alive (RFC 9112 §6.3, §9.3)', async (t) => {
  const table: [string, string, boolean, { status: number; reason: string; framing: string; length: number; keepAlive: boolean }][] = [
    ['200 + CL', res('HTTP/1.1 200 OK', 'Content-Length: 42'), false, { status: 200, reason: 'OK', framing: 'length', length: 42, keepAlive: true }],
    ['CL 0', res('HTTP/1.1 200 OK', 'Content-Length: 0'), false, { status: 200, reason: 'OK', framing: 'length', length: 0, keepAlive: true }],
    ['same CL twice', res('HTTP/1.1 200 OK', 'Content-Length: 7', 'content-length: 7'), false, { status: 200, reason: 'OK', framing: 'length', length: 7, keepAlive: true }],
    ['chunked', res('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked'), false, { status: 200, reason: 'OK', framing: 'chunked', length: 0, keepAlive: true }],
    ['Chunked (case)', res('HTTP/1.1 200 OK', 'Transfer-Encoding: Chunked'), false, { status: 200, reason: 'OK', framing: 'chunked', length: 0, keepAlive: true }],
    ['no CL', res('HTTP/1.1 200 OK', 'Content-Type: text/plain'), false, { status: 200, reason: 'OK', framing: 'close', length: 0, keepAlive: false }],
    ['no CL, keep-alive claimed', res('HTTP/1.1 200 OK', 'Connection: keep-alive'), false, { status: 200, reason: 'OK', framing: 'close', length: 0, keepAlive: false }],
    ['HEAD request', res('HTTP/1.1 200 OK', 'Content-Length: 42'), true, { status: 200, reason: 'OK', framing: 'none', length: 0, keepAlive: true }],
    ['HEAD request, chunked', res('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked'), true, { status: 200, reason: 'OK', framing: 'none', length: 0, keepAlive: true }],
    ['HEAD request, no CL', res('HTTP/1.1 200 OK'), true, { status: 200, reason: 'OK', framing: 'none', length: 0, keepAlive: true }],
    ['204', res('HTTP/1.1 204 No Content'), false, { status: 204, reason: 'No Content', framing: 'none', length: 0, keepAlive: true }],
    ['304 with CL', res('HTTP/1.1 304 Not Modified', 'Content-Length: 100'), false, { status: 304, reason: 'Not Modified', framing: 'none', length: 0, keepAlive: true }],
    ['100', res('HTTP/1.1 100 Continue'), false, { status: 100, reason: 'Continue', framing: 'none', length: 0, keepAlive: true }],
    ['103', res('HTTP/1.1 103 Early Hints', 'Link: </s.css>; rel=preload'), false, { status: 103, reason: 'Early Hints', framing: 'none', length: 0, keepAlive: true }],
    ['no reason', 'HTTP/1.1 200', false, { status: 200, reason: '', framing: 'close', length: 0, keepAlive: false }],
    ['empty reason', 'HTTP/1.1 404 ', false, { status: 404, reason: '', framing: 'close', length: 0, keepAlive: false }],
    ['1.0 + CL', res('HTTP/1.0 200 OK', 'Content-Length: 5'), false, { status: 200, reason: 'OK', framing: 'length', length: 5, keepAlive: false }],
    ['1.0 + CL + keep-alive', res('HTTP/1.0 200 OK', 'Content-Length: 5', 'Connection: Keep-Alive'), false, { status: 200, reason: 'OK', framing: 'length', length: 5, keepAlive: true }],
    ['1.0 no CL + keep-alive', res('HTTP/1.0 200 OK', 'Connection: keep-alive'), false, { status: 200, reason: 'OK', framing: 'close', length: 0, keepAlive: false }],
    ['1.1 Connection: close', res('HTTP/1.1 200 OK', 'Content-Length: 5', 'Connection: close'), false, { status: 200, reason: 'OK', framing: 'length', length: 5, keepAlive: false }],
    ['1.1 Connection: Close', res('HTTP/1.1 200 OK', 'Content-Length: 5', 'Connection: Close'), false, { status: 200, reason: 'OK', framing: 'length', length: 5, keepAlive: false }],
    ['204 + Connection: close', res('HTTP/1.1 204 No Content', 'Connection: close'), false, { status: 204, reason: 'No Content', framing: 'none', length: 0, keepAlive: false }],
  ];
  for (const [name, h, headRequest, want] of table) {
    const r = parseResponseHead(h, headRequest);
    t.same({ status: r.status, reason: r.reason, framing: r.framing, length: r.length, keepAlive: r.keepAlive }, want, name);
  }
});

t.test('parseResponseHead: header values as Node gives them', async (t) => {
  const r = parseResponseHead(
    res(
      'HTTP/1.1 200 OK',
      'Content-Length: 2',
      'Set-Cookie: a=1; Path=/',
      'X-Multi: one',
      'set-cookie: b=2',
      'x-multi: two',
      'Vary:  Accept \t',
      'X-Latin: caf\xe9',
    ),
    false,
  );
  t.same({ ...r.headers }, {
    'content-length': '2',
    'set-cookie': ['a=1; Path=/', 'b=2'],
    'x-multi': 'one, two',
    vary: 'Accept',
    'x-latin': 'caf\xe9',
  });
  t.same(parseResponseHead(res('HTTP/1.1 200 OK', 'Set-Cookie: only=1', 'Content-Length: 0'), false).headers['set-cookie'], ['only=1'], 'one cookie is an array too');
  const c = parseResponseHead(res('HTTP/1.1 200 OK', 'Content-Length: 99', 'Transfer-Encoding: chunked'), false);
  t.equal(c.framing, 'chunked', 'chunked wins over CL');
  t.equal(c.headers['content-length'], undefined, 'the lying CL is removed');
  t.equal(c.headers['transfer-encoding'], 'chunked');
});

t.test('parseResponseHead throws BadResponse on what a proxy must not pass on', async (t) => {
  const table: [string, string][] = [
    ['empty', ''],
    ['not HTTP', 'SSH-2.0-OpenSSH_9.6'],
    ['HTTP/2', res('HTTP/2 200', 'Content-Length: 0')],
    ['HTTP/1.2', res('HTTP/1.2 200 OK', 'Content-Length: 0')],
    ['two-digit status', res('HTTP/1.1 20 OK', 'Content-Length: 0')],
    ['four-digit status', res('HTTP/1.1 2000 OK', 'Content-Length: 0')],
    ['status below 100', res('HTTP/1.1 099 Odd', 'Content-Length: 0')],
    ['no space after version', res('HTTP/1.1200 OK', 'Content-Length: 0')],
    ['lower-case http', res('http/1.1 200 OK', 'Content-Length: 0')],
    ['garbage', res('HTTP/1.1 abc', 'Content-Length: 0')],
    ['conflicting CL', res('HTTP/1.1 200 OK', 'Content-Length: 5', 'Content-Length: 6')],
    ['CL list', res('HTTP/1.1 200 OK', 'Content-Length: 5, 5')],
    ['negative CL', res('HTTP/1.1 200 OK', 'Content-Length: -1')],
    ['hex CL', res('HTTP/1.1 200 OK', 'Content-Length: 0x10')],
    ['empty CL', res('HTTP/1.1 200 OK', 'Content-Length:')],
    ['CL with sign', res('HTTP/1.1 200 OK', 'Content-Length: +5')],
    ['CL of 16 digits', res('HTTP/1.1 200 OK', 'Content-Length: 1234567890123456')],
    ['TE gzip', res('HTTP/1.1 200 OK', 'Transfer-Encoding: gzip')],
    ['TE gzip, chunked', res('HTTP/1.1 200 OK', 'Transfer-Encoding: gzip, chunked')],
    ['TE chunked twice in one line', res('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked, chunked')],
    ['TE chunked on two lines', res('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', 'Transfer-Encoding: chunked')],
    ['TE identity', res('HTTP/1.1 200 OK', 'Transfer-Encoding: identity')],
    ['NUL in value', res('HTTP/1.1 200 OK', 'X-A: 1\x002', 'Content-Length: 0')],
    ['CTL in value', res('HTTP/1.1 200 OK', 'X-A: 1\x1b2', 'Content-Length: 0')],
    ['DEL in value', res('HTTP/1.1 200 OK', 'X-A: 1\x7f2', 'Content-Length: 0')],
    ['bare CR in value', res('HTTP/1.1 200 OK', 'X-A: 1\r2', 'Content-Length: 0')],
    ['bare LF line ending', 'HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 0'],
    ['space in name', res('HTTP/1.1 200 OK', 'X A: 1', 'Content-Length: 0')],
    ['space before colon', res('HTTP/1.1 200 OK', 'Content-Length : 0')],
    ['non-tchar in name', res('HTTP/1.1 200 OK', 'X@A: 1', 'Content-Length: 0')],
    ['line without colon', res('HTTP/1.1 200 OK', 'X-A', 'Content-Length: 0')],
    ['obs-fold', res('HTTP/1.1 200 OK', 'X-A: 1', ' 2', 'Content-Length: 0')],
  ];
  for (const [name, h] of table) t.equal(refusal(() => parseResponseHead(h, false)), 'BadResponse', name);
  // Even a HEAD response or a 304 has to be well-formed: a conflicting length says the backend is out of step.
  t.equal(refusal(() => parseResponseHead(res('HTTP/1.1 200 OK', 'Content-Length: 5', 'Content-Length: 6'), true)), 'BadResponse', 'conflicting CL on HEAD');
  t.equal(refusal(() => parseResponseHead(res('HTTP/1.1 304 Not Modified', 'X A: 1'), false)), 'BadResponse', 'bad name on 304');
  // A Transfer-Encoding on a bodyless response is not looked at (no body to frame).
  t.equal(parseResponseHead(res('HTTP/1.1 204 No Content', 'Transfer-Encoding: gzip'), false).framing, 'none');
});

/** A chunked body with extensions (with and without a value, BWS), several chunks, a 16-byte chunk and trailers. */
const chunked = Buffer.from(
  ['5;name=value', 'hello', '1 ;x', ' ', '10', '0123456789abcdef', 'A', 'ten bytes!', '0;last', 'X-Trailer: 1', 'X-Sum: abc', '', ''].join('\r\n'),
  'latin1',
);
const chunkedPayload = 5 + 1 + 16 + 10;

t.test('ChunkedTracker finds the end of a chunked body however it is split', async (t) => {
  const whole = new ChunkedTracker();
  t.equal(whole.feed(chunked, 0), chunked.length, 'fed whole');
  t.equal(whole.payload, chunkedPayload);

  const byByte = new ChunkedTracker();
  const ends: number[] = [];
  for (let i = 0; i < chunked.length; i++) {
    const r = byByte.feed(chunked.subarray(i, i + 1), 0);
    if (r !== -1) ends.push(i + r);
  }
  t.same(ends, [chunked.length], 'byte by byte: the end is found once, on the last byte');
  t.equal(byByte.payload, chunkedPayload);

  const wrong: string[] = [];
  for (let split = 0; split <= chunked.length; split++) {
    const tr = new ChunkedTracker();
    // Two feeds of the same buffer with a start offset, as the lane feeds the bytes after a head.
    const first = tr.feed(chunked.subarray(0, split), 0);
    const end = first !== -1 ? first : split + tr.feed(Buffer.concat([Buffer.from('HEAD'), chunked.subarray(split)]), 4) - 4;
    if (end !== chunked.length || tr.payload !== chunkedPayload || (first !== -1 && split !== chunked.length)) wrong.push(`split ${split}: end ${end}, payload ${tr.payload}`);
  }
  t.same(wrong, [], 'split at every index into two feeds');

  const empty = Buffer.from('0\r\n\r\n');
  const e = new ChunkedTracker();
  t.equal(e.feed(empty, 0), 5, 'empty body');
  t.equal(e.payload, 0);
  const upper = new ChunkedTracker();
  t.equal(upper.feed(Buffer.from('aB\r\n' + 'x'.repeat(0xab) + '\r\n0\r\n\r\n'), 0), 4 + 0xab + 2 + 5, 'mixed-case hex');
  t.equal(upper.payload, 0xab);
  const twelve = new ChunkedTracker();
  t.equal(twelve.feed(Buffer.from('000000000003\r\nabc\r\n0\r\n\r\n'), 0), 24, '12 hex digits (leading zeros) are fine');
});

t.test('ChunkedTracker returns the index past the end when more bytes follow', async (t) => {
  const extra = Buffer.concat([chunked, Buffer.from('HTTP/1.1 200 OK\r\n')]);
  t.equal(new ChunkedTracker().feed(extra, 0), chunked.length);
  const offset = Buffer.concat([Buffer.from('xyz'), chunked, Buffer.from('junk')]);
  t.equal(new ChunkedTracker().feed(offset, 3), 3 + chunked.length, 'from a start offset');
  const done = new ChunkedTracker();
  done.feed(chunked, 0);
  t.equal(done.feed(Buffer.from('more'), 0), 0, 'a finished tracker reports the end at once');
});

t.test('ChunkedTracker rejects broken framing', async (t) => {
  const table: [string, string][] = [
    ['bad hex', '5x\r\nhello\r\n0\r\n\r\n'],
    ['no digits', '\r\nhello\r\n0\r\n\r\n'],
    ['extension without size', ';x\r\n'],
    ['negative', '-5\r\nhello\r\n0\r\n\r\n'],
    ['0x prefix', '0x5\r\nhello\r\n0\r\n\r\n'],
    ['13 hex digits', '0000000000005\r\nhello\r\n0\r\n\r\n'],
    ['13 hex digits of a large size', '1000000000000\r\n'],
    ['bare LF after size', '5\nhello\r\n0\r\n\r\n'],
    ['CR then not LF after size', '5\rXhello\r\n0\r\n\r\n'],
    ['missing CRLF after data', '5\r\nhello0\r\n\r\n'],
    ['data longer than size', '5\r\nhello!\r\n0\r\n\r\n'],
    ['LF only after data', '5\r\nhello\n0\r\n\r\n'],
    ['CR then not LF after data', '5\r\nhello\rX0\r\n\r\n'],
    ['bad end', '0\r\n\rX'],
  ];
  for (const [name, body] of table) {
    t.equal(refusal(() => new ChunkedTracker().feed(Buffer.from(body, 'latin1'), 0)), 'BadResponse', `${name} (whole)`);
    const tr = new ChunkedTracker();
    const byByte = () => {
      for (let i = 0; i < body.length; i++) tr.feed(Buffer.from(body.slice(i, i + 1), 'latin1'), 0);
    };
    t.equal(refusal(byByte), 'BadResponse', `${name} (byte by byte)`);
  }
});

t.test('serializeHead', async (t) => {
  const b = serializeHead('HTTP/1.1 200 OK', {
    'content-type': 'text/html',
    'set-cookie': ['a=1; Path=/', 'b=2'],
    'x-skipped': undefined,
    'content-length': 12,
    'x-latin': 'caf\xe9',
  });
  t.equal(b.toString('latin1'), 'HTTP/1.1 200 OK\r\ncontent-type: text/html\r\nset-cookie: a=1; Path=/\r\nset-cookie: b=2\r\ncontent-length: 12\r\nx-latin: caf\xe9\r\n\r\n');
  t.equal(b.subarray(b.indexOf('caf') + 3, b.indexOf('caf') + 4)[0], 0xe9, 'one byte 0xE9, not UTF-8');
  t.equal(serializeHead('GET / HTTP/1.1', {}).toString('latin1'), 'GET / HTTP/1.1\r\n\r\n');
  t.equal(serializeHead('GET / HTTP/1.1', { a: [] }).toString('latin1'), 'GET / HTTP/1.1\r\n\r\n', 'an empty array writes nothing');

  // Round trip: bytes read as latin1, parsed, serialized again are the same bytes.
  const wire = Buffer.from('HTTP/1.1 200 OK\r\nx-name: Ren\xe9 \xff\r\ncontent-length: 0\r\n\r\n', 'latin1');
  const parsed = parseResponseHead(wire.toString('latin1', 0, wire.length - 4), false);
  t.same(serializeHead(`HTTP/1.1 ${parsed.status} ${parsed.reason}`, parsed.headers), wire, 'latin1 bytes round-trip');
  const req = Buffer.from('GET /x HTTP/1.1\r\nhost: a\r\nx-user: J\xe9r\xf4me\r\n\r\n', 'latin1');
  const rh = parseRequestHead(req.toString('latin1', 0, req.length - 4))!;
  t.same(serializeHead(`${rh.method} ${rh.url} HTTP/1.1`, rh.headers), req, 'request head round-trips');
});

t.test('Connection tokens are whole list elements, not substrings; Transfer-Encoding in HTTP/1.0 is faulty framing', async (t) => {
  t.equal(parseRequestHead('GET / HTTP/1.1\r\nHost: a\r\nConnection: x-closet')?.close, false);
  t.equal(parseRequestHead('GET / HTTP/1.1\r\nHost: a\r\nConnection: x-foo, Close')?.close, true);
  t.not(parseRequestHead('GET / HTTP/1.1\r\nHost: a\r\nConnection: x-upgraded'), null);
  t.equal(parseRequestHead('GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade'), null);
  t.equal(parseResponseHead('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: x-enclosed', false).keepAlive, true);
  t.equal(parseResponseHead('HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: x-keep-alive-ish', false).keepAlive, false);
  t.same([hasToken('a, b ,C', 'c'), hasToken('abc', 'b'), hasToken('', 'close')], [true, false, false]);
  t.throws(() => parseResponseHead('HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked', false), { name: 'Error', message: 'transfer-encoding in an HTTP/1.0 response' });
});

t.test('parseResponseHead keeps prototype names out of its plain header object', async (t) => {
  t.throws(() => parseResponseHead('HTTP/1.1 200 OK\r\n__proto__: {}\r\nContent-Length: 0', false), { message: 'a header named __proto__' });
  const r = parseResponseHead('HTTP/1.1 200 OK\r\nconstructor: a\r\nConstructor: b\r\nvalueOf: c\r\nContent-Length: 0', false);
  t.same(r.headers, { constructor: 'a, b', valueof: 'c', 'content-length': '0' });
  t.equal(Object.getPrototypeOf(r.headers), Object.prototype);
});
