import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { FileSource } from './file.js';
import type { RouteSource } from './types.js';

/**
 * The sources the registry merges, in precedence order: a name the file pins wins over Marathon's,
 * so an operator can override one route by hand during an incident.
 */
export function buildSources(config: Config, _log: Logger, _metrics: Metrics): RouteSource[] {
  const sources: RouteSource[] = [new FileSource(config.routes)];
  return sources;
}
