// A replicated store under faults that are not a crash: its leader cut off from the
// majority (links cut by proxies the test controls), and hostile input on the port that
// serves clients and peers alike. Real processes throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createStore } from 'redux-cluster-rs';
import { ask, child, closed, counter, frame, freePort, linkProxy, oneLeader, peerHelloFrame, rawConnect, waitFor } from './helpers.mjs';

function server(spec) {
  const k = child('raft-store.mjs', [JSON.stringify(spec)]);
  k.spec = spec;
  return k;
}

test('a leader cut off from the majority acknowledges nothing and applies nothing; its clients fail over; healed, it follows', { timeout: 120000 }, async () => {
  const ports = await Promise.all([0, 1, 2].map(() => freePort()));
  const proxies = await Promise.all(ports.map((p) => linkProxy(p)));
  // The servers reach each other only through the proxies (their advertised ports);
  // clients connect straight to the servers.
  const seeds = proxies.map((x, i) => `c${i}@127.0.0.1:${x.port}`);
  const servers = [0, 1, 2].map((i) =>
    server({
      port: ports[i],
      cluster: { nodeName: `c${i}`, seeds, advertisePort: proxies[i].port, secret: 'k', heartbeatInterval: 50, electionTimeout: 150 },
    })
  );
  const replica = createStore(counter, { stderr: () => {} });
  let client;
  let reader;
  let readerClient;
  try {
    await Promise.all(servers.map((k) => k.next((m) => m.listening)));
    const leader = await oneLeader(servers);
    const li = Number(leader.slice(1));
    // The client starts on the leader.
    const order = [li, ...[0, 1, 2].filter((i) => i !== li)];
    client = replica.createClient({ servers: order.map((i) => ({ host: '127.0.0.1', port: ports[i] })) });
    // A client that only reads, on the leader too: it must not wait there forever.
    reader = createStore(counter, { stderr: () => {} });
    readerClient = reader.createClient({ servers: order.map((i) => ({ host: '127.0.0.1', port: ports[i] })) });
    await Promise.all(Array.from({ length: 50 }, () => replica.dispatchAsync({ type: 'INC' }, { timeout: 20000 })));
    for (const k of servers) await waitFor(async () => (await ask(k, { cmd: 'state' })).state.counter === 50, { what: 'all hold 50' });

    // Cut the leader off: nobody reaches it, it reaches nobody.
    proxies[li].isolate();
    for (const [i, x] of proxies.entries()) if (i !== li) x.refuse(leader);

    // Its own dispatches are not acknowledged...
    const own = await ask(servers[li], { cmd: 'dispatch', n: 5, timeout: 1500 });
    assert.deepEqual(own.seqs, [], 'an isolated leader acknowledged an action');
    assert.deepEqual(own.codes, Array(5).fill('ERR_TIMEOUT'));
    // ...while the client moves to the majority, whose new leader orders its actions.
    const more = await Promise.all(Array.from({ length: 50 }, () => replica.dispatchAsync({ type: 'INC' }, { timeout: 30000 })));
    assert.equal(new Set(more.map((r) => r.seq)).size, 50);
    const rest = servers.filter((_, i) => i !== li);
    const next = await oneLeader(rest, 3);
    assert.notEqual(next, leader, 'the majority elected another leader');
    // The reader left the isolated leader for a server that has what was committed.
    await waitFor(() => reader.getState().counter === 100, { timeoutMs: 20000, what: 'the reading client moved and holds 100' });
    // The isolated one applied nothing meanwhile (not even its own unacknowledged five).
    assert.equal((await ask(servers[li], { cmd: 'state' })).state.counter, 50);

    // Healed: it follows the new leader (and says so: a 'role' event) and ends with the
    // same state as everyone.
    const seen = servers[li].messages.length;
    for (const x of proxies) x.heal();
    await servers[li].next((m) => m.role === 'follower' && servers[li].messages.indexOf(m) >= seen, 20000);
    let counts;
    await waitFor(async () => {
      counts = await Promise.all(servers.map(async (k) => (await ask(k, { cmd: 'state' })).state.counter));
      return counts.every((c) => c === counts[0]) && replica.getState().counter === counts[0] && reader.getState().counter === counts[0];
    }, { timeoutMs: 30000, what: 'every process holds one state', show: () => ({ counts, client: replica.getState().counter, reader: reader.getState().counter }) });
    // Its five were retried once healed (a timeout means "not known yet", not "never"),
    // each applied at most once.
    assert.ok(counts[0] >= 100 && counts[0] <= 105, `counter ${counts[0]}`);
  } finally {
    if (client) await client.disconnect();
    if (readerClient) await readerClient.disconnect();
    await Promise.all(servers.map((k) => k.kill()));
    await Promise.all(proxies.map((x) => x.close()));
  }
});

