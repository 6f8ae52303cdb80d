// The engine's side of the divergence guard (issue 28), through the addon as the JS side
// uses it: an engine reducer's server and client record a CHECK's digest, compare a
// DIGEST with it and report a divergence in their polls; stateDigest is the same digest
// as node:crypto's. (The JS side, which sends these actions and acts on the reports, is
// tested with it.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ErrorCode } from 'redux-cluster-rs';
import { waitFor, ROOT } from './helpers.mjs';

const addon = createRequire(import.meta.url)(path.join(ROOT, 'index.js'));
const CHECK = JSON.stringify({ type: '@@redux-cluster/CHECK', by: 'test' });
const digestAction = (seq, digest) => JSON.stringify({ type: '@@redux-cluster/DIGEST', seq, digest });
const sha = (text) => crypto.createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 16);

test('stateDigest is SHA-256 of the JSON text, lowercase hex, its first 16 characters', () => {
  for (const json of ['{"n":1}', '{}', JSON.stringify({ é: '✓', list: [1, 2, { x: null }] })]) {
    assert.equal(addon.stateDigest(json), sha(json));
  }
  assert.equal(addon.stateDigest('{"n":1}'), '2bfd14f43d17fc7c');
});

test('an engine reducer records a CHECK without applying it, and checkDigest gives the digest for the authority to publish', () => {
  const r = addon.NativeReducer.patch('{"n":1}');
  const v = r.version;
  assert.equal(r.apply(CHECK), 1);
  assert.equal(r.checkDigest(1), sha('{"n":1}'));
  assert.equal(r.checkDigest(2), null);
  assert.equal(r.version, v, 'the state did not change');
  assert.equal(r.takeFailures(), null);
  // A malformed one is refused like any action the reducer refuses.
  assert.throws(() => r.apply(JSON.stringify({ type: '@@redux-cluster/DIGEST', seq: 1 })), (e) => e.code === ErrorCode.Reducer);
});

test('a server and a client of an engine reducer report a DIGEST that differs from their CHECK in their polls, and only that one', async () => {
  const server = addon.NativeReducer.patch('{"n":0}');
  const authority = new addon.NativeAuthority('guard', 'action', '', undefined, () => {}, server);
  const listener = authority.listen('127.0.0.1', 0);
  const mine = addon.NativeReducer.patch('{"n":0}');
  const client = new addon.NativeClient('guard', [{ host: '127.0.0.1', port: listener.port }], undefined, undefined, () => {}, mine);
  const polls = [];
  const pollClient = () => {
    const p = client.poll(1000);
    polls.push(p);
    return p;
  };
  try {
    await waitFor(() => client.connected, { what: 'the client connected' });
    // A PATCH first, so that the CHECK's digest is of a state that actions made.
    authority.submit(JSON.stringify({ type: 'PATCH', ops: [{ op: 'replace', path: '/n', value: 1 }] }));
    const checkSeq = authority.submit(CHECK);
    const published = server.checkDigest(checkSeq);
    assert.equal(published, sha('{"n":1}'));
    authority.submit(digestAction(checkSeq, published));
    authority.submit(digestAction(checkSeq, '0123456789abcdef'));
    authority.submit(digestAction(checkSeq + 100, '0123456789abcdef')); // never checked
    authority.flush();
    const head = authority.head;
    await waitFor(() => pollClient().applied >= head, { what: 'the client applied every action', show: () => polls.at(-1) });
    assert.equal(mine.checkDigest(checkSeq), published, 'the client recorded the same digest at the same seq');
    assert.deepEqual(mine.stateSince(0).json, '{"n":1}');

    const expected = [{ seq: checkSeq, expected: '0123456789abcdef', actual: published }];
    assert.deepEqual(polls.flatMap((p) => p.divergences ?? []), expected, "the client's");
    assert.ok(polls.every((p) => p.divergencesDropped === 0 && p.failures == null));
    const a = authority.poll(1, Number.MAX_SAFE_INTEGER, 1000);
    assert.deepEqual(a.divergences, expected, "the server's");
    assert.deepEqual([a.divergencesDropped, a.failures], [0, undefined]);
    // Taken: the next polls report nothing.
    assert.equal(authority.poll(1, Number.MAX_SAFE_INTEGER, 1000).divergences, undefined);
    assert.equal(client.poll(1000).divergences, undefined);
  } finally {
    client.shutdown();
    await listener.close();
    await authority.shutdown();
  }
});
