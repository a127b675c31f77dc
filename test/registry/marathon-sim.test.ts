import { request } from 'node:http';
import t from 'tap';
import { masterApp, startMarathonSim } from '../helpers/marathon-sim.js';

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; location?: string }> {
  const res = await fetch(url, { headers, redirect: 'manual' });
  return { status: res.status, body: await res.text(), location: res.headers.get('location') ?? undefined };
}

/** Reads the first `n` bytes of an SSE stream. */
function readStream(url: string, n: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream' } }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        if (buf.length >= n) {
          req.destroy();
          resolve(buf.slice(0, n));
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('marathon sim serves apps, leader, 404 and an SSE stream with CRLF', async (t) => {
  const sim = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: 8081, ssh: 2201 } })], heartbeatMs: 20 });
  t.teardown(() => sim.close());

  const list = JSON.parse((await get(`${sim.url}/v2/apps?embed=apps.tasks`)).body);
  t.equal(list.apps.length, 1);
  t.same(list.apps[0].portDefinitions.map((p: { name: string }) => p.name), ['http', 'ssh']);
  t.same(list.apps[0].tasks[0].ports, [8081, 2201]);
  t.equal(JSON.parse((await get(`${sim.url}/v2/apps`)).body).apps[0].tasks, undefined);
  t.same(JSON.parse((await get(`${sim.url}/v2/leader`)).body), { leader: sim.hostPort });
  t.same(await get(`${sim.url}/v2/apps/nope?embed=app.tasks`), { status: 404, body: `{"message":"App '/nope' does not exist"}`, location: undefined });
  t.equal((await get(`${sim.url}/v2/events`, { accept: 'text/event-stream, */*' })).status, 405);

  const head = await readStream(`${sim.url}/v2/events`, 'event: event_stream_attached\r\n'.length);
  t.equal(head, 'event: event_stream_attached\r\n');
  t.equal(sim.count('/v2/events'), 2);

  const standby = await startMarathonSim({ leader: sim.url });
  t.teardown(() => standby.close());
  const redirect = await get(`${standby.url}/v2/events?event_type=status_update_event`, { accept: 'text/event-stream' });
  t.equal(redirect.status, 307);
  t.equal(redirect.location, `${sim.url}/v2/events?event_type=status_update_event`);
});
