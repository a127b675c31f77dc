import type { AddressInfo } from 'node:net';
import { createAdmin } from '../../src/admin/admin.js';
import { parseConfig } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import type { RouteInput } from '../../src/registry/types.js';
import type { Lifecycle, ReloadResult } from '../../src/service.js';
import { testRegistry } from '../helpers/registry.js';

export interface AdminOptions {
  routes?: RouteInput[];
  eventsThrottle?: string;
  reload?: () => Promise<ReloadResult>;
  draining?: () => boolean;
}

/** The admin front door alone, over a hand-driven registry, on 127.0.0.1:0. Call `close()` in teardown. */
export async function startAdmin(o: AdminOptions = {}) {
  const config = parseConfig({ admin: { listen: '127.0.0.1:0', eventsThrottle: o.eventsThrottle ?? '0ms' } });
  const { registry, source } = await testRegistry(o.routes ?? []);
  const metrics = createMetrics();
  const lifecycle: Lifecycle = {
    isDraining: o.draining ?? (() => false),
    reload: o.reload ?? (async () => ({ ok: true, changed: [], restartRequired: [] })),
  };
  const admin = createAdmin(config, { registry, log: silentLogger(), metrics, httpExtensions: [], config, lifecycle });
  await admin.start();
  const port = (admin.addresses()['admin'] as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    registry,
    source,
    metrics,
    admin,
    close: async () => {
      await admin.close(Date.now());
      await registry.close();
    },
  };
}
