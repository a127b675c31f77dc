import type { Config } from '../config/types.js';
import { defaults } from '../config/defaults.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { FileSource } from './file.js';
import type { ServiceApp } from './marathon/mapper.js';
import { MarathonSource } from './marathon/source.js';
import { ServiceSource } from './services.js';
import type { RouteSource } from './types.js';

/**
 * The sources the registry merges, in precedence order: a name the file pins wins over Marathon's,
 * so an operator can override one route by hand during an incident; configured services come next, then
 * Marathon (masters, and services given as `app:`).
 */
export function buildSources(config: Config, log: Logger, metrics: Metrics): RouteSource[] {
  const sources: RouteSource[] = [new FileSource(config.routes)];
  const services = new ServiceSource({
    services: config.services,
    requestTimeout: config.marathon?.requestTimeout ?? defaults.marathon.requestTimeout,
    recheckInterval: config.marathon?.resyncInterval ?? defaults.marathon.resyncInterval,
    marathonAuth: config.marathon?.auth ?? null,
    log,
    metrics,
  });
  if (!services.empty) sources.push(services);
  if (config.marathon) {
    const serviceApps = new Map<string, ServiceApp>();
    for (const [name, s] of Object.entries(config.services)) if (s.app) serviceApps.set(s.app, { name, stripPrefix: s.stripPrefix });
    sources.push(new MarathonSource({ config: config.marathon, serviceApps, log, metrics }));
  }
  return sources;
}
