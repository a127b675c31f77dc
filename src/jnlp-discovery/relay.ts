import type { Socket } from 'node:net';

/**
 * One direction of an agent connection's relay, reading through net's `onread` (nodejs/node#25436) instead of
 * `stream.pipe` (issue #5: throughput through a forwarder vs direct). A piped socket allocates a fresh 64 KiB
 * ArrayBuffer per read (GC work) and hands each chunk through Readable's buffer, 'data' and pipe's ondata before
 * the write; `onread` reads into a buffer we choose and calls us with the byte count. Profiled on the bench's
 * 256 MiB stream, the forwarder's CPU per run fell from ~150 to ~110 ms; the rest is kernel copies.
 */

/** Reads of a quiet connection land here; each is copied out before the next read can happen (one event loop). */
const SHARED_SIZE = 16 * 1024;
/** A connection whose read filled the shared buffer is streaming: it gets its own buffer, written without a copy. */
const OWN_SIZE = 64 * 1024;
/**
 * One whose reads fill that too moves bulk (an artifact, a workspace): 256 KiB reads. Measured on the bench's
 * 256 MiB stream against 64 KiB, interleaved in one run: 0.90 vs 0.84 of direct (forwarder, best of 9) and
 * 0.89 vs 0.84 (shared port, median); 1 MiB reads did worse than either (0.80–0.88). nginx's stream proxy
 * shows the same: 0.71 of direct with its 16 KiB default proxy_buffer_size, 0.88 with 256 KiB.
 */
export const BULK_SIZE = 256 * 1024;
const shared = Buffer.allocUnsafeSlow(SHARED_SIZE);

/** The `onread` option of net.connect / new net.Socket (Node ≥ 12.1; `buffer` may be a function since 13.6). */
export interface OnRead {
  readonly buffer: () => Uint8Array;
  readonly callback: (nread: number, buf: Uint8Array) => boolean;
}

/**
 * Writes what is read into `to`. An idle agent channel (they live for days) holds no buffer of its own, a
 * streaming one 64 KiB (the read size pipe uses anyway), and only one moving bulk 256 KiB, next to the
 * megabytes the kernel's autotuned socket buffers hold for such a connection.
 *
 * A buffer handed to `to.write` is referenced until the kernel took it: a write that completed at once (the usual
 * case, `to.writableLength` back to 0) leaves it free for the next read; a queued one keeps it, and the next read
 * gets a new one. `write() === false` stops reading (returning false is onread's pause) until `to` drains.
 */
export function relayReads(to: Socket, from: () => Socket | undefined, counted?: (n: number) => void): OnRead {
  let own: Buffer | null = null;
  let waiting = false;
  const drained = () => {
    waiting = false;
    from()?.resume();
  };
  return {
    buffer: () => own ?? shared,
    callback: (nread, buf) => {
      let chunk: Buffer;
      if (buf === shared) {
        chunk = Buffer.from(shared.subarray(0, nread));
        if (nread === SHARED_SIZE) own = Buffer.allocUnsafeSlow(OWN_SIZE);
      } else {
        chunk = nread === buf.length ? (buf as Buffer) : (buf as Buffer).subarray(0, nread);
      }
      const ok = to.write(chunk);
      counted?.(nread);
      if (buf !== shared) {
        // A trickle goes back to the shared buffer, a full read steps up to bulk reads, and a read whose bytes
        // are still queued needs a new buffer of its size.
        if (nread < SHARED_SIZE) own = null;
        else if (nread === buf.length && buf.length < BULK_SIZE) own = Buffer.allocUnsafeSlow(BULK_SIZE);
        else if (to.writableLength > 0) own = Buffer.allocUnsafeSlow(buf.length);
      }
      if (ok) return true;
      if (!waiting) {
        waiting = true;
        to.once('drain', drained);
      }
      return false;
    },
  };
}

interface OnReadFields {
  [key: symbol]: unknown;
  _handle?: { useUserBuffer?: (buf: Uint8Array) => void } | null;
  _readableState?: { ended?: boolean };
}

/**
 * Gives an accepted socket an `onread`. Node 20's net.Server has no such option (only net.connect and
 * `new net.Socket` take one), so this does what the Socket constructor does with it (lib/net.js: the kBuffer,
 * kBufferCb and kBufferGen fields onStreamRead reads, then `_handle.useUserBuffer`). Only for a socket with
 * nothing buffered and no EOF seen yet, whose bytes so far went elsewhere; returns false, changing nothing,
 * when this Node's internals differ (the caller then pipes).
 */
export function adoptOnRead(socket: Socket, onread: OnRead): boolean {
  const s = socket as unknown as OnReadFields;
  const symbols = Object.getOwnPropertySymbols(socket);
  const field = (name: string) => symbols.find((k) => k.description === name);
  const [kBuffer, kBufferCb, kBufferGen] = [field('kBuffer'), field('kBufferCb'), field('kBufferGen')];
  const handle = s._handle;
  if (!kBuffer || !kBufferCb || !kBufferGen || typeof handle?.useUserBuffer !== 'function') return false;
  if (s[kBuffer] !== null || s[kBufferCb] !== null || s[kBufferGen] !== null) return false;
  if (socket.destroyed || socket.readableLength > 0 || s._readableState?.ended !== false) return false;
  const first = onread.buffer();
  s[kBuffer] = first;
  s[kBufferCb] = onread.callback;
  s[kBufferGen] = onread.buffer;
  handle.useUserBuffer(first);
  return true;
}
