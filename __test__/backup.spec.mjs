// backup(): restore on call, atomic writes, authenticated encryption.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createStore } from 'redux-cluster-rs';
import { counter, waitFor, child } from './helpers.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-backup-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const file = () => path.join(tmp, `state-${n++}.json`);
const readJson = (f) => {
  try {
    return JSON.parse(fs.readFileSync(f, 'utf8'));
  } catch {
    return null;
  }
};

test('without a key: JSON on disk, restored by the next backup() call', async () => {
  const f = file();
  const a = createStore(counter);
  assert.equal(await a.backup({ path: f, count: 1 }), true);
  for (let i = 0; i < 3; i++) a.dispatch({ type: 'INC' });
  await waitFor(() => readJson(f)?.counter === 3, { what: 'the file written' });
  const b = createStore(counter);
  assert.equal(await b.backup({ path: f }), true);
  assert.deepEqual(b.getState(), { counter: 3 });
});

test('with a key: unreadable on disk, restored with the key, refused with a wrong key or a flipped byte', async () => {
  const f = file();
  const a = createStore(counter);
  await a.backup({ path: f, key: 'correct horse', count: 1 });
  a.dispatch({ type: 'SET', payload: { secret: 'the plans' } });
  await waitFor(() => fs.existsSync(f) && fs.readFileSync(f, 'utf8').includes('aes-256-gcm'), { what: 'encrypted file' });
  assert.ok(!fs.readFileSync(f, 'utf8').includes('the plans'));
  const b = createStore(counter);
  await b.backup({ path: f, key: 'correct horse' });
  assert.equal(b.getState().secret, 'the plans');

  const wrong = createStore(counter);
  await assert.rejects(wrong.backup({ path: f, key: 'battery staple' }), { code: 'ERR_BACKUP_CORRUPT' });
  assert.deepEqual(wrong.getState(), { counter: 0 }, 'nothing loaded');

  const env = JSON.parse(fs.readFileSync(f, 'utf8'));
  const data = Buffer.from(env.data, 'base64');
  data[Math.floor(data.length / 2)] ^= 0x01;
  const flipped = path.join(tmp, 'flipped.json');
  fs.writeFileSync(flipped, JSON.stringify({ ...env, data: data.toString('base64') }));
  const c = createStore(counter);
  await assert.rejects(c.backup({ path: flipped, key: 'correct horse' }), { code: 'ERR_BACKUP_CORRUPT' });
  assert.deepEqual(c.getState(), { counter: 0 });

  const plain = file();
  fs.writeFileSync(plain, '{"counter": 1');
  await assert.rejects(createStore(counter).backup({ path: plain }), { code: 'ERR_BACKUP_CORRUPT' });
  await assert.rejects(createStore(counter).backup({ path: plain, count: 0 }), { code: 'ERR_INVALID_CONFIG' });
});

test('timeout wins over count', async () => {
  const f = file();
  const a = createStore(counter);
  await a.backup({ path: f, timeout: 0.2, count: 1 });
  a.dispatch({ type: 'INC' });
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(!fs.existsSync(f), 'not written per change');
  await waitFor(() => readJson(f)?.counter === 1, { what: 'written after the timeout' });
});

test('kill -9 at any moment of a write loop leaves a whole file (old or new)', async () => {
  for (const key of ['', 'k3y']) {
    const f = file();
    for (let round = 0; round < 4; round++) {
      const w = child('backup-writer.mjs', [f, key]);
      await w.next((m) => m.ready);
      await new Promise((r) => setTimeout(r, 50 + Math.floor(Math.random() * 200)));
      await w.kill('SIGKILL');
      const restored = createStore(counter);
      // backup() parses (and decrypts) the file whole or refuses it.
      await restored.backup({ path: f, key: key || undefined });
      assert.equal(typeof restored.getState().counter, 'number');
      assert.equal(restored.getState().blob.length, 200000, `round ${round}: a whole state`);
      const leftovers = fs.readdirSync(path.dirname(f)).filter((x) => x.startsWith(path.basename(f) + '.tmp-'));
      assert.deepEqual(leftovers, [], 'temp files of interrupted writes are cleaned up');
    }
  }
});

test('a server restoring a backup hands the state to its connected clients, in order', async () => {
  const f = file();
  fs.writeFileSync(f, JSON.stringify({ counter: 500 }));
  const server = createStore(counter);
  const srv = server.createServer({ host: '127.0.0.1', port: 0 });
  const client = createStore(counter);
  const cl = client.createClient({ host: '127.0.0.1', port: srv.port });
  client.dispatch({ type: 'INC' });
  await waitFor(() => client.getState().counter === 1, { what: 'first action' });
  await server.backup({ path: f });
  server.dispatch({ type: 'INC' });
  await waitFor(() => client.getState().counter === 501 && server.getState().counter === 501, {
    what: 'restored state then one more action on the client',
    show: () => [server.getState(), client.getState()],
  });
  await cl.disconnect();
  await srv.close();
});

// Whatever is on disk where a backup is read, backup() loads it or refuses it with
// ERR_BACKUP_CORRUPT; it never throws anything else, hangs, or leaves a timer running.
test('arbitrary bytes and arbitrary encrypted envelopes are loaded or refused with ERR_BACKUP_CORRUPT (property, fast-check)', { timeout: 120000 }, async () => {
  const fc = (await import('fast-check')).default;
  const outcome = (p) => p.then(() => 'loaded', (e) => e.code || `${e.name}: ${e.message}`);
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.boolean(), async (bytes, withKey) => {
      const f = file();
      fs.writeFileSync(f, bytes);
      const r = await outcome(createStore(counter, { stderr: () => {} }).backup({ path: f, key: withKey ? 'k' : undefined, timeout: 3600 }));
      return withKey ? r === 'ERR_BACKUP_CORRUPT' : r === 'loaded' || r === 'ERR_BACKUP_CORRUPT';
    }),
    { numRuns: 200 }
  );
  const text = fc.oneof(fc.string(), fc.base64String(), fc.constant(undefined), fc.integer(), fc.constant(null));
  const envelope = fc.record({
    format: fc.constantFrom('redux-cluster-rs/backup/1', 'other'),
    kdf: fc.oneof(
      fc.record({
        N: fc.oneof(fc.constantFrom(0, 1, 2, 3, 16, 1024, -8, 2 ** 40, 1.5), fc.integer()),
        r: fc.integer({ min: -2, max: 40 }),
        p: fc.integer({ min: -2, max: 20 }),
        salt: text,
      }),
      text
    ),
    data: text,
    iv: text,
    tag: text,
  });
  await fc.assert(
    fc.asyncProperty(envelope, async (env) => {
      const f = file();
      fs.writeFileSync(f, JSON.stringify(env));
      return (await outcome(createStore(counter, { stderr: () => {} }).backup({ path: f, key: 'k', timeout: 3600 }))) === 'ERR_BACKUP_CORRUPT';
    }),
    { numRuns: 150 }
  );
});
