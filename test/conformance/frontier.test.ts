// The recent families (test/golden-frontier, copied from ../shared/golden-frontier): logits, every layer's attention
// probabilities and 12 greedy tokens against transformers, through the conformance runner; then the greedy tokens
// with every other KV cache (paged in blocks of 4, so every prompt spans several blocks; sliding; sinks; int8).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createCache } from '../../src/cache/index.js';
import { greedy } from '../../src/generate/generate.js';
import type { CausalLM } from '../../src/models/model.js';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import { readIndex, runConformance, summary } from '../../src/node/conformance.js';
import { ROOT_DIR } from '../helpers.js';

const FRONTIER = process.env.QKV_GOLDEN_FRONTIER ?? join(ROOT_DIR, 'test', 'golden-frontier');

describe('recent families against transformers (golden-frontier)', () => {
  const index = readIndex(FRONTIER);
  const arch = (file: string) => String(index.cases.find((c) => c.file === file)?.params.architecture);

  test('every case passes with the default kernels: logits, attentions, greedy tokens', (t) => {
    const results = runConformance(FRONTIER, 'auto');
    assert.equal(results.length, index.cases.length);
    for (const r of results) assert.equal(r.status, 'pass', `${r.file} (${arch(r.file)}): ${r.detail}`);
    t.diagnostic(summary(results));
  });

  test('every KV cache serves every family: paged, sliding and sinks give the same greedy tokens (nothing evicted); int8 runs', () => {
    const prompt = [[5, 17, 300, 42, 7, 99, 100, 12, 400, 3]];
    for (const c of index.cases) {
      const { model } = loadCheckpoint(join(FRONTIER, String(c.params.model_dir)), { tokenizer: false });
      const lm = model as CausalLM;
      const plain = greedy(lm, prompt, 8);
      for (const kind of ['paged', 'sliding', 'sinks'] as const) {
        const cache = createCache(kind, lm.info.numLayers, { blockSize: 4, window: 64, sinks: 4 });
        assert.deepEqual(greedy(lm, prompt, 8, cache), plain, `${String(c.params.architecture)} with the ${kind} cache`);
      }
      assert.equal(greedy(lm, prompt, 8, createCache('int8', lm.info.numLayers)).length, plain.length); // approximate: tokens may differ
    }
  });
});
