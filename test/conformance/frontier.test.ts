// The recent families (test/golden-frontier, copied from ../shared/golden-frontier): logits, every layer's attention
// probabilities and 12 greedy tokens against transformers, through the conformance runner; then the greedy tokens
// again with the paged KV cache (blocks of 4, so every prompt spans several blocks).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PagedKVCache } from '../../src/cache/paged.js';
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

  test('the greedy tokens are the same with the paged KV cache', () => {
    for (const c of index.cases) {
      const { model } = loadCheckpoint(join(FRONTIER, String(c.params.model_dir)), { tokenizer: false });
      const lm = model as CausalLM;
      const plain = greedy(lm, [[5, 17, 300, 42, 7, 99, 100, 12, 400, 3]], 8);
      const paged = greedy(lm, [[5, 17, 300, 42, 7, 99, 100, 12, 400, 3]], 8, new PagedKVCache(lm.info.numLayers, { blockSize: 4 }));
      assert.deepEqual(paged, plain, String(c.params.architecture));
    }
  });
});
