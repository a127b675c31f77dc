import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { applyEnv } from '../../src/config/loader.js';
import { parseConfig } from '../../src/config/schema.js';
import type { Config } from '../../src/config/types.js';

export const root = join(import.meta.dirname, '..', '..');
const appText = readFileSync(join(root, 'deploy/marathon/ci-edge.json'), 'utf8');
const yamlText = readFileSync(join(root, 'deploy/marathon/ci-edge.yaml'), 'utf8');

interface PortDefinition {
  name: string;
  port: number;
  protocol: string;
}
interface MarathonAppDefinition {
  id: string;
  instances: number;
  args: string[];
  container: { type: string; docker: { image: string }; volumes: { containerPath: string; secret?: string }[] };
  networks: { mode: string }[];
  requirePorts: boolean;
  portDefinitions: PortDefinition[];
  env: Record<string, string | { secret: string }>;
  secrets: Record<string, { source: string }>;
  constraints: string[][];
  healthChecks: { protocol: string; path: string; portIndex: number }[];
  readinessChecks: { path: string; portName: string; httpStatusCodesForReady: number[] }[];
  taskKillGracePeriodSeconds: number;
}

export const app = JSON.parse(appText) as MarathonAppDefinition;

/** The configuration an instance of the app runs with: the baked-in file under the app's environment. */
export function effectiveConfig(): Config {
  return parseConfig(effectiveDocument(), 'deploy/marathon/ci-edge.yaml');
}

/** The same, before validation: the YAML document with the app's environment applied. */
export function effectiveDocument(): Record<string, unknown> {
  const env = Object.fromEntries(Object.entries(app.env).map(([k, v]) => [k, typeof v === 'string' ? v : `secret-${v.secret}`]));
  return applyEnv(parseYaml(yamlText), env) as Record<string, unknown>;
}

