// A node's identity comes from its hello, not from the address it was reached at: seeds
// spelled otherwise than the ids nodes advertise (the usual set-up: seeds given by IP,
// ids carrying the hostname) must not become ghost members, and healthy nodes must not
// flap. Five real processes on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { child, freePort, waitFor } from './helpers.mjs';

const FAST = { heartbeatIntervalMs: 100, heartbeatMissThreshold: 3, reconnectBaseDelayMs: 50, reconnectMaxDelayMs: 500 };

async function start(name, port, seeds, extra) {
  const k = child('cluster-node.mjs', [JSON.stringify({ nodeName: name, port, seeds, ...FAST, ...extra })]);
  k.id = (await k.next((m) => m.id)).id;
  return k;
}

/** Asks a node for getNodes() and waits for the answer. */
async function all(k) {
  const before = k.messages.length;
  k.send({ cmd: 'all' });
  return (await waitFor(() => k.messages.slice(before).find((m) => m.all), { what: `getNodes() of ${k.id}` })).all;
}

// `advertiseHost: 'localhost'` on a loopback bind gives ids `n0@localhost:port` while the
// seeds say `n0@127.0.0.1:port`: the same mismatch as no `host` at all (a wildcard bind
// advertising the hostname), without listening on every interface.
// Started one after the other, or all at once (every pair then dials both ways at the
// same moment); with a clusterSecret, as noex's stress suite runs, every message is also
// bound to its link.
const LOCALHOST = { host: '127.0.0.1', advertiseHost: 'localhost' };
for (const [label, extra, together] of [
  ['seeds spelled as the ids, started in turn', { host: '127.0.0.1' }, false],
  ['seeds by IP, ids by name, started in turn', LOCALHOST, false],
  ['seeds by IP, ids by name, started at once', LOCALHOST, true],
  ['seeds by IP, ids by name, started at once, with a clusterSecret', { ...LOCALHOST, clusterSecret: 's3cret' }, true],
]) {
  test(`five healthy nodes stay up and list each other once: ${label}`, { timeout: 60000 }, async () => {
    const ports = await Promise.all([0, 1, 2, 3, 4].map(() => freePort()));
    const dead = await freePort(); // a seed that never comes up
    // Every node is given every seed, itself included, plus one that never answers.
    const seeds = [...ports.map((p, i) => `n${i}@127.0.0.1:${p}`), `ghost@127.0.0.1:${dead}`];
    const nodes = [];
    if (together) nodes.push(...(await Promise.all(ports.map((p, i) => start(`n${i}`, p, seeds, extra)))));
    else for (let i = 0; i < 5; i++) nodes.push(await start(`n${i}`, ports[i], seeds, extra));
    const ids = nodes.map((k) => k.id).sort();
    try {
      // Formed: everyone connected to the four others.
      await waitFor(async () => {
        for (const k of nodes) {
          const c = (await all(k)).filter((n) => n.status === 'connected');
          if (c.length !== 4) return false;
        }
        return true;
      }, { timeoutMs: 20000, what: 'a full mesh' });
      const formedAt = Date.now();
      // Then let heartbeats flow: each node's view of every peer's uptime grows past 1.5 s
      // more, which a peer can only report over a link that stayed up (15 intervals).
      const uptimes = new Map();
      for (const k of nodes) for (const n of await all(k)) uptimes.set(`${k.id}>${n.id}`, n.uptimeMs);
      await waitFor(async () => {
        for (const k of nodes) {
          for (const n of await all(k)) if (!(n.uptimeMs >= uptimes.get(`${k.id}>${n.id}`) + 1500)) return false;
        }
        return true;
      }, { timeoutMs: 20000, what: '1.5 s of heartbeats on every link' });

      for (const k of nodes) {
        const listed = await all(k);
        assert.deepEqual(listed.map((n) => n.id).sort(), ids.filter((id) => id !== k.id), `${k.id} lists exactly the others, by their own ids`);
        assert.ok(listed.every((n) => n.status === 'connected'), JSON.stringify(listed));
        const downs = k.messages.filter((m) => m.down);
        assert.deepEqual(downs, [], `${k.id}: no nodeDown while nothing failed (${Date.now() - formedAt} ms)`);
        const ups = k.messages.filter((m) => m.up).map((m) => m.up).sort();
        assert.deepEqual(ups, ids.filter((id) => id !== k.id), `${k.id}: one nodeUp per peer`);
      }

      // A crash is still reported, once, by its real id; the survivors stay meshed.
      await nodes[4].kill('SIGKILL');
      for (const k of nodes.slice(0, 4)) {
        const d = await k.next((m) => m.down);
        assert.deepEqual([d.down, d.reason], [nodes[4].id, 'connection_closed']);
      }
    } finally {
      await Promise.all(nodes.map((k) => k.kill()));
    }
  });
}
