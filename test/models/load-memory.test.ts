// Loading int8 weights reads each stored matrix into the kernels' memory, quantizes it there and gives its room back.
// Room given back stays resident (WebAssembly memory never shrinks), so it must be filled again: the output projection
// (qkv-tiny's tied embedding table, 2 MiB as bf16) is quantized before the layers, whose matrices then take its room.
// Resolved after them, its table left a hole that nothing filled (57 MiB of SmolLM-135M's int8 peak RSS).
// Its own file: a fresh process, so the kernels' free list holds this load's room only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kernelRuntime } from '../../src/kernels/wasm/runtime.js';
import { kernelFreeBytes } from '../../src/kernels/wasm/storage.js';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import { TINY } from './helpers.js';

test('an int8 checkpoint leaves no empty room behind: the layers fill what the head\'s stored table gave back', () => {
  const { model } = loadCheckpoint(TINY, { tokenizer: false, weights: 'int8' });
  assert.equal(model.info.architecture, 'LlamaForCausalLM');
  const table = 4096 * 256 * 2; // the bf16 embedding table read for the tied head
  assert.ok((kernelRuntime()?.top ?? 0) > 2 * table, 'the weights were read into the kernels\' memory');
  assert.ok(kernelFreeBytes() < table / 2, `free room after loading: ${kernelFreeBytes()} bytes (the table: ${table})`);
});
