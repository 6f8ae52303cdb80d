// Small helpers the multi-process benches share.
import fs from 'node:fs';
import net from 'node:net';

// Ports handed out by this process, not handed out twice.
const given = new Set();

// Below the kernel's range of ephemeral ports: a port handed out here and bound a moment
// later cannot meanwhile become the local port of an outgoing connection (a Raft peer's
// session, a Prometheus scrape), which made a server's listen() fail now and then with
// EADDRINUSE when the kernel picked the port.
function belowEphemeral() {
  try {
    const [low] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return low > 12000 ? [10000, low - 1] : null;
  } catch {
    return null;
  }
}

const bindable = (port) =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1' }, () => s.close(() => resolve(true)));
  });

/** A TCP port free on loopback now, outside the ephemeral range where there is one. */
export async function freePort() {
  const range = belowEphemeral();
  for (let i = 0; range && i < 200; i++) {
    const port = range[0] + Math.floor(Math.random() * (range[1] - range[0] + 1));
    if (!given.has(port) && (await bindable(port))) {
      given.add(port);
      return port;
    }
  }
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond()` holds, checking every 10 ms; throws naming `what` after `ms`. */
export async function until(cond, what, ms = 180000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Exits once what was written to stdout is out (a piped stdout is written asynchronously). */
export const exitDrained = (code = 0) => process.stdout.write('', () => process.exit(code));

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
