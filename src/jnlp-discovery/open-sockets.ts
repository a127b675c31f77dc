import type { Socket } from 'node:net';

/**
 * The agent sockets a front door holds, so shutdown can wait for them and then cut them. Agent channels are
 * many and live for days: one `close` listener shared by all (the socket is `this`), nothing allocated per
 * socket beyond its place in the set.
 */
export class OpenSockets {
  private readonly sockets = new Set<Socket>();
  private readonly forget: (this: Socket) => void;

  constructor() {
    const sockets = this.sockets;
    this.forget = function (this: Socket) {
      sockets.delete(this);
    };
  }

  add(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', this.forget);
  }

  /** Waits for the sockets to end by themselves until `deadline` (epoch ms), then destroys what is left. */
  async cutAt(deadline?: number): Promise<void> {
    const sockets = this.sockets;
    if (sockets.size === 0) return;
    const wait = Math.max(0, (deadline ?? Date.now()) - Date.now());
    await new Promise<void>((resolve) => {
      // Runs after `forget` (added first), so the set no longer holds the socket that closed.
      const check = () => sockets.size === 0 && finish();
      const timer = setTimeout(() => {
        for (const s of sockets) s.destroy();
        finish();
      }, wait);
      const finish = () => {
        clearTimeout(timer);
        for (const s of sockets) s.off('close', check);
        resolve();
      };
      for (const s of sockets) s.on('close', check);
    });
  }
}
