import t from 'tap';
import { masterRoute } from '../helpers/registry.js';
import { startAdmin } from './start-admin.js';

const ep = (port: number) => [{ host: '127.0.0.1', port }];

/** Every series issue #6 names, and the agent ports' own (issue #5), by its exported name. */
const named = [
  'ci_edge_http_requests_total',
  'ci_edge_http_request_duration_seconds',
  'ci_edge_http_bytes_total',
  'ci_edge_websockets_open',
  'ci_edge_ssh_tunnels_open',
  'ci_edge_ssh_tunnels_opened_total',
  'ci_edge_ssh_tunnels_refused_total',
  'ci_edge_ssh_bytes_total',
  'ci_edge_routes',
  'ci_edge_registry_sync_duration_seconds',
  'ci_edge_registry_last_sync_age_seconds',
  'ci_edge_marathon_sse_reconnects_total',
  'ci_edge_marathon_errors_total',
  'ci_edge_jnlp_forwards_open',
  'ci_edge_jnlp_connections_total',
  'ci_edge_jnlp_connect_duration_seconds',
  'ci_edge_jnlp_bytes_total',
];

t.test('GET /metrics: Prometheus text with every named series and the process defaults', async (t) => {
  const a = await startAdmin({
    routes: [masterRoute('master1', { http: ep(8081) }), masterRoute('master2', { http: ep(8082) }), masterRoute('master3', {})],
  });
  t.teardown(a.close);
  a.metrics.collectDefaults();
  a.metrics.httpRequests.inc({ route: 'master1', code: '2xx' }, 3);
  const res = await fetch(`${a.url}/metrics`);
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const text = await res.text();
  for (const name of named) t.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  t.match(text, /^ci_edge_routes\{state="running"\} 2$/m);
  t.match(text, /^ci_edge_routes\{state="starting"\} 1$/m);
  t.match(text, /^ci_edge_routes\{state="unhealthy"\} 0$/m);
  t.match(text, /^ci_edge_routes\{state="gone"\} 0$/m);
  t.match(text, /^ci_edge_http_requests_total\{route="master1",code="2xx"\} 3$/m);
  t.match(text, /^ci_edge_registry_last_sync_age_seconds \d+(\.\d+)?(e-\d+)?$/m);
  t.match(text, /^ci_edge_process_cpu_user_seconds_total /m, 'default process metrics, prefixed');
  t.match(text, /^ci_edge_nodejs_heap_size_used_bytes /m);
});

t.test('route gauges follow the registry without a scrape in between', async (t) => {
  const a = await startAdmin({ routes: [masterRoute('master1', { http: ep(8081) })] });
  t.teardown(a.close);
  a.source.set(masterRoute('master1', {}, { state: 'unhealthy', detail: 'health checks failing' }));
  a.source.set(masterRoute('master2', { http: ep(8082) }));
  const values = async () => Object.fromEntries((await a.metrics.routes.get()).values.map((v) => [v.labels['state'], v.value]));
  t.same(await values(), { running: 1, starting: 0, unhealthy: 1, gone: 0 });
  a.source.remove('master2');
  t.same(await values(), { running: 0, starting: 0, unhealthy: 1, gone: 0 });
});
