// Loading checkpoints: sharded files, progress, and clear errors for unsupported, missing, corrupt or mismatched files.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CausalLM } from '../../../src/models/model.js';
import { inspectCheckpoint, loadCheckpoint, streamSafetensors } from '../../../src/node/checkpoint.js';
import type { Tensor } from '../../../src/tensor/tensor.js';
import { readSafetensors, writeSafetensors } from '../../../src/node/files.js';
import { assertClose, scratchDir } from '../../helpers.js';
import { TINY } from '../../models/helpers.js';

function copyTiny(): string {
  const dir = scratchDir('qkv-ckpt-');
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(TINY, f), join(dir, f));
  return dir;
}

describe('checkpoints', () => {
  test('a sharded checkpoint (index + two files) loads to the same model', () => {
    const dir = scratchDir('qkv-shard-');
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(TINY, f), join(dir, f));
    const all = [...readSafetensors(join(TINY, 'model.safetensors')).tensors];
    const half = Math.floor(all.length / 2);
    writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), new Map(all.slice(0, half)));
    writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), new Map(all.slice(half)));
    const weightMap = Object.fromEntries(all.map(([n], i) => [n, i < half ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors']));
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const seen: number[] = [];
    const sharded = loadCheckpoint(dir, { progress: (done) => seen.push(done) });
    const single = loadCheckpoint(TINY);
    const ids = [[484, 2110, 292, 311, 507]];
    assertClose((sharded.model as CausalLM).forward(ids).logits, (single.model as CausalLM).forward(ids).logits, 0, 0, 'sharded');
    assert.equal(seen.length, all.length);
    assert.equal(seen[seen.length - 1], sharded.bytes);
    assert.equal(inspectCheckpoint(dir).parameters, 4_065_536);
  });

  test('an unsupported architecture is named, with the supported list', () => {
    const dir = copyTiny();
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, architectures: ['MambaForCausalLM'] }));
    assert.throws(() => loadCheckpoint(dir), /architecture 'MambaForCausalLM' is not supported \(supported: .*LlamaForCausalLM.*GPT2LMHeadModel|architecture 'MambaForCausalLM' is not supported \(supported: GPT2LMHeadModel.*LlamaForCausalLM/);
  });

  test('config and weights that disagree name the tensor and both shapes', () => {
    const dir = copyTiny();
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, intermediate_size: 512 }));
    assert.throws(() => loadCheckpoint(dir), /model\.safetensors: tensor 'model\.layers\.0\.mlp\.gate_proj\.weight' has shape \[768, 256\], but the config implies \[512, 256\]/);
  });

  test('missing and corrupt files are named', () => {
    assert.throws(() => loadCheckpoint('/nonexistent/qkv'), /\/nonexistent\/qkv: no such checkpoint directory/);
    const dir = copyTiny();
    writeFileSync(join(dir, 'model.safetensors'), readFileSync(join(dir, 'model.safetensors')).subarray(0, 5000));
    assert.throws(() => loadCheckpoint(dir), /model\.safetensors: tensor '.*': data_offsets .* run past the data buffer/);
    writeFileSync(join(dir, 'config.json'), '{ not json');
    assert.throws(() => loadCheckpoint(dir), /config\.json: invalid JSON/);
  });
});

test('a tensor over 2 GiB streams in (a sparse file: one read() call takes at most 2 GiB)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qkv-big-'));
  const path = join(dir, 'big.safetensors');
  try {
    const n = 2 ** 31 + 16; // bytes of the U8 tensor
    const json = new TextEncoder().encode(JSON.stringify({ small: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, big: { dtype: 'U8', shape: [n], data_offsets: [8, 8 + n] } }).padEnd(128));
    const fd = openSync(path, 'w');
    const head = new Uint8Array(8 + json.length);
    new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
    head.set(json, 8);
    writeSync(fd, head, 0, head.length, 0);
    const data = 8 + json.length; // where the data buffer starts
    writeSync(fd, new Uint8Array(new Float32Array([1.5, -2]).buffer), 0, 8, data);
    const marks: [number, number][] = [[0, 7], [2 ** 31 - 1, 11], [2 ** 31, 13], [n - 1, 17]];
    for (const [at, v] of marks) writeSync(fd, Uint8Array.of(v), 0, 1, data + 8 + at);
    ftruncateSync(fd, data + 8 + n);
    closeSync(fd);
    const tensors = new Map<string, Tensor>();
    assert.equal(streamSafetensors(path, tensors), 8 + n);
    assert.deepEqual([...tensors.get('small')!.toFloat32()], [1.5, -2]);
    const big = tensors.get('big')!;
    assert.equal(big.size, n);
    for (const [at, v] of marks) assert.equal(big.data[at], v, `byte ${at}`);
    assert.equal(big.data[2 ** 31 + 1], 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('int8 and int4 checkpoints load a tensor at a time as the model asks (never the whole file first): the same model', async () => {
  const { buildModel } = await import('../../../src/models/registry.js');
  const { Weights } = await import('../../../src/models/weights.js');
  for (const format of ['int8', 'int4'] as const) {
    const lazy = loadCheckpoint(TINY, { tokenizer: false, weights: format, progress: () => {} });
    const all = new Map<string, Tensor>();
    streamSafetensors(join(TINY, 'model.safetensors'), all);
    const eager = new Weights(all, 'eager', { format });
    const model = buildModel(lazy.config, eager) as CausalLM;
    const ids = [[3, 99, 1024, 7]];
    assert.deepEqual((lazy.model as CausalLM).forward(ids).logits.toFloat32(), model.forward(ids).logits.toFloat32(), format);
    assert.deepEqual(lazy.weights.summary(), eager.summary(), `${format}: every tensor counted`);
    // qkv-tiny's embeddings are tied: the quantized output projection serves the lookup too, the bf16 table is dropped
    assert.equal(lazy.weights.has('model.embed_tokens.weight'), false, `${format}: the stored table is not held beside its copy`);
  }
});