test('hostile input on the shared port: garbage, an oversized frame, a peer with the wrong secret, a client posing as a peer; nobody else is harmed', { timeout: 120000 }, async () => {
  const ports = await Promise.all([0, 1, 2].map(() => freePort()));
  const seeds = ports.map((p, i) => `h${i}@127.0.0.1:${p}`);
  const spec = (i, secret = 'k') => ({
    port: ports[i],
    cluster: { nodeName: `h${i}`, seeds, secret, heartbeatInterval: 50, electionTimeout: 150 },
  });
  const servers = [0, 1, 2].map((i) => server(spec(i)));
  const replica = createStore(counter, { stderr: () => {} });
  let client;
  let intruder;
  try {
    await Promise.all(servers.map((k) => k.next((m) => m.listening)));
    await oneLeader(servers);
    client = replica.createClient({ servers: ports.map((port) => ({ host: '127.0.0.1', port })) });
    await Promise.all(Array.from({ length: 20 }, () => replica.dispatchAsync({ type: 'INC' }, { timeout: 20000 })));

    const stderrOf = (k) => k.messages.filter((m) => m.stderr).map((m) => m.stderr).join('\n');
    for (const port of ports) {
      // Garbage: closed, reported.
      const g = await rawConnect({ host: '127.0.0.1', port });
      g.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      await closed(g);
      const v = await rawConnect({ host: '127.0.0.1', port });
      v.write(Buffer.from([0, 0, 0, 4, 9, 0, 1, 2]));
      await closed(v);
      // A frame announcing 2 GiB: refused before anything is allocated.
      const big = await rawConnect({ host: '127.0.0.1', port });
      const h = Buffer.alloc(6);
      h.writeUInt32BE(0x80000000, 0);
      h[4] = 1;
      big.write(h);
      await closed(big);
      // A client posing as a peer with no secret: the group has one; refused.
      const p1 = await rawConnect({ host: '127.0.0.1', port });
      p1.write(peerHelloFrame('h0'));
      await closed(p1);
      // Posing with a secret it does not know: its proof of the session key fails.
      const p2 = await rawConnect({ host: '127.0.0.1', port });
      p2.write(peerHelloFrame('h1', true));
      p2.write(frame(Buffer.alloc(32, 7))); // a proof of a key it cannot have
      await closed(p2);
    }
    // A real server with the wrong secret, seeded with the group: it is never let in.
    const extra = await freePort();
    intruder = server({ port: extra, cluster: { nodeName: 'h9', seeds, secret: 'wrong', heartbeatInterval: 50, electionTimeout: 150 } });
    await intruder.next((m) => m.listening);

    for (const k of servers) {
      const reported = [/exceeds the maximum frame size/, /frame of 1195725854 bytes/, /unsupported protocol version 9/, /disagrees on using a clusterSecret/, /"h1" did not prove the cluster secret/, /"h9" did not prove the cluster secret/];
      await waitFor(() => reported.every((r) => r.test(stderrOf(k))), {
        what: `${k.spec.cluster.nodeName} reported each refusal on stderr`,
        show: () => ({ missing: reported.filter((r) => !r.test(stderrOf(k))).map(String), text: stderrOf(k).split('\n').filter((l) => !l.includes('"h9"')).join('\n').slice(-1500) }),
      });
    }
    // The group is whole and serves on: 20 more through the client, all everywhere.
    await Promise.all(Array.from({ length: 20 }, () => replica.dispatchAsync({ type: 'INC' }, { timeout: 20000 })));
    for (const k of servers) {
      await waitFor(async () => (await ask(k, { cmd: 'state' })).state.counter === 40, { what: `${k.spec.cluster.nodeName} holds 40` });
    }
    const st = (await ask(servers[0], { cmd: 'status' })).status;
    assert.deepEqual(st.members.map((m) => m.nodeId).sort(), ['h0', 'h1', 'h2'], 'the intruder is not a member');
    assert.equal((await ask(intruder, { cmd: 'state' })).state.counter, 0, 'the intruder learned nothing');
    assert.equal(replica.getState().counter, 40);
  } finally {
    if (client) await client.disconnect();
    await Promise.all([...servers, ...(intruder ? [intruder] : [])].map((k) => k.kill()));
  }
});

