// Decoding with the KV cache equals recomputing everything; left-padded batches continue each row exactly as it
// would alone; T5 generation with a cache equals generation without one.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ContiguousKVCache } from '../../src/cache/contiguous.js';
import { Int8KVCache } from '../../src/cache/int8.js';
import type { KVCache } from '../../src/cache/kv-cache.js';
import { PagedKVCache } from '../../src/cache/paged.js';
import { generateBatch, greedy, seq2seqGenerate } from '../../src/generate/generate.js';
import type { CausalLM, Seq2SeqLM } from '../../src/models/model.js';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import { assertClose } from '../helpers.js';
import { GOLDEN_MODELS, TINY } from './helpers.js';

const lastRow = (logits: { toFloat32(): Float32Array; shape: readonly number[] }) => {
  const [, T, V] = logits.shape;
  return [...logits.toFloat32().slice((T - 1) * V, T * V)];
};

describe('KV cache and batching', () => {
  for (const family of ['gpt2', 'llama', 'mistral', 'qwen2', 'gemma2']) {
    test(`${family}: token-by-token with the cache equals the full forward pass`, () => {
      const model = loadCheckpoint(join(GOLDEN_MODELS, family), { tokenizer: false }).model as CausalLM;
      const ids = Array.from({ length: 20 }, (_, t) => (t * 37 + 11) % model.info.vocabSize);
      const full = model.forward([ids]).logits;
      const cache = new ContiguousKVCache(model.info.numLayers, 4); // small capacity: exercises growth
      model.forward([ids.slice(0, 5)], { cache });
      for (let t = 5; t < 20; t++) {
        const step = model.forward([[ids[t]]], { cache }).logits;
        const V = model.info.vocabSize;
        assertClose(step, full.toFloat32().slice(t * V, (t + 1) * V), 1e-4, 1e-4, `${family} step ${t}`);
      }
      assert.ok(cache.bytes() > 0);
    });

    test(`${family}: a left-padded batch generates what each prompt generates alone`, () => {
      const model = loadCheckpoint(join(GOLDEN_MODELS, family), { tokenizer: false }).model as CausalLM;
      const prompts = [[5, 17, 99, 3, 250, 8], [42, 7], [300, 301, 302, 9]];
      const batch = generateBatch(model, prompts, { greedy: true, maxTokens: 8, stopTokens: [] });
      prompts.forEach((p, b) => assert.deepEqual(batch[b], greedy(model, [p], 8).slice(p.length).slice(0, 8), `${family} row ${b}`));
    });
  }

  test('T5: cached decoding equals re-running the decoder over the whole prefix', () => {
    const model = loadCheckpoint(join(GOLDEN_MODELS, 't5'), { tokenizer: false }).model as Seq2SeqLM;
    const input = [12, 55, 300, 2, 77, 1];
    const fast = seq2seqGenerate(model, input, { greedy: true, maxTokens: 8, stopTokens: [] });
    const { hidden } = model.encode([input]);
    const slow = [model.info.decoderStartTokenId];
    for (let n = 0; n < 8; n++) {
      const row = lastRow(model.decode([slow], hidden).logits);
      slow.push(row.indexOf(Math.max(...row)));
    }
    assert.deepEqual(fast, slow.slice(1));
  });

  test('T5 on every cache: its relative-position bias is served by paged and int8 caches too (their view gathered)', () => {
    const model = loadCheckpoint(join(GOLDEN_MODELS, 't5'), { tokenizer: false }).model as Seq2SeqLM;
    const { hidden } = model.encode([[12, 55, 300, 2, 77, 1]]);
    const decode = (cache: KVCache) => {
      const ids = [model.info.decoderStartTokenId];
      const logits: number[][] = [];
      for (let n = 0; n < 6; n++) {
        const row = lastRow(model.decode([[ids[ids.length - 1]]], hidden, { cache, lastOnly: true }).logits);
        logits.push(row);
        ids.push(row.indexOf(Math.max(...row)));
      }
      return { ids, logits };
    };
    const want = decode(new ContiguousKVCache(model.info.numLayers));
    const paged = decode(new PagedKVCache(model.info.numLayers, { blockSize: 4 }));
    assert.deepEqual(paged.ids, want.ids);
    paged.logits.forEach((row, n) => assertClose(row, want.logits[n], 1e-5, 1e-4, `paged step ${n}`));
    assert.equal(decode(new Int8KVCache(model.info.numLayers)).ids.length, want.ids.length); // approximate: it runs
    // an f16 cache, read in place by the SIMD decode job (q times 2^112, the keys widened without it): the bias is added
    // to the true scores — the same tokens, logits within f16's rounding of k and v
    const f16 = decode(new ContiguousKVCache(model.info.numLayers, 64, null, 'float16'));
    assert.deepEqual(f16.ids, want.ids);
    f16.logits.forEach((row, n) => assertClose(row, want.logits[n], 2e-3, 2e-2, `f16 step ${n}`));
  });
});

test('qkv-tiny: batch of real prompts with left padding', () => {
  const ckpt = loadCheckpoint(TINY);
  const model = ckpt.model as CausalLM;
  const prompts = ['The Zen of Python', 'A fool and his money', 'def'].map((p) => ckpt.tokenizer!.encode(p));
  const batch = generateBatch(model, prompts, { greedy: true, maxTokens: 10 });
  prompts.forEach((p, b) => {
    const alone = greedy(model, [p], 10).slice(p.length);
    const cut = alone.indexOf(0);
    assert.deepEqual(batch[b], cut >= 0 ? alone.slice(0, cut) : alone);
  });
});
