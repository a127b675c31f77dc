import * as prom from 'prom-client';

/**
 * Every metric ci-edge exports, on one prom-client Registry per gateway (so tests can run several).
 * Front doors receive this object and only increment; the admin listener serves it.
 */
export function createMetrics() {
  const registry = new prom.Registry();
  const r = [registry];
  return {
    registry,
    collectDefaults: () => prom.collectDefaultMetrics({ register: registry, prefix: 'ci_edge_' }),
    httpRequests: new prom.Counter({ name: 'ci_edge_http_requests_total', help: 'HTTP requests by route and status class', labelNames: ['route', 'code'], registers: r }),
    httpDuration: new prom.Histogram({
      name: 'ci_edge_http_request_duration_seconds',
      help: 'Time to the end of the response',
      labelNames: ['route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: r,
    }),
    httpBytes: new prom.Counter({ name: 'ci_edge_http_bytes_total', help: 'Response bytes sent to clients', labelNames: ['route'], registers: r }),
    websocketsOpen: new prom.Gauge({ name: 'ci_edge_websockets_open', help: 'WebSocket connections open through the router', registers: r }),
    sshTunnelsOpen: new prom.Gauge({ name: 'ci_edge_ssh_tunnels_open', help: 'SSH tunnels open', registers: r }),
    sshTunnelsOpened: new prom.Counter({ name: 'ci_edge_ssh_tunnels_opened_total', help: 'SSH tunnels opened', registers: r }),
    sshTunnelsRefused: new prom.Counter({ name: 'ci_edge_ssh_tunnels_refused_total', help: 'SSH tunnels refused, by reason code', labelNames: ['reason'], registers: r }),
    sshBytes: new prom.Counter({ name: 'ci_edge_ssh_bytes_total', help: 'Bytes through SSH tunnels', labelNames: ['direction'], registers: r }),
    routes: new prom.Gauge({ name: 'ci_edge_routes', help: 'Routes by state', labelNames: ['state'], registers: r }),
    syncDuration: new prom.Histogram({
      name: 'ci_edge_registry_sync_duration_seconds',
      help: 'Full Marathon sync duration',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    }),
    syncAge: new prom.Gauge({ name: 'ci_edge_registry_last_sync_age_seconds', help: 'Seconds since the last successful sync', registers: r }),
    sseReconnects: new prom.Counter({ name: 'ci_edge_marathon_sse_reconnects_total', help: 'Marathon event stream reconnects', registers: r }),
    marathonErrors: new prom.Counter({ name: 'ci_edge_marathon_errors_total', help: 'Failed Marathon requests', labelNames: ['kind'], registers: r }),
    jnlpForwardsOpen: new prom.Gauge({ name: 'ci_edge_jnlp_forwards_open', help: 'Agent TCP connections being forwarded', labelNames: ['via'], registers: r }),
    jnlpConnections: new prom.Counter({
      name: 'ci_edge_jnlp_connections_total',
      help: 'Agent TCP connections accepted, by how they ended up',
      labelNames: ['via', 'outcome'],
      registers: r,
    }),
    jnlpConnectDuration: new prom.Histogram({
      name: 'ci_edge_jnlp_connect_duration_seconds',
      help: "From accepting an agent connection to its master's leg being connected",
      labelNames: ['via'],
      // Fine at the low end: on a loopback or LAN hop the whole setup is a fraction of a millisecond.
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: r,
    }),
    jnlpBytes: new prom.Counter({ name: 'ci_edge_jnlp_bytes_total', help: 'Bytes through agent connections', labelNames: ['via', 'direction'], registers: r }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
