import { get, type IncomingMessage } from 'node:http';

export interface SseEvent {
  event: string;
  data: string;
}

/** A minimal EventSource for tests: parses `event:`/`data:` blocks and hands them out in order. */
export async function openEvents(url: string) {
  const queue: SseEvent[] = [];
  const waiters: ((e: SseEvent) => void)[] = [];
  const res = await new Promise<IncomingMessage>((resolve, reject) => get(url, resolve).on('error', reject));
  let buf = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    buf += chunk;
    let end;
    while ((end = buf.indexOf('\n\n')) !== -1) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const lines = block.split('\n');
      const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
      const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      if (!event) continue;
      const e = { event, data };
      const w = waiters.shift();
      if (w) w(e);
      else queue.push(e);
    }
  });
  return {
    status: res.statusCode,
    headers: res.headers,
    /** The next event; fails after `timeoutMs` so a missing event cannot hang the suite. */
    next(timeoutMs = 5000): Promise<SseEvent> {
      const queued = queue.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no event within ' + timeoutMs + ' ms')), timeoutMs);
        waiters.push((e) => {
          clearTimeout(timer);
          resolve(e);
        });
      });
    },
    pending: () => queue.length,
    ended: new Promise<void>((resolve) => res.on('close', () => resolve())),
    close: () => res.destroy(),
  };
}
