// `qkv info`'s attention features, read from config.json alone, for the recent families (test/golden-frontier) and a
// KV-bytes figure that counts MLA's latent instead of heads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { attentionFeatures, kvFloatsPerToken } from '../../src/models/features.js';
import { ROOT_DIR } from '../helpers.js';

const config = (name: string) => JSON.parse(readFileSync(join(ROOT_DIR, 'test', 'golden-frontier', 'models', name, 'config.json'), 'utf8'));

test('each recent family names what its attention adds', () => {
  const want: Record<string, RegExp[]> = {
    qwen3: [/grouped-query: 8 query heads share 2 kv heads \(4 : 1\)/, /qk-norm: RMSNorm over each head/],
    gemma3: [/qk-norm/, /sliding window 8 on 2 of 3 layers/, /sliding layers: RoPE, base 10000; full layers: RoPE \(linear ×8\), base 1000000/],
    gpt_oss: [/learned attention sinks/, /sliding window 8 on 1 of 2 layers/, /RoPE \(yarn ×32\)/],
    deepseek_v3: [/multi-head latent attention: latent rank 16, RoPE key 8 dims shared by 4 heads, q rank 32/],
    smollm3: [/NoPE: 1 of 4 layers apply no RoPE/],
    phi3: [/RoPE \(longrope\)/],
    gpt_neox: [/multi-head \(4 heads\)/, /partial rotary: RoPE on 25% of each head's dims/],
    olmo2: [/qk-norm: RMSNorm over the whole q and k projections/],
  };
  for (const [name, patterns] of Object.entries(want)) {
    const features = attentionFeatures(config(name)).join('\n');
    for (const p of patterns) assert.match(features, p, `${name}:\n${features}`);
  }
});

test('KV floats per token: 2 · kv heads · head_dim per layer, or MLA latent + RoPE key', () => {
  assert.equal(kvFloatsPerToken(config('qwen3')), 2 * 2 * (16 + 16)); // 2 layers, 2 kv heads, head_dim 16
  assert.equal(kvFloatsPerToken(config('deepseek_v3')), 2 * (16 + 8)); // 2 layers × (kv_lora_rank + qk_rope_head_dim)
});
