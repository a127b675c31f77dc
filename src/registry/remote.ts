import type { Endpoint, RegistryStatus, RegistryView, Route, Snapshot } from './types.js';

/** A Snapshot as it crosses a process boundary (IPC is JSON: a Map does not survive it). */
export interface WireSnapshot {
  readonly version: number;
  readonly routes: readonly Route[];
  readonly status: RegistryStatus;
}

export function toWire(snapshot: Snapshot): WireSnapshot {
  return { version: snapshot.version, routes: [...snapshot.routes.values()], status: snapshot.status };
}

const notSynced: RegistryStatus = { ready: false, stale: false, syncedAt: null, marathonLeader: null, lastError: null };

/**
 * The registry as a router worker sees it (issue #3, worker-per-core mode): the primary watches Marathon once
 * and sends every snapshot; this holds the last one, rebuilt into a Map off the request path, and tells
 * subscribers the way Registry does. Failed endpoints go back to the primary, whose sources own them.
 */
export class RemoteRegistry implements RegistryView {
  private snapshot: Snapshot = { version: 0, routes: new Map(), status: notSynced };
  private readonly listeners = new Set<(next: Snapshot, prev: Snapshot) => void>();

  constructor(private readonly onEndpointFailed: (name: string, endpoint: Endpoint) => void) {}

  /** Takes a snapshot from the primary; an older or repeated version (reordered delivery) is ignored. */
  apply(wire: WireSnapshot): void {
    if (wire.version <= this.snapshot.version && this.snapshot.version !== 0) return;
    const prev = this.snapshot;
    const next: Snapshot = { version: wire.version, routes: new Map(wire.routes.map((r) => [r.name, r])), status: wire.status };
    this.snapshot = next;
    for (const fn of this.listeners) fn(next, prev);
  }

  current(): Snapshot {
    return this.snapshot;
  }

  subscribe(listener: (next: Snapshot, prev: Snapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  endpointFailed(name: string, endpoint: Endpoint): void {
    this.onEndpointFailed(name, { host: endpoint.host, port: endpoint.port, ...(endpoint.taskId ? { taskId: endpoint.taskId } : {}) });
  }
}
