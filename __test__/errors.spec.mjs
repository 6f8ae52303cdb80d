// Errors as a user meets them: every failure carries a stable `code`, and a bug in the
// engine surfaces as an `ERR_INTERNAL` error instead of an abort of Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { createStore } from 'redux-cluster-rs';
import { counter, waitFor, sink } from './helpers.mjs';

const require = createRequire(import.meta.url);
const native = require('../src/js/native.js');

test('a panic in the engine is an ERR_INTERNAL error, sync or async, and Node goes on', async () => {
  // The panic hook reports it on stderr; keep the test's output readable.
  const write = process.stderr.write;
  process.stderr.write = () => true;
  try {
    assert.throws(() => native.__panicForTest('sync bug'), (e) => e.code === 'ERR_INTERNAL' && /sync bug/.test(e.message));
    await assert.rejects(native.__panicForTestAsync('async bug'), { code: 'ERR_INTERNAL' });
  } finally {
    process.stderr.write = write;
  }
  // The engine still serves after it.
  const server = createStore(counter, { stderr: sink() });
  const srv = server.createServer({ host: '127.0.0.1', port: 0 });
  const client = createStore(counter);
  const cl = client.createClient({ host: '127.0.0.1', port: srv.port });
  await waitFor(() => client.connected, { what: 'client connected' });
  await client.dispatchAsync({ type: 'INC' });
  assert.equal(server.getState().counter, 1);
  await cl.disconnect();
  await srv.close();
});
