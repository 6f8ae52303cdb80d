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

/**
 * A TCP proxy to `target` on loopback that holds every chunk `delayMs` each way, in order
 * (an end or a close follows what came before it): a slow link. `close()` cuts every
 * connection. The optimistic bench and the tests of optimistic updates go through it.
 */
export async function slowLink(target, delayMs) {
  const socks = new Set();
  const srv = net.createServer((a) => {
    const b = net.connect(target, '127.0.0.1');
    const drop = () =>
      setTimeout(() => {
        for (const s of [a, b]) s.destroy(), socks.delete(s);
      }, delayMs);
    for (const [from, to] of [[a, b], [b, a]]) {
      socks.add(from);
      from.setNoDelay(true);
      from.on('data', (d) => setTimeout(() => to.destroyed || to.write(d), delayMs));
      from.on('end', () => setTimeout(() => to.destroyed || to.end(), delayMs));
      from.on('error', drop);
      from.on('close', drop);
    }
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: srv.address().port,
    close: () => {
      for (const s of socks) s.destroy();
      return new Promise((r) => srv.close(r));
    },
  };
}
