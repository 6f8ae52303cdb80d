// @ruvector/raft's "distributed key-value store" tutorial, on redux-cluster-rs's Raft,
// with a real transport between processes: three node processes, each serving Raft's
// messages and a small key-value HTTP API on one loopback port. A write to a follower is
// redirected to the leader (307, as the tutorial does); half-way through the leader is
// killed with SIGKILL, the others elect a new one, the killed node comes back from its
// dataDir, and at the end all three hold every key.
//
//   node examples/raft-kv.mjs [--keys 20]
import { fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RaftNode, RaftEvent } from 'redux-cluster-rs/raft';

const SELF = fileURLToPath(import.meta.url);
const IDS = ['node-1', 'node-2', 'node-3'];

if (process.env.KV_NODE) await runNode(JSON.parse(process.env.KV_NODE));
else await runMain();

// ---- one node process: the tutorial's code, with an HTTP transport
async function runNode({ nodeId, ports, dataDir }) {
  const store = new Map();
  const kvStateMachine = {
    apply: async (command) => {
      switch (command.type) {
        case 'SET':
          store.set(command.key, command.value);
          return command.value;
        case 'GET':
          return store.get(command.key) ?? null;
        case 'DELETE':
          store.delete(command.key);
          return null;
      }
    },
  };
  const node = new RaftNode({
    nodeId,
    peers: IDS.filter((id) => id !== nodeId),
    electionTimeout: [150, 300],
    heartbeatInterval: 50,
    dataDir,
  });
  // The transport: each message is a POST to the peer's port.
  const post = async (peerId, method, request) => {
    const res = await fetch(`http://127.0.0.1:${ports[peerId]}/raft/${method}`, {
      method: 'POST',
      body: JSON.stringify(request),
      signal: AbortSignal.timeout(1000),
    });
    if (!res.ok) throw new Error(`${peerId}: HTTP ${res.status}`);
    return res.json();
  };
  node.setTransport({
    requestVote: (peerId, req) => post(peerId, 'requestVote', req),
    appendEntries: (peerId, req) => post(peerId, 'appendEntries', req),
  });
  node.setStateMachine(kvStateMachine);
  node.on(RaftEvent.LeaderElected, ({ leaderId, term }) => process.send?.({ leaderId, term, nodeId }));

  const body = (req) =>
    new Promise((resolve) => {
      let b = '';
      req.on('data', (d) => (b += d));
      req.on('end', () => resolve(b));
    });
  const server = http.createServer(async (req, res) => {
    const send = (code, obj, headers = {}) => {
      res.writeHead(code, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(obj));
    };
    try {
      const [, area, name] = req.url.split('/');
      if (area === 'raft' && req.method === 'POST') {
        const msg = JSON.parse(await body(req));
        const out = name === 'requestVote' ? await node.handleRequestVote(msg) : await node.handleAppendEntries(msg);
        return send(200, out);
      }
      if (area === 'kv' && req.method === 'POST') {
        const { value } = JSON.parse(await body(req));
        if (!node.isLeader) {
          if (!node.leader) return send(503, { error: 'no leader yet' });
          return send(307, { leader: node.leader }, { location: `http://127.0.0.1:${ports[node.leader]}${req.url}` });
        }
        const entry = await node.propose({ type: 'SET', key: name, value });
        return send(200, { success: true, index: entry.index });
      }
      if (area === 'kv' && req.method === 'GET') return send(200, { value: store.get(name) ?? null });
      if (area === 'status') return send(200, { nodeId, leader: node.leader, isLeader: node.isLeader, keys: store.size, term: node.currentTerm });
      send(404, { error: 'not found' });
    } catch (e) {
      send(500, { error: e.message, code: e.code });
    }
  });
  server.listen(ports[nodeId], '127.0.0.1', () => {
    node.start();
    process.send?.({ ready: nodeId });
  });
  process.on('SIGTERM', () => {
    node.stop();
    server.close(() => process.exit(0));
  });
}

// ---- the driver
async function runMain() {
  const args = process.argv.slice(2);
  const keys = Number(args[args.indexOf('--keys') + 1]) || 20;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raft-kv-'));
  const ports = Object.fromEntries(await Promise.all(IDS.map(async (id) => [id, await freePort()])));
  const procs = {};
  const start = (id) =>
    new Promise((resolve) => {
      const p = fork(SELF, [], { env: { ...process.env, KV_NODE: JSON.stringify({ nodeId: id, ports, dataDir: path.join(dir, id) }) } });
      p.on('message', (m) => {
        if (m.ready) resolve();
      });
      procs[id] = p;
    });
  const status = async (id) => (await fetch(`http://127.0.0.1:${ports[id]}/status`, { signal: AbortSignal.timeout(1000) })).json();
  const until = async (what, cond, ms = 20000) => {
    const t0 = Date.now();
    for (;;) {
      try {
        if (await cond()) return;
      } catch {
        /* a node not answering yet */
      }
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  // Writes go to any node; fetch follows the 307 to the leader (the body is resent).
  const set = async (via, key, value) => {
    for (let i = 0; ; i++) {
      try {
        const r = await fetch(`http://127.0.0.1:${ports[via]}/kv/${key}`, { method: 'POST', body: JSON.stringify({ value }), signal: AbortSignal.timeout(3000) });
        if (r.ok) return;
      } catch {
        /* the leader just died: try again */
      }
      if (i === 50) throw new Error(`could not set ${key}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  let code = 1;
  try {
    await Promise.all(IDS.map(start));
    let leader;
    await until('a leader', async () => {
      const st = await Promise.all(IDS.map(status));
      leader = st[0].leader;
      return leader && st.every((s) => s.leader === leader);
    });
    console.log(`[raft-kv] ${IDS.length} node processes; leader ${leader}`);
    const half = Math.floor(keys / 2);
    for (let i = 0; i < half; i++) await set(IDS[i % 3], `k${i}`, `v${i}`);
    console.log(`[raft-kv] ${half} keys written through all three nodes (followers redirect to the leader)`);

    procs[leader].kill('SIGKILL');
    const t0 = Date.now();
    const survivors = IDS.filter((id) => id !== leader);
    let next;
    await until('a new leader', async () => {
      const st = await Promise.all(survivors.map(status));
      next = st[0].leader;
      return next && next !== leader && st.every((s) => s.leader === next);
    });
    console.log(`[raft-kv] killed ${leader} (SIGKILL); ${next} leads after ${Date.now() - t0} ms`);
    for (let i = half; i < keys; i++) await set(survivors[i % 2], `k${i}`, `v${i}`);
    console.log(`[raft-kv] ${keys - half} more keys written; restarting ${leader} from its dataDir`);

    await start(leader);
    await until('every node holding every key', async () => (await Promise.all(IDS.map(status))).every((s) => s.keys === keys));
    for (const id of IDS) {
      for (const i of [0, keys - 1]) {
        const { value } = await (await fetch(`http://127.0.0.1:${ports[id]}/kv/k${i}`)).json();
        if (value !== `v${i}`) throw new Error(`${id} has ${value} for k${i}`);
      }
    }
    console.log(`[raft-kv] all ${IDS.length} nodes hold all ${keys} keys`);
    code = 0;
  } catch (e) {
    console.error(`[raft-kv] ${e.message}`);
  } finally {
    for (const p of Object.values(procs)) p.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.exit(code);
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
