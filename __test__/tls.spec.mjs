// TLS on TCP endpoints: trusted, untrusted, plain-on-TLS, and mutual TLS. Certificates
// are made for the run with the openssl command-line tool.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createStore, ErrorCode } from 'redux-cluster-rs';
import { child, counter, waitFor, sink } from './helpers.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-tls-'));
const pem = {};
const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

function ca(name) {
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`,
    '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`);
}

function leaf(name, caName, ext) {
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`,
    '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`, '-CAcreateserial',
    '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
}

before(() => {
  ca('ca');
  ca('rogue');
  leaf('server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'ca', 'extendedKeyUsage=clientAuth\n');
  leaf('intruder', 'rogue', 'extendedKeyUsage=clientAuth\n');
  // Membership nodes dial and accept: one certificate, both usages.
  const peer = 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n';
  leaf('node1', 'ca', peer);
  leaf('node2', 'ca', peer);
  leaf('stranger', 'rogue', peer);
  for (const f of fs.readdirSync(dir)) if (/\.(crt|key)$/.test(f)) pem[f] = fs.readFileSync(path.join(dir, f), 'utf8');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function tlsServer(extra = {}) {
  const errors = sink();
  const server = createStore(counter, { stderr: errors });
  server.dispatch({ type: 'INC', by: 9 });
  const srv = server.createServer({ host: '127.0.0.1', port: 0, tls: { cert: pem['server.crt'], key: pem['server.key'], ...extra } });
  return { errors, server, srv };
}

function client(port, tls) {
  const errors = sink();
  const store = createStore(counter, { stderr: errors, reconnectInitialMs: 20, reconnectMaxMs: 100 });
  const handle = store.createClient({ host: '127.0.0.1', port, ...(tls === undefined ? {} : { tls }) });
  return { errors, store, handle };
}

test('a client trusting the CA syncs over TLS; untrusted and plain clients are refused cleanly', async () => {
  const { server, srv, errors } = tlsServer();
  const good = client(srv.port, { ca: pem['ca.crt'] });
  await waitFor(() => good.store.getState().counter === 9 && good.store.connected, { what: 'TLS sync' });
  good.store.dispatch({ type: 'INC' });
  await waitFor(() => server.getState().counter === 10 && good.store.getState().counter === 10, { what: 'dispatch over TLS' });

  const untrusted = client(srv.port, { ca: pem['rogue.crt'] });
  await waitFor(() => untrusted.handle.error?.code === ErrorCode.Tls, { what: 'untrusted server certificate', show: () => untrusted.errors.lines });
  assert.match(untrusted.errors.lines[0], /TLS handshake/);

  const plain = client(srv.port);
  await waitFor(() => errors.lines.some((l) => /TLS handshake failed/.test(l)), { what: 'plain client reported', show: () => errors.lines });
  await new Promise((r) => setTimeout(r, 200));
  for (const c of [untrusted, plain]) {
    assert.equal(c.store.connected, false);
    assert.equal(c.store.getState().counter, 0, 'no state without TLS trust');
  }
  good.store.dispatch({ type: 'INC' });
  await waitFor(() => good.store.getState().counter === 11, { what: 'the good client unaffected' });
  await Promise.all([good, untrusted, plain].map((c) => c.handle.disconnect(0)));
  await srv.close();
});

test('mutual TLS: a client certificate from the CA is required', async () => {
  const { server, srv, errors } = tlsServer({ ca: pem['ca.crt'] });
  const withCert = client(srv.port, { ca: pem['ca.crt'], cert: pem['client.crt'], key: pem['client.key'] });
  await waitFor(() => withCert.store.getState().counter === 9, { what: 'mTLS sync' });
  const before = errors.lines.length;
  const noCert = client(srv.port, { ca: pem['ca.crt'] });
  const intruder = client(srv.port, { ca: pem['ca.crt'], cert: pem['intruder.crt'], key: pem['intruder.key'] });
  await waitFor(() => errors.lines.slice(before).filter((l) => /TLS handshake failed/.test(l)).length >= 2, {
    what: 'both refused',
    show: () => errors.lines,
  });
  await new Promise((r) => setTimeout(r, 200));
  for (const c of [noCert, intruder]) assert.equal(c.store.getState().counter, 0, 'no state without a valid client certificate');
  assert.equal(server.getState().counter, 9);
  await Promise.all([withCert, noCert, intruder].map((c) => c.handle.disconnect(0)));
  await srv.close();
});

test('TLS settings are checked', () => {
  const s = createStore(counter);
  assert.throws(() => s.createServer({ port: 0, tls: { cert: pem['server.crt'] } }), { code: ErrorCode.InvalidConfig });
  assert.throws(() => s.createServer({ port: 0, tls: { cert: 'junk', key: 'junk' } }), { code: ErrorCode.InvalidConfig, message: /TLS/ });
  assert.throws(() => createStore(counter).createClient({ port: 1, tls: { ca: 'junk' } }), { code: ErrorCode.InvalidConfig });
});

test('membership links over mutual TLS: members meet; a certificate from another CA, or no TLS, never comes up', { timeout: 30000 }, async () => {
  const FAST = { host: '127.0.0.1', port: 0, heartbeatIntervalMs: 100, reconnectBaseDelayMs: 50, reconnectMaxDelayMs: 300 };
  const tls = (name, caName = 'ca') => ({ cert: pem[`${name}.crt`], key: pem[`${name}.key`], ca: pem[`${caName}.crt`] });
  const start = async (name, extra) => {
    const k = child('cluster-node.mjs', [JSON.stringify({ nodeName: name, ...FAST, ...extra })]);
    k.id = (await k.next((m) => m.id)).id;
    return k;
  };
  const a = await start('a', { tls: tls('node1') });
  const nodes = [a];
  try {
    const stranger = await start('s', { seeds: [a.id], tls: tls('stranger', 'rogue') });
    const plain = await start('p', { seeds: [a.id] });
    nodes.push(stranger, plain);
    // Both intruders are refused at a's TLS handshake, and each hears why on its side.
    await waitFor(() => a.messages.filter((m) => m.error).length >= 2, { what: 'two refusals at a', timeoutMs: 10000 });
    await stranger.next((m) => m.error && /certificate|TLS|tls/i.test(m.message));
    const b = await start('b', { seeds: [a.id], tls: tls('node2') });
    nodes.push(b);
    await b.next((m) => m.up === a.id);
    await a.next((m) => m.up === b.id);
    for (const k of [stranger, plain]) {
      assert.ok(!a.messages.some((m) => m.up === k.id), `a never saw ${k.id}`);
      assert.ok(!k.messages.some((m) => m.up), `${k.id} saw nobody`);
    }
    assert.ok(a.messages.filter((m) => m.error).every((m) => m.error === ErrorCode.Auth), JSON.stringify(a.messages.filter((m) => m.error)));
  } finally {
    await Promise.all(nodes.map((k) => k.kill()));
  }
});
