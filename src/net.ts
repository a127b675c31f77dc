import type { AddressInfo, Server } from 'node:net';
import type { ListenAddress } from './config/types.js';
import { CiEdgeError } from './errors.js';

/** Listens and resolves with the bound address; a busy port is a catalogued error naming the address. */
export function listen(server: Server, addr: ListenAddress): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(new CiEdgeError('E_LISTEN', [`${addr.host}:${addr.port} (${(err as NodeJS.ErrnoException).code ?? err.message})`], { cause: err }));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(addr.port, addr.host);
  });
}

/** What closeServer needs: a net.Server, an http.Server, or a listener that hands its sockets to one. */
export interface Closable {
  readonly listening: boolean;
  close(cb: () => void): unknown;
  closeAllConnections?(): void;
  closeIdleConnections?(): void;
}

/** Closes a server; resolves when every connection has ended or, at the deadline, after cutting them. */
export function closeServer(server: Closable, deadline?: number): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    const timer = setTimeout(() => server.closeAllConnections?.(), Math.max(0, (deadline ?? Date.now()) - Date.now()));
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections?.();
  });
}
