import { createServer, type AddressInfo } from 'node:net';

/**
 * A loopback port that was free a moment ago and has nothing listening now: for servers that need a fixed
 * port (sshd, nginx, stable service ports), and as a target that refuses connections (ECONNREFUSED).
 */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
