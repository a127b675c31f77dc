import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { CiEdgeError } from '../errors.js';
import { parseConfig } from './schema.js';
import type { Config } from './types.js';

/**
 * Environment variables that override the file, so secrets and per-instance addresses stay out of it
 * (Marathon passes them to ci-edge's own tasks). Each maps to one config path.
 */
export const envOverrides: Readonly<Record<string, readonly string[]>> = {
  CI_EDGE_MARATHON_URLS: ['marathon', 'urls'],
  CI_EDGE_MARATHON_BASIC: ['marathon', 'auth', 'basic'],
  CI_EDGE_MARATHON_TOKEN: ['marathon', 'auth', 'token'],
  CI_EDGE_MARATHON_MASTERS_GROUP: ['marathon', 'mastersGroup'],
  CI_EDGE_DOMAINS: ['domains'],
  CI_EDGE_HTTP_LISTEN: ['http', 'listen'],
  CI_EDGE_HTTP_TRUSTED_PROXIES: ['http', 'trustedProxies'],
  CI_EDGE_SSH_LISTEN: ['ssh', 'listen'],
  CI_EDGE_SSH_HOST_KEYS: ['ssh', 'hostKeys'],
  CI_EDGE_JNLP_ADVERTISE_HOST: ['jnlp', 'advertiseHost'],
  CI_EDGE_ADMIN_LISTEN: ['admin', 'listen'],
  CI_EDGE_LOG_LEVEL: ['log', 'level'],
};

export async function readConfigFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new CiEdgeError('E_CONFIG_READ', [`${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`], { cause: err });
  }
  try {
    return parseYaml(text) ?? {};
  } catch (err) {
    throw new CiEdgeError('E_CONFIG_INVALID', [`${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`], { cause: err });
  }
}

/** Applies environment overrides onto the raw document (before validation, so they are validated too). */
export function applyEnv(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  const doc = structuredClone((raw ?? {}) as Record<string, unknown>);
  for (const [name, path] of Object.entries(envOverrides)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    if (name === 'CI_EDGE_MARATHON_BASIC' || name === 'CI_EDGE_MARATHON_TOKEN') {
      // One credential replaces the other: the file may carry a token while the environment gives basic.
      const marathon = (doc['marathon'] ??= {}) as Record<string, unknown>;
      marathon['auth'] = {};
    }
    let node = doc;
    for (const key of path.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
    node[path[path.length - 1]!] = value;
  }
  return doc;
}

export async function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  return parseConfig(applyEnv(await readConfigFile(file), env), file);
}
