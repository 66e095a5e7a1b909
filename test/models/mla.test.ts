// Multi-head latent attention (DeepSeek-V3, test/golden-frontier): the plain way (k, v expanded per head) and the
// absorbed way (attention over one shared latent + RoPE key) give the same logits and tokens, and the absorbed KV
// cache holds only the latent and the RoPE key — asserted by its size. The calculator shows MLA beside MHA.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ContiguousKVCache, KV_PRESETS, kvTable } from '../../src/index.js';
import { greedy } from '../../src/generate/generate.js';
import type { DeepseekV3 } from '../../src/models/deepseek-v3.js';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import { assertClose, ROOT_DIR } from '../helpers.js';

const DIR = join(ROOT_DIR, 'test', 'golden-frontier', 'models', 'deepseek_v3');

test('MLA plain and absorbed: the same logits (left padding included) and the same greedy tokens', () => {
  const model = loadCheckpoint(DIR, { tokenizer: false }).model as DeepseekV3;
  const ids = [[5, 17, 300, 42, 7, 99, 100, 12], [0, 0, 3, 4, 5, 6, 7, 8]];
  const attentionMask = [[1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1, 1]];
  const run = (mode: 'plain' | 'absorbed') => {
    model.mla = mode;
    return { logits: model.forward(ids, { attentionMask, outputAttentions: true }), tokens: greedy(model, [ids[0]], 10) };
  };
  const [plain, absorbed] = [run('plain'), run('absorbed')];
  assertClose(absorbed.logits.logits, plain.logits.logits, 1e-5, 1e-4, 'logits');
  absorbed.logits.attentions!.forEach((a, l) => assertClose(a, plain.logits.attentions![l], 1e-6, 1e-4, `attentions.${l}`));
  assert.deepEqual(absorbed.tokens, plain.tokens);
});

test('the absorbed cache holds only the latent and the RoPE key: layers × (kv_lora_rank + qk_rope_head_dim) floats per token', () => {
  const model = loadCheckpoint(DIR, { tokenizer: false }).model as DeepseekV3;
  const [layers, kvRank, rope, H, qk, dv] = [2, 16, 8, 4, 24, 16]; // config.json
  const bytes = (mode: 'plain' | 'absorbed') => {
    model.mla = mode;
    const cache = new ContiguousKVCache(layers, 64); // 64 slots reserved per layer at the first token
    model.forward([[1, 2, 3, 4, 5]], { cache });
    assert.equal(cache.length(0), 5);
    return cache.bytes();
  };
  assert.equal(bytes('absorbed'), layers * 64 * (kvRank + rope) * 4);
  assert.equal(bytes('plain'), layers * 64 * H * (qk + dv) * 4);
});

test("qkv kv: DeepSeek-V3's MLA bytes per token beside the same model as MHA (70 KB against 5.0 MB in bf16)", () => {
  const rows = kvTable(KV_PRESETS['deepseek-v3'], { context: 1, batch: 1, dtype: 'bf16' });
  const mla = rows.find((r) => r.layout.startsWith('MLA'))!;
  const mha = rows.find((r) => r.layout.startsWith('MHA'))!;
  assert.equal(mla.bytes, (512 + 64) * 61 * 2); // 70,272 bytes
  assert.equal(mha.bytes, 128 * (192 + 128) * 61 * 2); // 4,997,120 bytes
});
