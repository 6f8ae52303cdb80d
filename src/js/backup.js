'use strict';
// store.backup({ path, key?, timeout?, count? }): restore the state from `path` if it
// exists, then keep writing it. Writes are atomic (temp file, fsync, rename, fsync of the
// directory), so a crash at any moment leaves the old file or the new one, whole. With a
// key the file is AES-256-GCM, keyed by scrypt over the key and a random salt; a tampered
// file or a wrong key is refused (ERR_BACKUP_CORRUPT), never half-loaded.

const { ErrorCode } = require('./errors.js');

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const FORMAT = 'redux-cluster-rs/backup/1';
// scrypt cost: about 50 ms once per backup() call; the parameters go into the file.
const SCRYPT = { N: 1 << 15, r: 8, p: 1 };
const MAX_N = 1 << 20; // refuse files that would make us spend unbounded memory or time

class BackupError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'ReduxClusterError';
    this.code = code;
  }
}

const scrypt = (key, salt, { N, r, p }) =>
  new Promise((resolve, reject) =>
    crypto.scrypt(key, salt, 32, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (e, k) => (e ? reject(e) : resolve(k)))
  );

async function decode(buf, key, file, parse) {
  const corrupt = (why) => new BackupError(ErrorCode.BackupCorrupt, `ReduxCluster.backup: ${file} cannot be loaded: ${why}`);
  let text = buf.toString('utf8');
  if (key !== undefined) {
    let env;
    try {
      env = JSON.parse(text);
    } catch {
      throw corrupt('not an encrypted backup');
    }
    if (!env || env.format !== FORMAT || !env.kdf || typeof env.data !== 'string') throw corrupt('not an encrypted backup');
    const { N, r, p, salt } = env.kdf;
    // What the file says is checked before it is used: a power-of-two N, a bounded cost,
    // and strings where strings belong (anything else would throw its own error).
    const powerOfTwo = Number.isInteger(N) && N >= 2 && (N & (N - 1)) === 0;
    if (!powerOfTwo || N > MAX_N || !Number.isInteger(r) || r < 1 || r > 32 || !Number.isInteger(p) || p < 1 || p > 16) {
      throw corrupt('bad key derivation parameters');
    }
    if (![salt, env.iv, env.tag].every((x) => typeof x === 'string')) throw corrupt('not an encrypted backup');
    let k;
    try {
      k = await scrypt(String(key), Buffer.from(salt, 'base64'), { N, r, p });
    } catch {
      throw corrupt('bad key derivation parameters');
    }
    try {
      const d = crypto.createDecipheriv('aes-256-gcm', k, Buffer.from(env.iv, 'base64'));
      d.setAAD(Buffer.from(FORMAT));
      d.setAuthTag(Buffer.from(env.tag, 'base64'));
      text = Buffer.concat([d.update(Buffer.from(env.data, 'base64')), d.final()]).toString('utf8');
    } catch {
      throw corrupt('wrong key, or the file was altered');
    }
  }
  try {
    return parse(text);
  } catch (e) {
    throw corrupt(`invalid JSON (${e.message})`);
  }
}

function encrypt(json, k, salt) {
  const iv = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', k, iv);
  c.setAAD(Buffer.from(FORMAT));
  const data = Buffer.concat([c.update(json, 'utf8'), c.final()]);
  return JSON.stringify({
    format: FORMAT,
    kdf: { name: 'scrypt', ...SCRYPT, salt: salt.toString('base64') },
    cipher: 'aes-256-gcm',
    iv: iv.toString('base64'),
    tag: c.getAuthTag().toString('base64'),
    data: data.toString('base64'),
  });
}

async function writeAtomic(file, data) {
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    const fh = await fs.promises.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.unlink(tmp).catch(() => {});
    throw e;
  }
  // Make the rename itself durable.
  const dir = await fs.promises.open(path.dirname(file), 'r').catch(() => null);
  if (dir) await dir.sync().catch(() => {}).finally(() => dir.close());
}

/** Temp files of writes a crash interrupted. */
async function removeLeftovers(file) {
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}.tmp-`;
  const names = await fs.promises.readdir(dir).catch(() => []);
  await Promise.all(names.filter((n) => n.startsWith(prefix)).map((n) => fs.promises.unlink(path.join(dir, n)).catch(() => {})));
}

function readOptions(o) {
  const bad = (m) => new BackupError(ErrorCode.InvalidConfig, `invalid configuration: backup ${m}`);
  if (!o || typeof o !== 'object') throw bad('options must be an object');
  if (typeof o.path !== 'string' || !o.path) throw bad('path must be a non-empty string');
  if (o.key !== undefined && (typeof o.key !== 'string' || !o.key)) throw bad('key must be a non-empty string');
  if (o.timeout !== undefined && !(typeof o.timeout === 'number' && o.timeout >= 0)) throw bad('timeout must be a number of seconds');
  if (o.count !== undefined && !(Number.isInteger(o.count) && o.count >= 1)) throw bad('count must be an integer >= 1');
  return { file: path.resolve(o.path), key: o.key, timeout: o.timeout, count: o.timeout === undefined ? o.count ?? 1 : undefined };
}

/**
 * Restores `store` from the file (as an ordered state replacement when the store serves
 * clients), then writes it after every `count` changes, or `timeout` seconds after a
 * change (timeout wins when both are set; with neither, after every change).
 */
async function backup(store, options) {
  const o = readOptions(options);
  await removeLeftovers(o.file);
  let buf = null;
  try {
    buf = await fs.promises.readFile(o.file);
  } catch (e) {
    if (e.code !== 'ENOENT') throw new BackupError(ErrorCode.Io, `ReduxCluster.backup load error: ${e.message}`);
  }
  // The store's codec: in 'protoobject' mode class instances are written tagged and restored.
  if (buf) store._restore(await decode(buf, o.key, o.file, store._decode));
  let salt = null;
  let k = null;
  if (o.key !== undefined) {
    salt = crypto.randomBytes(16);
    k = await scrypt(o.key, salt, SCRYPT);
  }
  let changes = 0;
  let timer = null;
  let writing = false;
  let again = false;
  const write = () => {
    if (writing) {
      again = true;
      return;
    }
    writing = true;
    const json = store._encode(store.getState());
    writeAtomic(o.file, k ? encrypt(json, k, salt) : json)
      .catch((e) => {
        store._error(`ReduxCluster.backup write error: ${e.message}`);
        again = true;
      })
      .finally(() => {
        writing = false;
        if (again) {
          again = false;
          setTimeout(write, 0);
        }
      });
  };
  store.subscribe(() => {
    if (o.timeout !== undefined) {
      if (!timer) {
        timer = setTimeout(() => {
          timer = null;
          write();
        }, o.timeout * 1000);
      }
    } else if (++changes >= o.count) {
      changes = 0;
      write();
    }
  });
  return true;
}

module.exports = { backup };
