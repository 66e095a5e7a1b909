// Backward pass: the reference backward against central finite differences of the brute-force forward, and the
// tiled backward (recomputing from lse) against the reference backward on random shapes with every score modifier.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { alibiSlopes, attention, attentionBackward, type AttentionOptions, type Tensor } from '../../../src/index.js';
import { assertClose, bruteAttention, randint, randn, rng, type BruteSpec } from '../../helpers.js';

/** loss = Σ dout ⊙ attention(q, k, v) by the brute-force definition. */
function loss(q: Tensor, k: Tensor, v: Tensor, dout: Float32Array, spec: BruteSpec): number {
  const { out } = bruteAttention(q, k, v, spec);
  let sum = 0;
  for (let x = 0; x < out.length; x++) sum += out[x] * dout[x];
  return sum;
}

/** Central differences of `loss` for a few random entries of each input. */
function checkFiniteDifferences(options: AttentionOptions, spec: BruteSpec, seed: number) {
  const rand = rng(seed);
  const q = randn([1, 4, 6, 5], rand);
  const k = randn([1, 2, 7, 5], rand);
  const v = randn([1, 2, 7, 3], rand);
  const dout = randn([1, 4, 6, 3], rand);
  const g = attentionBackward(q, k, v, dout, { ...options, kernel: 'reference' });
  const eps = 1e-2;
  for (const [name, t, grad] of [['q', q, g.dq], ['k', k, g.dk], ['v', v, g.dv]] as const) {
    for (let n = 0; n < 6; n++) {
      const idx = t.shape.map((d) => randint(rand, 0, d - 1));
      const x0 = t.get(...idx);
      t.set(x0 + eps, ...idx);
      const up = loss(q, k, v, dout.toFloat32(), spec);
      t.set(x0 - eps, ...idx);
      const down = loss(q, k, v, dout.toFloat32(), spec);
      t.set(x0, ...idx);
      const numeric = (up - down) / (2 * eps);
      const analytic = grad.get(...idx);
      assert.ok(Math.abs(numeric - analytic) <= 2e-3 + 1e-2 * Math.abs(numeric), `d${name}[${idx}]: analytic ${analytic}, numeric ${numeric}`);
    }
  }
}

describe('attention backward', () => {
  test('reference backward matches finite differences (plain, GQA)', () => checkFiniteDifferences({}, {}, 1));
  test('reference backward matches finite differences (causal bottom-right)', () =>
    checkFiniteDifferences({ causal: 'bottom-right' }, { keep: (_b, _h, i, j) => j <= i + 1 }, 2));
  test('reference backward matches finite differences (soft-capping + ALiBi)', () => {
    const slopes = alibiSlopes(4);
    checkFiniteDifferences({ softcap: 0.8, alibiSlopes: slopes }, {
      mod: (s, _b, h, i, j) => 0.8 * Math.tanh(s / 0.8) - slopes[h] * Math.abs(i + 1 - j),
    }, 3);
  });

  test('tiled backward equals reference backward on random shapes and masks', () => {
    for (let trial = 0; trial < 12; trial++) {
      const rand = rng(500 + trial);
      const Hkv = randint(rand, 1, 2);
      const Hq = Hkv * [1, 2, 4][trial % 3];
      const [B, L, S, D, Dv] = [randint(rand, 1, 2), randint(rand, 1, 30), randint(rand, 1, 30), randint(rand, 1, 17), randint(rand, 1, 9)];
      const q = randn([B, Hq, L, D], rand);
      const k = randn([B, Hkv, S, D], rand);
      const v = randn([B, Hkv, S, Dv], rand);
      const dout = randn([B, Hq, L, Dv], rand);
      const options: AttentionOptions = [
        {}, { causal: 'bottom-right' }, { window: [3, 1], keyLengths: Array.from({ length: B }, (_, b) => (b ? 0 : S)) },
        { softcap: 2, alibiSlopes: alibiSlopes(Hq), bias: randn([1, 1, L, S], rand) },
      ][trial % 4] as AttentionOptions;
      const ref = attentionBackward(q, k, v, dout, { ...options, kernel: 'reference' });
      const fwd = attention(q, k, v, options);
      const flash = attentionBackward(q, k, v, dout, { ...options, kernel: 'flash', out: fwd.out, lse: fwd.lse, blockM: randint(rand, 1, 8), blockN: randint(rand, 1, 8) });
      for (const n of ['dq', 'dk', 'dv'] as const) assertClose(flash[n], ref[n], 1e-5, 1e-4, `trial ${trial} ${n}`);
    }
  });

  test('scoreMod functions are refused by backward with a clear message', () => {
    const q = randn([1, 1, 2, 2], rng(1));
    assert.throws(() => attentionBackward(q, q, q, q, { scoreMod: (s) => s }), /scoreMod function cannot be differentiated/);
  });

  test('dout of the wrong shape names the expected shape', () => {
    const q = randn([1, 2, 3, 4], rng(2));
    assert.throws(() => attentionBackward(q, q, q, randn([1, 2, 3, 5], rng(3))), /dout must have the output's shape \[1, 2, 3, 4\], got \[1, 2, 3, 5\]/);
  });
});
