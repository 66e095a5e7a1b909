// qkv/node: safetensors files on disk; errors name the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, SafetensorsError, Tensor, writeSafetensors } from '../../../src/node/index.js';
import { scratchDir } from '../../helpers.js';

test('write then read a file', () => {
  const path = join(scratchDir('qkv-files-'), 'w.safetensors');
  writeSafetensors(path, { w: Tensor.from([1, 2, 3], [3], 'bfloat16') }, { format: 'pt' });
  const f = readSafetensors(path);
  assert.deepEqual(f.tensors.get('w')!.toArray(), [1, 2, 3]);
  assert.equal(f.metadata.format, 'pt');
});

test('a corrupt file names the path', () => {
  const path = join(scratchDir('qkv-files-'), 'bad.safetensors');
  writeFileSync(path, new Uint8Array([1, 2, 3]));
  assert.throws(() => readSafetensors(path), (e: unknown) => e instanceof SafetensorsError && e.message.startsWith(`${path}: file is 3 bytes`));
});
