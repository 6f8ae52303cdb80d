// Replica servers: members of a replicated store's group that never vote. Three voters
// and two replicas, each its own process: the replicas serve clients (their dispatches
// go to the leader), never count toward a quorum, survive kill -9 and a restart from
// their dataDir, and a client moves between a replica and a voter as between any two
// servers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createStore, ErrorCode } from 'redux-cluster-rs';
import { ask, child, counter, freePort, oneLeader, waitFor } from './helpers.mjs';

function start(spec) {
  const k = child('raft-store.mjs', [JSON.stringify(spec)]);
  k.spec = spec;
  return k;
}

const status = async (k) => (await ask(k, { cmd: 'status' })).status;
const counterOf = async (k) => (await ask(k, { cmd: 'state' })).state.counter;

test('three voters and two replicas: replicas serve clients, never vote or lead, and come back after kill -9', { timeout: 180000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-replicas-'));
  const ports = await Promise.all([0, 1, 2, 3, 4].map(() => freePort()));
  // The replicas' names sort before the voters': fresh voters that list them among
  // their seeds must not wait for one of them to found the group.
  const names = ['s0', 's1', 's2', 'a0', 'a1'];
  const all = ports.map((p, i) => `${names[i]}@127.0.0.1:${p}`);
  const spec = (i) => ({
    port: ports[i],
    cluster: {
      nodeName: names[i],
      seeds: i < 3 ? all : all.slice(0, 3),
      replica: i >= 3,
      dataDir: path.join(dir, names[i]),
      heartbeatInterval: 50,
      electionTimeout: 150,
    },
  });
  const servers = [0, 1, 2, 3, 4].map((i) => start(spec(i)));
  const at = (i) => ({ host: '127.0.0.1', port: ports[i] });
  // One client on a replica only; one that lists a replica first, then a voter.
  const onReplica = createStore(counter, { stderr: () => {} });
  const c1 = onReplica.createClient({ servers: [at(3)] });
  const mover = createStore(counter, { stderr: () => {} });
  let c2;
  try {
    await Promise.all(servers.map((k) => k.next((m) => m.listening)));
    // One leader among the voters; every server, replicas included, names it.
    const leader = await oneLeader(servers, 3);
    assert.ok(['s0', 's1', 's2'].includes(leader), `the leader is a voter, not ${leader}`);
    await waitFor(async () => (await status(servers[3])).role === 'replica' && (await status(servers[4])).role === 'replica', { what: 'both replicas report role replica' });
    const li = names.indexOf(leader);
    const members = (await status(servers[li])).members;
    assert.deepEqual(members.filter((m) => m.voter).map((m) => m.nodeId).sort(), ['s0', 's1', 's2']);
    assert.deepEqual(members.filter((m) => !m.voter).map((m) => m.nodeId).sort(), ['a0', 'a1']);
    // Made once a1 has joined (a replica that has heard from no leader for a while sends
    // its clients on, as a cut-off server does).
    c2 = mover.createClient({ servers: [at(4), at(0), at(1), at(2)] });
    await waitFor(() => mover.connected, { what: 'the second client connected' });
    assert.equal(c2.server.port, ports[4], 'the second client starts on replica a1');

    // Dispatches through a replica are ordered by the leader and reach everyone.
    const viaReplica = await Promise.all(Array.from({ length: 100 }, () => onReplica.dispatchAsync({ type: 'INC' })));
    const viaMover = await Promise.all(Array.from({ length: 50 }, () => mover.dispatchAsync({ type: 'INC' })));
    const fromReplicaServer = await ask(servers[3], { cmd: 'dispatch', n: 10 });
    assert.equal(fromReplicaServer.codes.length, 0, `a replica's own dispatches commit: ${fromReplicaServer.codes}`);
    const seqs = [...viaReplica, ...viaMover].map((r) => r.seq).concat(fromReplicaServer.seqs);
    assert.equal(new Set(seqs).size, 160, 'each action its own place');
    for (const k of servers) await waitFor(async () => (await counterOf(k)) === 160, { what: `${k.spec.cluster.nodeName} holds all 160` });

    // Replicas do not count toward a quorum: with two of three voters down, five
    // processes minus two leaves three up, and still nothing commits.
    const others = [0, 1, 2].filter((i) => i !== li);
    await servers[others[0]].kill('SIGKILL');
    await servers[li].kill('SIGKILL');
    const stuck = await onReplica.dispatchAsync({ type: 'INC' }, { timeout: 1500 }).then(
      () => null,
      (e) => e.code
    );
    assert.ok([ErrorCode.Timeout, ErrorCode.Unavailable].includes(stuck), `no quorum without a majority of voters, got ${stuck}`);
    for (const i of [li, others[0]]) servers[i] = start(spec(i));
    await Promise.all([li, others[0]].map((i) => servers[i].next((m) => m.listening)));
    const leader2 = await oneLeader(servers, 3);
    assert.ok(['s0', 's1', 's2'].includes(leader2));
    // The stuck action may still have committed (a timeout takes nothing back).
    await onReplica.dispatchAsync({ type: 'INC' }, { timeout: 20000 });
    const total = await counterOf(servers[names.indexOf(leader2)]);
    assert.ok(total === 161 || total === 162, `161 or 162 applied, got ${total}`);

    // kill -9 of a replica: its client moves to a voter and goes on; restarted from
    // its dataDir, the replica catches up and stays a replica.
    await servers[4].kill('SIGKILL');
    const during = await Promise.all(Array.from({ length: 50 }, () => mover.dispatchAsync({ type: 'INC' }, { timeout: 20000 })));
    assert.equal(during.length, 50);
    assert.notEqual(c2.server.port, ports[4], 'the client moved off the killed replica');
    servers[4] = start(spec(4));
    await servers[4].next((m) => m.listening);
    await waitFor(async () => (await counterOf(servers[4])) === total + 50, { timeoutMs: 30000, what: 'the restarted replica caught up' });
    assert.equal((await status(servers[4])).role, 'replica');
    await oneLeader(servers, 3);
    for (const k of servers) await waitFor(async () => (await counterOf(k)) === total + 50, { what: `${k.spec.cluster.nodeName} holds every action` });
    await waitFor(() => onReplica.getState().counter === total + 50 && mover.getState().counter === total + 50, { what: 'both clients hold every action' });
  } finally {
    await Promise.all([c1.disconnect(), c2?.disconnect()]);
    await Promise.all(servers.map((k) => k.kill()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a replica started on a running group joins it as a replica; removeMember takes it out', { timeout: 120000 }, async () => {
  const ports = await Promise.all([0, 1, 2, 3].map(() => freePort()));
  const voters = ports.slice(0, 3).map((p, i) => `v${i}@127.0.0.1:${p}`);
  const servers = [0, 1, 2].map((i) =>
    start({ port: ports[i], cluster: { nodeName: `v${i}`, seeds: voters, heartbeatInterval: 50, electionTimeout: 150 } })
  );
  try {
    await Promise.all(servers.map((k) => k.next((m) => m.listening)));
    await oneLeader(servers, 3);
    const before = await ask(servers[0], { cmd: 'dispatch', n: 30 });
    assert.equal(before.seqs.length, 30);
    const r = start({ port: ports[3], cluster: { nodeName: 'r0', seeds: [voters[1]], replica: true, heartbeatInterval: 50, electionTimeout: 150 } });
    servers.push(r);
    await r.next((m) => m.listening);
    await waitFor(async () => (await counterOf(r)) === 30, { what: 'the new replica holds the group state' });
    await oneLeader(servers, 3);
    assert.equal((await status(r)).role, 'replica');

    // A replica has no election timer: when every voter goes silent (SIGSTOP), it still
    // notices (no append for its limit) and turns its clients away; continued, the
    // voters reach it again and it serves on.
    for (const k of servers.slice(0, 3)) k.proc.kill('SIGSTOP');
    try {
      await r.next((m) => m.stderr && m.stderr.includes(ErrorCode.Unavailable) && m.stderr.includes('lost contact'), 10000);
    } finally {
      for (const k of servers.slice(0, 3)) k.proc.kill('SIGCONT');
    }
    assert.equal((await ask(r, { cmd: 'dispatch', n: 5, timeout: 20000 })).seqs.length, 5, 'the replica orders through the group again');

    // kill -9, restarted without a dataDir: it is sent the group's state, and is a
    // replica again.
    await r.kill('SIGKILL');
    const r2 = start(r.spec);
    servers[3] = r2;
    await r2.next((m) => m.listening);
    await waitFor(async () => (await counterOf(r2)) === 35, { what: 'the restarted replica holds all 35' });
    assert.equal((await status(r2)).role, 'replica');
    await oneLeader(servers, 3);
    const removed = await ask(servers[2], { cmd: 'remove', name: 'r0' });
    assert.equal(removed.removed, true, removed.message);
    await waitFor(async () => (await status(servers[0])).members.every((m) => m.nodeId !== 'r0'), { what: 'r0 gone from the membership' });
    // The voters go on without it.
    assert.equal((await ask(servers[1], { cmd: 'dispatch', n: 5 })).seqs.length, 5);
    await waitFor(async () => (await counterOf(servers[0])) === 40, { what: 'the voters hold all 40' });
  } finally {
    await Promise.all(servers.map((k) => k.kill()));
  }
});

test('replica options are checked', () => {
  const store = createStore(counter, { stderr: () => {} });
  const bad = [
    { nodeName: 'r', replica: true },
    { nodeName: 'r', replica: true, seeds: [] },
    { nodeName: 'r', replica: 'yes', seeds: ['a@127.0.0.1:1'] },
    { nodeName: 'r', replica: true, bootstrap: true, seeds: ['a@127.0.0.1:1'] },
  ];
  for (const cluster of bad) {
    assert.throws(() => store.createServer({ host: '127.0.0.1', port: 0, cluster }), (e) => e.code === ErrorCode.InvalidConfig, JSON.stringify(cluster));
  }
});
