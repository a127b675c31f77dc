import { isDeepStrictEqual } from 'node:util';
import type { Config } from './config/types.js';

type Section = Exclude<keyof Config, 'source'>;

/**
 * The configuration sections each front door is built from. A reload restarts (or reconfigures) a front
 * door only when one of these changed. An `http` change never touches JNLP discovery (the gateway serves
 * the router the hooks of whichever JNLP front door runs), so agent connections that live for days on its
 * forwarders are not cut. The router lists `jnlp` because router workers (`http.workers`) build their own
 * copy of the JNLP hooks from it; the in-process router takes that change in place.
 */
const sectionsByFrontDoor: Readonly<Record<string, readonly Section[]>> = {
  admin: ['admin'],
  demo: ['demo'],
  http: ['http', 'domains', 'jnlp'],
  jnlp: ['jnlp', 'domains'],
  ssh: ['ssh', 'domains'],
};


/** Sections the registry's Marathon and services sources are built from (swapped by a reload, see gateway.ts). */
const sourceSections: readonly Section[] = ['marathon', 'services'];

/** A front door we do not know: any section but the ones the registry or the process applies. */
const notFrontDoor: readonly Section[] = ['routes', 'marathon', 'services', 'log', 'shutdown'];

export function sectionsOf(frontDoor: string): readonly Section[] {
  return sectionsByFrontDoor[frontDoor] ?? allSections().filter((k) => !notFrontDoor.includes(k));
}

function allSections(): Section[] {
  return ['domains', 'marathon', 'routes', 'services', 'http', 'ssh', 'jnlp', 'admin', 'demo', 'log', 'shutdown'];
}

const differs = (prev: Config, next: Config, k: Section) => !isDeepStrictEqual(prev[k], next[k]);

export interface ReloadPlan {
  readonly routesChanged: boolean;
  /** `log.level` changed: applied to the running loggers. */
  readonly logLevelChanged: boolean;
  /** The Marathon or services configuration changed: those sources are rebuilt and swapped in. */
  readonly sourcesChanged: boolean;
  /** A front door may have to be rebuilt. */
  readonly frontDoorsChanged: boolean;
  /** Sections that changed but only take effect after a restart of the process. */
  readonly restartRequired: Section[];
  /** Every changed section (for the log line and the POST /reload answer). */
  readonly changed: Section[];
}

export function planReload(prev: Config, next: Config): ReloadPlan {
  const changed = allSections().filter((k) => differs(prev, next, k));
  return {
    routesChanged: changed.includes('routes'),
    logLevelChanged: prev.log.level !== next.log.level,
    sourcesChanged: changed.some((k) => sourceSections.includes(k)),
    frontDoorsChanged: changed.some((k) => !notFrontDoor.includes(k)),
    // The logger's output (pretty or JSON) is chosen by the CLI before the gateway exists; its level is not.
    restartRequired: prev.log.pretty !== next.log.pretty ? ['log'] : [],
    changed,
  };
}

/** True when a front door of this name must be reconfigured or restarted for `next`. */
export function frontDoorChanged(name: string, prev: Config, next: Config): boolean {
  return sectionsOf(name).some((k) => differs(prev, next, k));
}
