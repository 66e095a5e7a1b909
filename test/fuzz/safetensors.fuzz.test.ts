// Fuzz: random mutations of valid safetensors files either parse or throw SafetensorsError — never another
// error (a RangeError would mean an out-of-bounds read), never a hang.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSafetensors, SafetensorsError, serializeSafetensors, Tensor } from '../../src/index.js';
import { randint, rng } from '../helpers.js';

test('2000 mutated files parse or fail cleanly', () => {
  const rand = rng(2024);
  const seed = serializeSafetensors({
    w: Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]), h: Tensor.from([1, 2], [2], 'float16'), n: Tensor.from([7], [1], 'int64'),
  }, { format: 'pt' });
  const text = new TextDecoder().decode(seed.subarray(8, 8 + Number(new DataView(seed.buffer).getBigUint64(0, true))));
  let parsed = 0;
  for (let trial = 0; trial < 2000; trial++) {
    let bytes: Uint8Array;
    const kind = trial % 4;
    if (kind === 0) { // flip random bytes anywhere
      bytes = seed.slice();
      for (let f = randint(rand, 1, 4); f > 0; f--) bytes[randint(rand, 0, bytes.length - 1)] = randint(rand, 0, 255);
    } else if (kind === 1) { // truncate
      bytes = seed.slice(0, randint(rand, 0, seed.length - 1));
    } else if (kind === 2) { // edit digits inside the JSON header (offsets and shapes)
      const chars = [...text];
      for (let f = randint(rand, 1, 3); f > 0; f--) {
        const at = randint(rand, 0, chars.length - 1);
        if (/[0-9]/.test(chars[at])) chars[at] = String(randint(rand, 0, 9));
      }
      const json = new TextEncoder().encode(chars.join(''));
      bytes = new Uint8Array(8 + json.length + seed.length - 8 - text.length);
      new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
      bytes.set(json, 8);
      bytes.set(seed.subarray(8 + text.length), 8 + json.length);
    } else { // random length prefix
      bytes = seed.slice();
      new DataView(bytes.buffer).setUint32(0, randint(rand, 0, 2 ** 32 - 1), true);
    }
    try {
      const f = parseSafetensors(bytes);
      for (const t of f.tensors.values()) t.toArray().length; // every parsed tensor is readable in full
      parsed++;
    } catch (e) {
      assert.ok(e instanceof SafetensorsError || (e instanceof Error && /does not fit a JS number/.test(e.message)), `trial ${trial}: ${String(e)}`);
    }
  }
  assert.ok(parsed > 0 && parsed < 2000, `parsed ${parsed} of 2000`);
});
