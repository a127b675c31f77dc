/**
 * Marathon's answers as text, and the body of `GET /v2/apps?embed=apps.tasks` read one app at a time.
 *
 * The 8.3 MiB body of 2000 apps (issue #2) takes 7-25 ms to arrive and 27-35 ms to JSON.parse. Read whole, then
 * parsed, the two add up; parsed one app at a time as the bytes come, and each app mapped and dropped before the
 * next, they overlap, and the body and its parsed tree are never held at once.
 *
 * Marathon writes `{"apps":[{"id":"/…",…},{"id":"/…",…}]}`, compact, each app's `id` first. The search for
 * `},{"id":"/` proposes where an app ends; JSON.parse decides. A slice that begins where a value begins parses
 * only if it ends exactly where that value ends (any shorter is unfinished, any longer has trailing bytes), so a
 * proposal inside an app (between nested objects that also open with an `id`; never inside a string, where the
 * quotes would be escaped) only costs a failed parse and the search moves on; each accepted slice is one whole
 * app and the next one begins two bytes later. What is left is parsed after `{"apps":[`, which
 * checks the end of the document too; a body of another shape (pretty-printed, other key order) is parsed whole,
 * as before.
 */
import { isAscii } from 'node:buffer';
import { CiEdgeError } from '../../errors.js';

const head = Buffer.from('{"apps":[');
const nextApp = Buffer.from('},{"id":"/');
/**
 * Proposals that fail in a row before the search stops and the rest is parsed whole at the end: each costs a
 * parse of the app so far, so a body that defeats the search (apps whose `id` is not first after some point,
 * with nested objects that open like an app) costs at most this many, never one per app.
 */
const maxMisses = 64;

/**
 * The body as a string. Marathon's JSON is ASCII in practice (ids, hosts, ISO times; JSON escapes the rest), and
 * an ASCII buffer decodes as latin1 with a plain copy, where V8's UTF-8 decoder took ~5 ms for the 8.3 MiB
 * /v2/apps of 2000 apps (issue #2). Anything else is decoded as UTF-8 with a leading BOM dropped, as axios's
 * own `responseType: 'text'` did.
 */
export function decodeBody(body: Buffer): string {
  if (isAscii(body)) return body.toString('latin1');
  const text = body.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * Reads the body of /v2/apps as it arrives (push each chunk, then end), calling `onApp` with each element of
 * its `apps` array in order, so that parsing overlaps the transfer. Holds only the app being received, not the
 * body. `end()` returns how many apps there were and throws on bad JSON.
 */
export class AppsReader {
  private buf = Buffer.allocUnsafe(256 * 1024);
  private filled = 0;
  /** Offset in `buf` of the app being received; -1 until the head is checked. */
  private start = -1;
  /** The body does not open as Marathon's compact JSON does: it is kept whole and parsed at the end. */
  private whole = false;
  /** Where the search for the next app's end resumes (a separator may straddle two chunks). */
  private from = 0;
  private count = 0;
  private misses = 0;
  /** Body bytes received. */
  bytes = 0;

  constructor(private readonly onApp: (app: unknown) => void) {}

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.append(chunk);
    if (this.start === -1) {
      if (this.filled < head.length) return;
      this.whole = !this.buf.subarray(0, head.length).equals(head);
      this.start = this.from = head.length;
    }
    if (!this.whole && this.misses < maxMisses) this.takeApps();
  }

  end(): number {
    // A body shorter than the head is parsed whole too: it can only be an error, and JSON.parse will name it.
    const whole = this.whole || this.start === -1;
    const rest = this.buf.subarray(whole ? 0 : this.start, this.filled);
    const doc = whole ? decodeBody(rest) : '{"apps":[' + decodeBody(rest);
    const apps = (JSON.parse(doc) as { apps?: unknown } | null)?.apps;
    if (!Array.isArray(apps)) throw new CiEdgeError('E_MARATHON_BAD_RESPONSE', ['/v2/apps without an "apps" array']);
    for (let i = 0; i < apps.length; i++) this.onApp(apps[i]);
    return this.count + apps.length;
  }

  private takeApps(): void {
    const view = this.buf.subarray(0, this.filled);
    for (let end = view.indexOf(nextApp, this.from); end !== -1; end = view.indexOf(nextApp, this.from)) {
      let app: unknown;
      try {
        app = JSON.parse(decodeBody(view.subarray(this.start, end + 1)));
      } catch {
        this.from = end + 1;
        if (++this.misses === maxMisses) return;
        continue;
      }
      this.onApp(app);
      this.count++;
      this.misses = 0;
      this.start = this.from = end + 2;
    }
    this.from = Math.max(this.from, this.filled - nextApp.length + 1);
  }

  /** Appends, first dropping the apps already taken (a whole-body parse keeps everything), then growing. */
  private append(chunk: Buffer): void {
    if (this.filled + chunk.length > this.buf.length && !this.whole && this.start > 0) {
      this.buf.copy(this.buf, 0, this.start, this.filled);
      this.filled -= this.start;
      this.from -= this.start;
      this.start = 0;
    }
    if (this.filled + chunk.length > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.filled + chunk.length));
      this.buf.copy(grown, 0, 0, this.filled);
      this.buf = grown;
    }
    chunk.copy(this.buf, this.filled);
    this.filled += chunk.length;
  }
}
