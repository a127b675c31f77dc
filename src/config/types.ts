/** The validated, frozen configuration. Durations are milliseconds. See README "Configuration reference". */

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface MarathonConfig {
  readonly urls: readonly string[];
  readonly auth: { readonly basic?: string; readonly token?: string } | null;
  readonly mastersGroup: string;
  readonly resyncInterval: number;
  readonly requestTimeout: number;
  /** A stream with no bytes (not even the 10 s heartbeat) for this long is dead (marathon-lb#238). */
  readonly eventsIdleTimeout: number;
  readonly reconnectBackoff: { readonly min: number; readonly max: number };
  /** Events for the same app within this window cause one refresh. */
  readonly coalesce: number;
}

export interface StaticRouteConfig {
  readonly name: string;
  readonly kind: 'master' | 'service';
  readonly endpoints: { readonly http: readonly string[]; readonly jnlp: readonly string[]; readonly ssh: readonly string[] };
  readonly path?: string;
  readonly stripPrefix?: boolean;
  readonly servicePorts?: { readonly http?: number; readonly jnlp?: number; readonly ssh?: number };
}

export interface ServiceConfig {
  /** Static upstream URLs (`http://m1:5050`). */
  readonly upstreams: readonly string[];
  /** Route to the current leader among the upstreams, found the way this kind of service tells it. */
  readonly leader: 'mesos' | 'marathon' | null;
  /** Or a Marathon app id whose healthy tasks serve it. */
  readonly app: string | null;
  readonly stripPrefix: boolean;
}

export interface HttpConfig {
  readonly listen: ListenAddress;
  readonly https: { readonly listen: ListenAddress; readonly certs: readonly { readonly cert: string; readonly key: string }[] } | null;
  readonly redirectToHttps: boolean;
  readonly timeouts: {
    readonly connect: number;
    /** Socket idle, both sides. Streaming responses reset it with every byte. */
    readonly idle: number;
    /** A client must send its whole header block within this (slowloris). */
    readonly headers: number;
    /** Upstream response headers must arrive within this. */
    readonly upstream: number;
    /** A client connection idle between two requests is closed after this (above a load balancer's idle timeout). */
    readonly keepAlive: number;
  };
  readonly maxHeaderSize: number;
  readonly keepAliveSockets: number;
  /** An endpoint whose connection failed is skipped this long while its route has another (0: never skipped). */
  readonly failTimeout: number;
  /** Router processes (node:cluster) sharing the listeners; 1 runs the router in the gateway's own process. */
  readonly workers: number;
  /**
   * Relay plain bodyless GET/HEAD requests on raw sockets (http-router/fast-lane.ts) instead of through
   * node:http and http-proxy. Off sends every request the http-proxy way.
   */
  readonly fastLane: boolean;
  /**
   * Load balancers in front of ci-edge (addresses and CIDR blocks): from these peers the client is read from
   * X-Forwarded-For (client-address.ts). Empty: the client is the peer.
   */
  readonly trustedProxies: readonly string[];
}

export interface SshConfig {
  readonly listen: ListenAddress;
  readonly domain: string | null;
  readonly hostKeys: readonly string[];
  readonly auth: 'open' | 'keys';
  readonly authorizedKeys: string | null;
  readonly limits: {
    readonly maxTunnels: number;
    readonly maxTunnelsPerClient: number;
    readonly handshakeTimeout: number;
    readonly idleTimeout: number;
    readonly keepaliveInterval: number;
    readonly connectTimeout: number;
  };
  /** Cipher preference for the outer session; the default is what runs fastest with Node's OpenSSL. */
  readonly ciphers: readonly string[] | null;
  /** Behind a TCP balancer that sends a PROXY protocol header first: the client's address for limits and logs. */
  readonly proxyProtocol: boolean;
}

export interface JnlpConfig {
  readonly mode: 'direct' | 'gateway';
  readonly advertiseHost: string | null;
  /** Address the gateway-mode forwarders and the shared port bind to. */
  readonly bindHost: string;
  readonly sharedPort: number | null;
  readonly cacheTtl: number;
  readonly connectTimeout: number;
  /** Shared port: the JNLP4-connect-proxy preamble must arrive within this many ms and bytes. */
  readonly headerTimeout: number;
  readonly maxHeaderSize: number;
  /** How long a discovery (Node-Name + client address → master) is remembered for the shared port. */
  readonly discoveryTtl: number;
  readonly limits: JnlpLimits;
  /** The shared port is behind a TCP balancer that sends a PROXY protocol header first (the client's address). */
  readonly proxyProtocol: boolean;
}

export interface JnlpLimits {
  /** Agent connections open at once through the forwarders and the shared port together. */
  readonly maxConnections: number;
  /** Shared-port connections from one client address still sending their preamble. */
  readonly maxPendingPerClient: number;
}

export interface AdminConfig {
  readonly listen: ListenAddress;
  /** The dashboard's live stream sends at most one update per this many ms (2000 masters redeploying). */
  readonly eventsThrottle: number;
}

export interface DemoBackend {
  readonly name: string;
  readonly listen: ListenAddress;
}

export interface Config {
  readonly domains: readonly string[];
  readonly marathon: MarathonConfig | null;
  readonly routes: readonly StaticRouteConfig[];
  readonly services: Readonly<Record<string, ServiceConfig>>;
  readonly http: HttpConfig | null;
  readonly ssh: SshConfig | null;
  readonly jnlp: JnlpConfig | null;
  readonly admin: AdminConfig | null;
  readonly demo: { readonly backends: readonly DemoBackend[] } | null;
  readonly log: { readonly level: string; readonly pretty: boolean | null };
  readonly shutdown: { readonly grace: number };
  /** The file it was read from, for reload and messages. */
  readonly source: string | null;
}
