// Small helpers the multi-process benches share.
import net from 'node:net';

/** A TCP port free on loopback now (the kernel picks it). */
export const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
