// Raft across real processes: one agreed leader, replication, kill -9 and SIGSTOP of
// the leader, a restart catching up from its own dataDir.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor, freePort } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const until = (what, f) => waitFor(f, { what });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-raft-'));
const procs = new Set();
after(() => {
  for (const p of procs) p.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});



function start(id, ports) {
  const peers = Object.entries(ports).filter(([n]) => n !== id);
  const p = fork(path.join(here, 'fixtures', 'raft-node.mjs'), [id, String(ports[id]), path.join(dir, id), JSON.stringify(peers)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  procs.add(p);
  p.on('exit', () => procs.delete(p));
  const node = { id, p, events: [], seq: 0, waiting: new Map() };
  p.on('message', (m) => {
    if (m.event) node.events.push(m);
    if (m.id !== undefined) {
      node.waiting.get(m.id)?.(m);
      node.waiting.delete(m.id);
    }
  });
  node.ready = new Promise((r) => p.on('message', (m) => m.ready && r()));
  node.call = (op, extra = {}) => new Promise((resolve, reject) => {
    const mid = node.seq++;
    const t = setTimeout(() => reject(new Error(`${id}: ${op} timed out`)), 10000);
    node.waiting.set(mid, (m) => {
      clearTimeout(t);
      m.error ? reject(Object.assign(new Error(m.error.message), m.error)) : resolve(m.result);
    });
    p.send({ id: mid, op, ...extra });
  });
  return node;
}

async function agreedLeader(nodes) {
  return until('one leader every node agrees on', async () => {
    const states = await Promise.all(nodes.map((n) => n.call('state')));
    const leaders = states.filter((s) => s.role === 'leader');
    const ids = new Set(states.map((s) => s.leaderId));
    if (leaders.length === 1 && ids.size === 1 && states.every((s) => s.voters.length === 3)) {
      return { leader: leaders[0].nodeId, term: leaders[0].term };
    }
    return null;
  });
}

test('3 processes: agreement, replication, kill -9 and SIGSTOP failover, restart from dataDir', { timeout: 90000 }, async (t) => {
  const ports = { 'node-1': await freePort(), 'node-2': await freePort(), 'node-3': await freePort() };
  const nodes = Object.keys(ports).map((id) => start(id, ports));
  await Promise.all(nodes.map((n) => n.ready));
  const first = await agreedLeader(nodes);

  // A write on the leader is readable on every node.
  const leader = nodes.find((n) => n.id === first.leader);
  await leader.call('set', { key: 'workflow:1', value: { status: 'running' } });
  for (const n of nodes) {
    assert.deepEqual(await n.call('getLinearizable', { key: 'workflow:1' }), { status: 'running' });
  }

  // kill -9 of the leader: the other two elect a new leader.
  const killedAt = Date.now();
  leader.p.kill('SIGKILL');
  const rest = nodes.filter((n) => n !== leader);
  const elected = await until('a new leader after kill -9', () =>
    rest.flatMap((n) => n.events).find((e) => e.event === 'leader_elected' && e.leaderId !== leader.id && e.at >= killedAt));
  const failover = elected.at - killedAt;
  t.diagnostic(`kill -9 of the leader -> new leader ${elected.leaderId} after ${failover} ms`);
  assert.ok(failover < 5000, `failover took ${failover} ms`);
  const newLeader = rest.find((n) => n.id === elected.leaderId);
  for (let i = 0; i < 20; i++) await newLeader.call('set', { key: `k${i}`, value: i });

  // SIGSTOP of the new leader (frozen, sockets open): the last node cannot win alone
  // (2 of 3 needed), so first bring the killed one back from its dataDir.
  const restarted = start(leader.id, ports);
  await restarted.ready;
  await until('restarted node catches up from its dataDir and the cluster', async () =>
    (await restarted.call('get', { key: 'k19' })) === 19);
  assert.deepEqual(await restarted.call('get', { key: 'workflow:1' }), { status: 'running' });

  const stoppedAt = Date.now();
  newLeader.p.kill('SIGSTOP');
  const others = [rest.find((n) => n !== newLeader), restarted];
  const next = await until('a new leader after SIGSTOP', () =>
    others.flatMap((n) => n.events).find((e) => e.event === 'leader_elected' && e.leaderId !== newLeader.id && e.at >= stoppedAt));
  t.diagnostic(`SIGSTOP of the leader -> new leader ${next.leaderId} after ${next.at - stoppedAt} ms`);
  const writer = others.find((n) => n.id === next.leaderId);
  await writer.call('set', { key: 'during-stop', value: true });
  newLeader.p.kill('SIGCONT');
  // The frozen leader wakes up, steps down and catches up.
  await until('the old leader follows and catches up', async () => {
    const s = await newLeader.call('state');
    return s.role === 'follower' && s.leaderId === next.leaderId && (await newLeader.call('get', { key: 'during-stop' })) === true;
  });
  const final = await agreedLeader([...others, newLeader]);
  assert.equal(final.leader, next.leaderId);
  for (const n of [...others, newLeader]) await n.call('exit');
});
