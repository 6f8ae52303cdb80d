// RaftNode throughput: proposals/s through 3 nodes in this process, over the JS
// transport (the RaftNode API: every Raft message crosses into JS and back), with 1 and
// 64 concurrent proposers; against the engine's own TCP transport (RaftCoordinator's
// replicateCommand, three nodes in this process on loopback) in the same run.
//
//   node benches/raftnode.mjs [--seconds 3]
import { RaftNode } from 'redux-cluster-rs/raft';
import { createRaftCoordinator } from 'redux-cluster-rs';

const args = process.argv.slice(2);
const seconds = Number(args[args.indexOf('--seconds') + 1]) || 3;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function raftNodeGroup() {
  const ids = ['a', 'b', 'c'];
  const nodes = new Map();
  for (const id of ids) {
    const n = new RaftNode({ nodeId: id, peers: ids.filter((p) => p !== id), electionTimeout: [150, 300], heartbeatInterval: 50 });
    n.setTransport({
      requestVote: (p, r) => nodes.get(p).handleRequestVote(r),
      appendEntries: (p, r) => nodes.get(p).handleAppendEntries(r),
    });
    n.setStateMachine({ apply: () => true });
    nodes.set(id, n);
  }
  for (const n of nodes.values()) n.start();
  let leader;
  const find = async () => {
    leader = null;
    for (let i = 0; i < 500 && !(leader = [...nodes.values()].find((n) => n.isLeader)); i++) await sleep(10);
    if (!leader) throw new Error('no leader');
  };
  await find();
  // Heartbeats share the JS thread with the proposals: under load a follower may time
  // out and elect another leader. Proposals then go to the new one (and are counted).
  return {
    propose: async (c) => {
      try {
        return await leader.propose(c);
      } catch (e) {
        if (e.code !== 'NOT_LEADER' && e.code !== 'NO_LEADER' && e.code !== 'TIMEOUT') throw e;
        await find();
        throw e;
      }
    },
    stop: () => [...nodes.values()].forEach((n) => n.stop()),
  };
}

async function tcpGroup() {
  const cs = ['a', 'b', 'c'].map((nodeId) => createRaftCoordinator({ nodeId, host: '127.0.0.1', port: 0, bootstrap: nodeId === 'a' }));
  for (const c of cs) await c.initialize();
  for (const c of cs.slice(1)) await cs[0].addPeer(c.nodeId, '127.0.0.1', c.config.port);
  return { propose: (c) => cs[0].replicateCommand(c), stop: () => Promise.all(cs.map((c) => c.shutdown())) };
}

async function run(group, proposers) {
  let done = 0;
  let failed = 0;
  const end = performance.now() + seconds * 1000;
  const lat = [];
  await Promise.all(
    Array.from({ length: proposers }, async (_, w) => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          await group.propose({ w, n: done });
        } catch {
          failed++;
          continue;
        }
        lat.push(performance.now() - t);
        done++;
      }
    })
  );
  lat.sort((a, b) => a - b);
  return { rate: done / seconds, failed, p50: lat[Math.floor(lat.length / 2)], p99: lat[Math.floor(lat.length * 0.99)] };
}

const rows = [];
for (const [name, make] of [
  ['RaftNode, JS transport', raftNodeGroup],
  ['engine TCP transport', tcpGroup],
]) {
  const g = await make();
  await run(g, 8); // warm up
  for (const p of [1, 64]) {
    const r = await run(g, p);
    rows.push({ name, p, ...r });
    console.error(`[bench] ${name}, ${p} proposer(s): ${Math.round(r.rate)} proposals/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, ${r.failed} rejected (leader changes)`);
  }
  await g.stop();
}
console.log('| transport | proposers | proposals/s | p50 | p99 | rejected |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.name} | ${r.p} | ${Math.round(r.rate).toLocaleString('en-US')} | ${r.p50.toFixed(2)} ms | ${r.p99.toFixed(2)} ms | ${r.failed} |`);
for (const p of [1, 64]) {
  const [js, tcp] = [rows.find((r) => r.p === p && r.name.startsWith('RaftNode')), rows.find((r) => r.p === p && r.name.startsWith('engine'))];
  console.log(`\n${p} proposer(s): the JS transport runs at ${(js.rate / tcp.rate).toFixed(2)}x the engine's TCP transport`);
}
process.exit(0);
