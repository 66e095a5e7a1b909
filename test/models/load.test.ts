// Building a model from files in memory or from a stream (the browser's paths, models/load.ts): the same logits as the
// Node loader; no view of the caller's bytes kept (modelFromBytes); a stream read tensor by tensor into place, in any
// chunking, and a stream that ends early or declares too long a header refused with the file named.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type CausalLM, modelFromBytes, modelFromStream, type HfConfig } from '../../src/index.js';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import { ROOT_DIR, rng } from '../helpers.js';

const dir = join(ROOT_DIR, 'models', 'qkv-tiny');
const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as HfConfig;
const file = () => new Uint8Array(readFileSync(join(dir, 'model.safetensors')));
const ids = [[5, 17, 300, 2048, 9, 77]];
const logits = (m: unknown) => (m as CausalLM).forward(ids).logits.toFloat32();
const reference = logits(loadCheckpoint(dir, { tokenizer: false, progress: () => {} }).model);

// a stream of `bytes` in chunks of random sizes (1 byte up to 64 KiB), ending after `limit` bytes
function chunked(bytes: Uint8Array, seed: number, limit = bytes.length): ReadableStream<Uint8Array> {
  const r = rng(seed);
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= limit) { c.close(); return; }
      const n = Math.min(limit - at, 1 + Math.floor(r() * 65536));
      c.enqueue(bytes.slice(at, at + n));
      at += n;
    },
  });
}

test('modelFromBytes: the Node loader\'s logits, and no view of the bytes kept (overwriting them changes nothing)', () => {
  const bytes = file();
  const model = modelFromBytes(config, [bytes]);
  bytes.fill(0);
  assert.deepEqual(logits(model), reference);
});

test('modelFromStream: the same logits from a stream in chunks of any size', async () => {
  const bytes = file();
  for (const seed of [1, 2]) assert.deepEqual(logits(await modelFromStream(config, chunked(bytes, seed), bytes.length)), reference);
});

test('modelFromStream: a stream that ends early, a header longer than the file, or no size is refused', async () => {
  const bytes = file();
  await assert.rejects(modelFromStream(config, chunked(bytes, 3, bytes.length - 100), bytes.length, 'tiny.safetensors'),
    /tiny\.safetensors: the stream ended at byte \d+, before the data its header declares/);
  await assert.rejects(modelFromStream(config, chunked(bytes, 4), 1000, 'tiny.safetensors'), /header length \d+ exceeds the file \(1000 bytes\)/);
  await assert.rejects(modelFromStream(config, chunked(bytes, 5), Number.NaN), /size must be the file's length in bytes \(≥ 8\), got NaN/);
});