test('a replicated server refuses settings that would leave its port open: logins without a secret, cluster.port, a Unix path', () => {
  const store = createStore(counter, { stderr: () => {} });
  const bad = [
    [{ host: '127.0.0.1', port: 0, logins: { app: 'pw' }, cluster: { nodeName: 'x', bootstrap: true } }, /needs cluster.secret/],
    [{ host: '127.0.0.1', port: 0, cluster: { nodeName: 'x', port: 9999 } }, /advertisePort/],
    [{ path: '/tmp/x.sock', cluster: { nodeName: 'x' } }, /listens on TCP/],
  ];
  for (const [settings, message] of bad) {
    assert.throws(() => store.createServer(settings), { code: 'ERR_INVALID_CONFIG', message }, JSON.stringify(settings));
  }
});

test('with tls, the servers of a replicated store speak TLS to each other on their one port', { timeout: 60000 }, async () => {
  const { execFileSync } = await import('node:child_process');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-raft-tls-'));
  const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=ca');
  fs.writeFileSync(path.join(dir, 's.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 's.key', '-out', 's.csr', '-subj', '/CN=s');
  ssl('x509', '-req', '-in', 's.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 's.crt', '-days', '2', '-extfile', 's.ext');
  const pem = (f) => fs.readFileSync(path.join(dir, f), 'utf8');
  const tls = { cert: pem('s.crt'), key: pem('s.key') };
  const ports = await Promise.all([0, 1, 2].map(() => freePort()));
  const seeds = ports.map((p, i) => `t${i}@127.0.0.1:${p}`);
  const stores = [];
  const servers = [];
  const errors = [];
  try {
    for (const i of [0, 1, 2]) {
      const s = createStore(counter, { stderr: (m) => errors.push(String(m)) });
      stores.push(s);
      servers.push(s.createServer({ host: '127.0.0.1', port: ports[i], tls, cluster: { nodeName: `t${i}`, seeds, ca: pem('ca.crt'), secret: 'k' } }));
    }
    await waitFor(() => servers.every((x) => x.status().members.filter((m) => m.voter).length === 3 && x.status().leaderId), {
      timeoutMs: 30000,
      what: 'three voters over TLS',
      show: () => ({ status: servers.map((x) => x.status()), errors: errors.slice(-5) }),
    });
    const replica = createStore(counter, { stderr: () => {} });
    const client = replica.createClient({ servers: ports.map((port) => ({ host: '127.0.0.1', port })), tls: { ca: pem('ca.crt') } });
    await Promise.all(Array.from({ length: 30 }, () => replica.dispatchAsync({ type: 'INC' }, { timeout: 20000 })));
    await Promise.all(stores.map((s) => s.dispatchAsync({ type: 'INC' }, { timeout: 20000 })));
    await waitFor(() => stores.every((s) => s.getState().counter === 33) && replica.getState().counter === 33, { what: 'all hold 33' });
    // A plain (non-TLS) peer hello on a TLS port gets nowhere.
    const raw = await rawConnect({ host: '127.0.0.1', port: ports[0] });
    raw.write(peerHelloFrame('t1'));
    await closed(raw);
    await client.disconnect();
  } finally {
    await Promise.all(servers.map((x) => x.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
