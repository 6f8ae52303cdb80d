// Shared helpers for the JS tests: reducers, bounded waits, child processes, raw frames.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
export { counter } from './fixtures/reducers.mjs';
// A link with latency (a delaying TCP proxy), shared with the optimistic bench.
export { slowLink, freePort } from '../benches/util.mjs';

// A failing test may leave a server or client open; then this file's process would never
// exit and the run would hang. Once every test of the file has reported, give it a few
// seconds to exit by itself, then end it (keeping its exit code). Passing tests close
// everything they open, and the lifecycle tests check clean exit in child processes.
// (Only under the test runner: scripts such as chaos.mjs import these helpers too.)
if (process.env.NODE_TEST_CONTEXT) after(() => setTimeout(() => process.exit(), 3000).unref());

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURES = path.join(ROOT, '__test__', 'fixtures');


/** Resolves once `cond()` (or the promise it returns) is truthy; rejects after `timeoutMs`
 *  with `what` and the last value seen. */
export function waitFor(cond, { timeoutMs = 10000, what = 'condition', show } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = async () => {
      let v;
      try {
        v = await cond();
      } catch (e) {
        return reject(e);
      }
      if (v) return resolve(v);
      if (Date.now() - t0 > timeoutMs) {
        return reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}${show ? `; last: ${JSON.stringify(show())}` : ''}`));
      }
      setTimeout(tick, 5);
    };
    tick();
  });
}

export function tmpSock(tag = 's') {
  return path.join(os.tmpdir(), `rcrs-${process.pid}-${tag}-${crypto.randomBytes(4).toString('hex')}.sock`);
}

/** Collects what a store writes to its error sink. */
export function sink() {
  const lines = [];
  const fn = (m) => lines.push(String(m));
  fn.lines = lines;
  return fn;
}

/**
 * A child node process running a fixture; each JSON line it prints on stdout becomes an
 * entry in `messages`. `next(pred)` waits (bounded) for a matching message.
 */
export function child(script, args = [], { env } = {}) {
  const p = spawn(process.execPath, [path.join(FIXTURES, script), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const messages = [];
  let stderr = '';
  let buf = '';
  p.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        messages.push(JSON.parse(line));
      } catch {
        /* not ours */
      }
    }
  });
  p.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => p.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    proc: p,
    messages,
    exited,
    get stderr() {
      return stderr;
    },
    send(obj) {
      p.stdin.write(JSON.stringify(obj) + '\n');
    },
    next(pred, timeoutMs = 15000) {
      return waitFor(() => messages.find(pred), {
        timeoutMs,
        what: `a message from ${script}`,
        show: () => ({ messages: messages.slice(-3), stderr: stderr.slice(-500) }),
      });
    },
    kill(sig = 'SIGKILL') {
      try {
        p.kill(sig);
      } catch {
        /* gone */
      }
      return exited;
    },
  };
}

// ---- raw protocol, for feeding the server what a real client would not

export function frame(payload) {
  const h = Buffer.alloc(6);
  h.writeUInt32BE(payload.length + 2, 0);
  h[4] = 1; // protocol version
  h[5] = 0; // flags
  return Buffer.concat([h, payload]);
}

function u64(n) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

function str(s) {
  const b = Buffer.from(s);
  const l = Buffer.alloc(4);
  l.writeUInt32BE(b.length);
  return Buffer.concat([l, b]);
}

export function helloFrame(hash, clientId = 12345, login = '') {
  return frame(Buffer.concat([Buffer.from([1]), str(hash), u64(clientId), u64(0), u64(0), str(login)]));
}

/** What a Raft peer dialling a server sends first: the link label, then its hello. */
export function peerHelloFrame(from, auth = false) {
  const label = Buffer.from('RC\x01\x02', 'latin1');
  return Buffer.concat([label, frame(Buffer.concat([Buffer.from([1, 2]), str(from), Buffer.alloc(16, 7), Buffer.from([auth ? 1 : 0])]))]);
}

export function dispatchFrame(firstCounter, actions) {
  const n = Buffer.alloc(4);
  n.writeUInt32BE(actions.length);
  return frame(Buffer.concat([Buffer.from([3]), u64(firstCounter), n, ...actions.map((a) => str(JSON.stringify(a)))]));
}

export function rawConnect(opts) {
  return new Promise((resolve, reject) => {
    const s = net.connect(opts);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

export function closed(socket, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve();
    const t = setTimeout(() => reject(new Error('socket was not closed by the server')), timeoutMs);
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(t);
      resolve();
    });
    socket.resume();
  });
}

export const sha1 = (s) => crypto.createHash('sha1').update(s).digest('hex');
/** A store's RCHash is the md5 of its reducer's name, as in redux-cluster 2.0. */
export const md5 = (s) => crypto.createHash('md5').update(s).digest('hex');

export { fs };

let nextAsk = 0;
/** Sends `msg` with a fresh id to a fixture child and resolves its answer (bounded). */
export function ask(k, msg, timeoutMs = 30000) {
  const id = ++nextAsk;
  k.send({ ...msg, id });
  return k.next((m) => m.id === id, timeoutMs);
}

/**
 * Waits (30 s) until every server process (fixtures/raft-store.mjs) names the same leader and
 * counts `voters` voters; resolves the leader's name.
 */
export async function oneLeader(servers, voters = servers.length) {
  let leader;
  let last;
  await waitFor(
    async () => {
      last = (await Promise.all(servers.map((k) => ask(k, { cmd: 'status' })))).map((s) => s.status);
      leader = last[0].leaderId;
      return leader && last.every((s) => s.leaderId === leader && s.members.filter((m) => m.voter).length === voters);
    },
    { timeoutMs: 30000, what: `one leader of ${voters} voters`, show: () => last }
  );
  return leader;
}

/** The name a Raft peer gives in its hello (after the link label), or null for anything else. */
function peerName(head) {
  if (head.length < 16 || head.toString('latin1', 0, 2) !== 'RC' || head[3] !== 2 || head[10] !== 1) return null;
  const n = head.readUInt32BE(12);
  return head.length >= 16 + n ? head.subarray(16, 16 + n).toString() : null;
}

/**
 * A TCP proxy in front of one server that knows who is calling (from a peer's hello) and
 * can cut a node off: `isolate()` refuses every connection to this server, `refuse(name)`
 * those from `name`; existing connections of either kind are closed at once. `mute()`
 * makes every link through it go silent both ways while staying open (a path that drops
 * packets, with no reset): bytes are read and dropped; `unmute()` forwards again.
 */
export async function linkProxy(target) {
  const conns = new Set();
  const refused = new Set();
  let isolated = false;
  let muted = false;
  const srv = net.createServer((a) => {
    const c = { a, b: net.connect(target, '127.0.0.1'), from: null, head: Buffer.alloc(0) };
    const drop = () => {
      conns.delete(c);
      c.a.destroy();
      c.b.destroy();
    };
    if (isolated) return drop();
    conns.add(c);
    c.a.on('data', (d) => {
      if (c.from === null && c.head.length < 4096) {
        c.head = Buffer.concat([c.head, d]);
        c.from = peerName(c.head);
        if (c.from !== null && refused.has(c.from)) return drop();
      }
      if (!muted) c.b.write(d);
    });
    c.b.on('data', (d) => {
      if (!muted) c.a.write(d);
    });
    for (const s of [c.a, c.b]) {
      s.on('error', drop);
      s.on('close', drop);
    }
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: srv.address().port,
    isolate() {
      isolated = true;
      for (const c of [...conns]) c.a.destroy(), c.b.destroy();
    },
    refuse(name) {
      refused.add(name);
      for (const c of [...conns]) if (c.from === name) c.a.destroy(), c.b.destroy();
    },
    /** Takes back `refuse(name)` alone. */
    allow(name) {
      refused.delete(name);
    },
    heal() {
      isolated = false;
      refused.clear();
    },
    mute() {
      muted = true;
    },
    unmute() {
      muted = false;
    },
    close: () => new Promise((r) => srv.close(r)),
  };
}
