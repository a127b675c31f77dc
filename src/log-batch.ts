import { writeSync } from 'node:fs';

/** What LineBatch needs from pino's destination (a sonic-boom). */
export interface LineSink {
  write(data: string): boolean;
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
}

const batches = new Set<LineBatch>();
// Registered when this module loads, so before pino's own exit hook (added with the first destination): the
// lines held here reach the file descriptor after what sonic-boom still holds, in order.
process.on('exit', () => {
  for (const b of batches) b.flushSync();
});

/**
 * Log lines joined into batches of about `size` bytes before they reach sonic-boom. Its write() measures the
 * byte length of the string it appends to on every call, which made one buffered access-log line cost 4 µs
 * (bench:http); handing it one string per batch pays that once per batch.
 */
export class LineBatch {
  private parts: string[] = [];
  private length = 0;

  constructor(
    private readonly sink: LineSink,
    /** The sink's file descriptor, written to directly at exit. */
    private readonly fd: number,
    private readonly size: number,
  ) {
    batches.add(this);
  }

  write(line: string): boolean {
    this.parts.push(line);
    this.length += line.length;
    if (this.length >= this.size) this.push();
    return true;
  }

  /** pino's `logger.flush()`: what is held goes to the sink, and the sink writes it out. */
  flush(cb?: (err?: Error) => void): void {
    this.push();
    this.sink.flush(cb);
  }

  flushSync(): void {
    if (this.parts.length === 0) return;
    const rest = this.take();
    try {
      this.sink.flushSync();
    } catch {
      // The sink is closed or not ready: what it held is lost either way; ours still goes out below.
    }
    writeSync(this.fd, rest);
  }

  private push(): void {
    if (this.parts.length > 0) this.sink.write(this.take());
  }

  private take(): string {
    const s = this.parts.length === 1 ? this.parts[0]! : this.parts.join('');
    this.parts = [];
    this.length = 0;
    return s;
  }
}
