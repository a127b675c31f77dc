import type { AddressInfo } from 'node:net';
import type { Config } from './config/types.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { RegistryView } from './registry/types.js';
import type { HttpExtension } from './extension.js';

/** What every front door (router, SSH gateway, JNLP discovery, admin, demo) is to the gateway. */
export interface FrontDoor {
  readonly name: string;
  start(): Promise<void>;
  /** Stop accepting, let in-flight work finish until `deadline` (epoch ms), then cut what is left. */
  close(deadline?: number): Promise<void>;
  /** Bound addresses by listener name (`http`, `ssh`, …), for tests and logs; valid after start(). */
  addresses(): Record<string, AddressInfo>;
  /**
   * Optional: apply a changed configuration section in place (issue #6, reload). Resolves true when it did,
   * so listeners whose address did not change keep their sockets; false means "restart me".
   */
  reconfigure?(config: Config): Promise<boolean>;
  /** Optional: a front door with loggers of its own (router workers) takes a new `log.level` from a reload. */
  setLogLevel?(level: string): void;
}

/** What the gateway hands to each front door's factory: `createX(config, deps)`. */
export interface Deps {
  readonly registry: RegistryView;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Hooks other front doors add to the HTTP router (JNLP advertisement rewrite, discovery API). */
  readonly httpExtensions: HttpExtension[];
  readonly config: Config;
  readonly lifecycle: Lifecycle;
}

/** The gateway's own state, as the admin listener reports and drives it. */
export interface Lifecycle {
  /** True once SIGTERM arrived: /ready answers 503 so load balancers drain this instance. */
  isDraining(): boolean;
  /** Re-reads the configuration file; a bad file is refused and the running one stays. */
  reload(): Promise<ReloadResult>;
}

/** What a reload did: `changed` names what was applied, `restartRequired` what only a restart applies. */
export type ReloadResult = { ok: true; changed: string[]; restartRequired: string[] } | { ok: false; error: string };
