import t from 'tap';
import { parseConfig } from '../../src/config/schema.js';
import { startGateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';
import { startBackend } from '../helpers/backends.js';
import { masterApp, startMarathonSim } from '../helpers/marathon-sim.js';
import { ask, domain } from './setup.js';

t.test('a task moved in Marathon changes the backend through the real source, without restart', async (t) => {
  const b1 = await startBackend('task-a');
  const b2 = await startBackend('task-b');
  const sim = await startMarathonSim({ apps: [masterApp('master1', { host: '127.0.0.1', ports: { http: b1.port } })] });
  const gw = await startGateway(parseConfig({ domains: [domain], marathon: { urls: [sim.url] }, http: { listen: '127.0.0.1:0' } }), { log: silentLogger() });
  t.teardown(async () => {
    await gw.close(0);
    await sim.close();
    await b1.close();
    await b2.close();
  });
  await sim.waitForStream(1);
  const port = gw.addresses()['http.http']!.port;
  t.equal(JSON.parse((await ask(port, '/master1/')).body).backend, 'task-a');

  const changed = new Promise<void>((resolve) => {
    const off = gw.registry.subscribe((next) => {
      if (next.routes.get('master1')?.endpoints.http[0]?.port === b2.port) {
        off();
        resolve();
      }
    });
  });
  sim.moveTask('/masters/master1', { host: '127.0.0.1', ports: [b2.port] });
  await changed;
  t.equal(JSON.parse((await ask(port, '/master1/')).body).backend, 'task-b');
  t.equal(JSON.parse((await ask(port, '/x', { host: `master1.${domain}` })).body).backend, 'task-b');
});
