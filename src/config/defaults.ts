/** Every default in one place. Durations are milliseconds. */
export const defaults = {
  marathon: {
    mastersGroup: '/masters',
    resyncInterval: 60_000,
    requestTimeout: 10_000,
    eventsIdleTimeout: 30_000,
    reconnectBackoff: { min: 500, max: 30_000 },
    coalesce: 5,
  },
  http: {
    listen: '0.0.0.0:8080',
    timeouts: { connect: 5_000, idle: 120_000, headers: 20_000, upstream: 120_000, keepAlive: 5_000 },
    maxHeaderSize: 16_384,
    keepAliveSockets: 256,
    failTimeout: 10_000,
    workers: 1,
    fastLane: true,
  },
  ssh: {
    listen: '0.0.0.0:2222',
    hostKeys: ['.ci-edge/ssh_host_ed25519_key'],
    limits: {
      maxTunnels: 1000,
      maxTunnelsPerClient: 50,
      handshakeTimeout: 10_000,
      idleTimeout: 3_600_000,
      keepaliveInterval: 15_000,
      connectTimeout: 5_000,
    },
  },
  jnlp: {
    bindHost: '0.0.0.0',
    cacheTtl: 60_000,
    connectTimeout: 5_000,
    headerTimeout: 10_000,
    maxHeaderSize: 8_192,
    discoveryTtl: 86_400_000,
    limits: { maxConnections: 50_000, maxPendingPerClient: 100 },
  },
  admin: { listen: '127.0.0.1:9090', eventsThrottle: 250 },
  shutdown: { grace: 10_000 },
  log: { level: 'info' },
} as const;
