// A server that stops answering without closing its sockets (SIGSTOP: a GC or VM pause),
// and a link that goes silent both ways while staying open (a proxy that stops
// forwarding): the client leaves it for another server of the group and its acknowledged
// writes resume; nothing acknowledged is lost or applied twice; the silent side is
// dropped by the server; the stopped server, continued, follows the new leader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStore } from 'redux-cluster-rs';
import { ask, child, counter, freePort, linkProxy, oneLeader, waitFor } from './helpers.mjs';

function server(spec) {
  const k = child('raft-store.mjs', [JSON.stringify(spec)]);
  k.spec = spec;
  return k;
}

async function group() {
  const ports = await Promise.all([0, 1, 2].map(() => freePort()));
  const seeds = ports.map((p, i) => `l${i}@127.0.0.1:${p}`);
  const servers = [0, 1, 2].map((i) => server({ port: ports[i], cluster: { nodeName: `l${i}`, seeds } }));
  await Promise.all(servers.map((k) => k.next((m) => m.listening)));
  const leader = await oneLeader(servers);
  return { ports, servers, leader, li: Number(leader.slice(1)) };
}

/** Keeps `inflight` dispatchAsync calls going; records when each was sent and acknowledged. */
function writer(store, inflight = 16) {
  const done = [];
  const failed = [];
  let sent = 0;
  let running = true;
  const one = () => {
    if (!running) return;
    const at = Date.now();
    sent += 1;
    store.dispatchAsync({ type: 'INC' }, { timeout: 20000 }).then(
      ({ seq }) => {
        done.push({ seq, sentAt: at, ackedAt: Date.now() });
        one();
      },
      (e) => failed.push(e.code)
    );
  };
  for (let i = 0; i < inflight; i++) one();
  return {
    done,
    failed,
    get sent() {
      return sent;
    },
    /** ms from `t0` to the first acknowledgement of a dispatch sent after `t0`. */
    resumedAfter(t0) {
      const first = done.find((d) => d.sentAt > t0);
      return first ? first.ackedAt - t0 : undefined;
    },
    async stop() {
      running = false;
      await waitFor(() => done.length + failed.length === sent, { timeoutMs: 30000, what: 'every dispatch settled' });
    },
  };
}

async function converged(servers, replica, total) {
  let counts;
  await waitFor(
    async () => {
      counts = await Promise.all(servers.map(async (k) => (await ask(k, { cmd: 'state' })).state.counter));
      return counts.every((c) => c === total) && replica.getState().counter === total;
    },
    { timeoutMs: 30000, what: `every server and the client hold ${total}`, show: () => ({ counts, client: replica.getState().counter }) }
  );
}

test('SIGSTOP of the leader a client is attached to: its writes resume on another server, nothing lost or doubled; continued, it follows', { timeout: 120000 }, async () => {
  const { ports, servers, leader, li } = await group();
  const replica = createStore(counter, { stderr: () => {} });
  // Attached to the leader first.
  const order = [li, ...[0, 1, 2].filter((i) => i !== li)];
  const client = replica.createClient({ servers: order.map((i) => ({ host: '127.0.0.1', port: ports[i] })) });
  let stopped = false;
  try {
    const w = writer(replica);
    await waitFor(() => w.done.length >= 200, { what: '200 acknowledged before the stop' });
    const t0 = Date.now();
    servers[li].proc.kill('SIGSTOP');
    stopped = true;
    await waitFor(() => w.resumedAfter(t0) !== undefined, { timeoutMs: 15000, what: 'a write sent after the SIGSTOP acknowledged' });
    const resumedMs = w.resumedAfter(t0);
    // Not after a timeout: neither the client nor the follower that forwards its writes
    // waits out the stopped leader (its forwards go to the new leader once one is known,
    // rather than after the 5 s commitTimeout). Typically 0.6 s (npm run bench:liveness).
    assert.ok(resumedMs < 4000, `resumed after ${resumedMs} ms`);
    await waitFor(() => w.done.length >= 400, { timeoutMs: 20000, what: '200 more acknowledged' });
    await w.stop();
    assert.deepEqual(w.failed, [], 'no dispatch failed');
    const seqs = w.done.map((d) => d.seq);
    assert.equal(new Set(seqs).size, seqs.length, 'each acknowledged action has its own seq');

    // Continued, the old leader follows the new one and catches up.
    const seen = servers[li].messages.length;
    servers[li].proc.kill('SIGCONT');
    stopped = false;
    await servers[li].next((m) => m.role === 'follower' && servers[li].messages.indexOf(m) >= seen, 20000);
    await converged(servers, replica, w.done.length);
    const next = await oneLeader(servers);
    assert.notEqual(next, leader);
    console.log(`# acknowledged writes resumed ${resumedMs} ms after SIGSTOP of the leader the client was attached to`);
  } finally {
    if (stopped) servers[li].proc.kill('SIGCONT');
    await client.disconnect();
    await Promise.all(servers.map((k) => k.kill()));
  }
});

test('a link that goes silent both ways while staying open: the client moves and resumes, the server drops it', { timeout: 120000 }, async () => {
  const { ports, servers, li } = await group();
  // The client reaches the leader through a proxy the test can mute; the others directly.
  const proxy = await linkProxy(ports[li]);
  const others = [0, 1, 2].filter((i) => i !== li);
  const replica = createStore(counter, { stderr: () => {} });
  const client = replica.createClient({
    servers: [{ host: '127.0.0.1', port: proxy.port }, ...others.map((i) => ({ host: '127.0.0.1', port: ports[i] }))],
  });
  try {
    const w = writer(replica);
    await waitFor(() => w.done.length >= 200, { what: '200 acknowledged before the link goes silent' });
    assert.equal((await ask(servers[li], { cmd: 'clients' })).clients.length, 1, 'the client is attached to the leader');
    const t0 = Date.now();
    proxy.mute();
    await waitFor(() => w.resumedAfter(t0) !== undefined, { timeoutMs: 15000, what: 'a write sent after the link went silent acknowledged' });
    const resumedMs = w.resumedAfter(t0);
    // The leader noticed its client went silent and dropped it (the proxy still holds
    // both sockets open).
    await waitFor(async () => (await ask(servers[li], { cmd: 'clients' })).clients.length === 0, { timeoutMs: 20000, what: 'the leader dropped the silent client (after 10 s)' });
    await waitFor(() => w.done.length >= 400, { timeoutMs: 20000, what: '200 more acknowledged' });
    await w.stop();
    assert.deepEqual(w.failed, []);
    const seqs = w.done.map((d) => d.seq);
    assert.equal(new Set(seqs).size, seqs.length);
    await converged(servers, replica, w.done.length);
    console.log(`# acknowledged writes resumed ${resumedMs} ms after the client's link went silent`);
  } finally {
    await client.disconnect();
    await proxy.close().catch(() => {});
    await Promise.all(servers.map((k) => k.kill()));
  }
});
