// Attention across worker threads equals attention on one thread, for MHA, GQA and batches; bad options are refused.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { attention } from '../../../src/index.js';
import { AttentionPool } from '../../../src/node/threads.js';
import { assertClose, randn, rng } from '../../helpers.js';

const pool = new AttentionPool(2);
after(() => pool.close());

test('2 workers give exactly the single-thread result (MHA, GQA, B = 2, causal, window, odd head_dim)', async () => {
  const rand = rng(1);
  for (const [B, Hq, Hkv, L, S, D, opts] of [
    [1, 8, 8, 70, 70, 16, { causal: true }], [2, 8, 2, 33, 50, 12, { causal: 'bottom-right' }], [2, 3, 1, 9, 9, 7, { window: [3, 0] }],
  ] as const) {
    const q = randn([B, Hq, L, D], rand);
    const k = randn([B, Hkv, S, D], rand);
    const v = randn([B, Hkv, S, D], rand);
    const one = attention(q, k, v, opts as object);
    const two = await pool.attention(q, k, v, opts as object);
    assertClose(two.out, one.out, 0, 0, `B=${B} Hq=${Hq} Hkv=${Hkv} out`);
    assertClose(two.lse, one.lse, 0, 0, 'lse');
  }
});

test('options that cannot cross to a worker are refused with the reason', async () => {
  const q = randn([1, 1, 2, 4], rng(2));
  await assert.rejects(pool.attention(q, q, q, { maskMod: () => true } as object), /option 'maskMod' cannot cross to a worker/);
});
