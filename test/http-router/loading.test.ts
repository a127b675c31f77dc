import t from 'tap';
import { parseConfig } from '../../src/config/schema.js';
import { createHttpRouter } from '../../src/http-router/server.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { Registry } from '../../src/registry/registry.js';
import type { RouteSource, SourceSink } from '../../src/registry/types.js';
import { masterRoute } from '../helpers/registry.js';
import { ask, domain } from './setup.js';

/** A source whose first sync has not answered yet (Marathon slow at start). */
class Pending implements RouteSource {
  readonly id = 'pending';
  sink: SourceSink | null = null;
  async start(sink: SourceSink) {
    this.sink = sink;
  }
  async close() {}
}

t.test('before the first sync an unknown name is a 503 "starting" with Retry-After, then a 404', async (t) => {
  const config = parseConfig({ domains: [domain], http: { listen: '127.0.0.1:0' } });
  const source = new Pending();
  const registry = new Registry({ log: silentLogger() }).add(source);
  await registry.start();
  const router = createHttpRouter(config, {
    registry,
    log: silentLogger(),
    metrics: createMetrics(),
    httpExtensions: [],
    config,
    lifecycle: { isDraining: () => false, reload: async () => ({ ok: false, error: 'n/a' }) },
  });
  await router.start();
  t.teardown(() => router.close(Date.now()));
  const port = router.addresses()['http']!.port;

  const early = await ask(port, '/master1/', { headers: { accept: 'application/json' } });
  t.equal(early.status, 503);
  t.equal(early.headers['retry-after'], '5');
  t.same(JSON.parse(early.body), {
    status: 503,
    error: 'E_ROUTES_LOADING',
    message: 'ci-edge is starting: the route table is not loaded yet (looking for "master1")',
    route: 'master1',
    retryAfter: 5,
  });
  const byHost = await ask(port, '/', { host: `master1.${domain}` });
  t.equal(byHost.status, 503, 'domain routing too');
  t.match(byHost.body, /<meta http-equiv="refresh" content="5">/);

  source.sink!.replace([masterRoute('master2', {})]);
  const late = await ask(port, '/master1/', { headers: { accept: 'application/json' } });
  t.equal(late.status, 404, 'once loaded, an unknown name is unknown');
});
