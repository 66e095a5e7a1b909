// Learned attention sinks (gpt-oss) against the definition — the sink logit joins every row's softmax and its
// probability is dropped — on every CPU kernel, the paged kernel and (where an adapter exists) WebGPU; weights,
// statistics and the backward pass (dq, dk, dv and dsinks against finite differences).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { attention, attentionBackward, pagedAttention, Tensor } from '../../../src/index.js';
import { assertClose, bruteAttention, randint, randn, rng } from '../../helpers.js';

describe('learned attention sinks', () => {
  test('every kernel gives the definition: out, lse, weights; causal, GQA, L ≠ S, a fully masked row', () => {
    for (let trial = 0; trial < 8; trial++) {
      const rand = rng(700 + trial);
      const Hkv = randint(rand, 1, 2), Hq = Hkv * randint(rand, 1, 3), L = randint(rand, 1, 12), S = L + randint(rand, 0, 20);
      const [D, Dv] = [4 * randint(rand, 1, 6), 4 * randint(rand, 1, 4)];
      const q = randn([2, Hq, L, D], rand), k = randn([2, Hkv, S, D], rand), v = randn([2, Hkv, S, Dv], rand);
      const sinks = Array.from({ length: Hq }, () => 3 * (rand() - 0.5));
      const keyLengths = [S, trial % 2 ? 0 : S]; // row 1 of odd trials sees no key: all its mass goes to the sink
      const want = bruteAttention(q, k, v, { sinks, keep: (b, _h, i, j) => j <= i + S - L && j < keyLengths[b] });
      for (const kernel of ['reference', 'flash', 'flash-wasm', 'decode'] as const) {
        const r = attention(q, k, v, { causal: 'bottom-right', keyLengths, sinks, kernel, returnWeights: kernel !== 'flash-wasm' && kernel !== 'decode' });
        assertClose(r.out, want.out, 2e-5, 2e-4, `trial ${trial} ${kernel} out`);
        assertClose(r.lse, want.lse, 2e-5, 2e-4, `trial ${trial} ${kernel} lse`);
        if (r.weights) assertClose(r.weights, want.weights, 2e-6, 2e-4, `trial ${trial} ${kernel} weights`);
      }
    }
  });

  test('statistics count the sink: entropy over keys and sink, mean distance over the keys', () => {
    const rand = rng(77);
    const q = randn([1, 2, 5, 8], rand), k = randn([1, 2, 9, 8], rand), v = randn([1, 2, 9, 8], rand);
    const sinks = [0.5, -1];
    const r = attention(q, k, v, { sinks, returnStats: true, returnWeights: true });
    const w = r.weights!.toFloat32();
    for (let row = 0; row < 10; row++) {
      const p = Array.from(w.subarray(row * 9, row * 9 + 9));
      const ps = 1 - p.reduce((a, b) => a + b, 0);
      const H = -p.reduce((a, x) => a + (x > 0 ? x * Math.log(x) : 0), 0) - ps * Math.log(ps);
      const dist = p.reduce((a, x, j) => a + x * Math.abs((row % 5) + 4 - j), 0);
      assert.ok(Math.abs(r.stats!.entropy.toFloat32()[row] - H) < 1e-5, `row ${row} entropy`);
      assert.ok(Math.abs(r.stats!.meanDistance.toFloat32()[row] - dist) < 1e-4, `row ${row} mean distance`);
    }
  });

  test('paged attention takes sinks too', () => {
    const rand = rng(5);
    const [Hq, Hkv, D, blockSize, S] = [4, 2, 8, 4, 10];
    const k = randn([1, Hkv, S, D], rand), v = randn([1, Hkv, S, D], rand), q = randn([1, Hq, 2, D], rand);
    const pool = { blockSize, Hkv, D, Dv: D, k: new Float32Array(3 * Hkv * blockSize * D), v: new Float32Array(3 * Hkv * blockSize * D) };
    const table = [2, 0, 1];
    for (let j = 0; j < S; j++) for (let h = 0; h < Hkv; h++) for (let d = 0; d < D; d++) {
      const slot = ((table[Math.floor(j / blockSize)] * Hkv + h) * blockSize + (j % blockSize)) * D + d;
      pool.k[slot] = k.get(0, h, j, d);
      pool.v[slot] = v.get(0, h, j, d);
    }
    const sinks = Float32Array.from([1, -2, 0.25, 3]);
    const r = pagedAttention({ q: q.toFloat32(), B: 1, Hq, T: 2, scale: 0.3, softcap: 0, causal: true, window: null, blockTables: [table], seqLens: [S], pool, sinks });
    const want = bruteAttention(q, k, v, { scale: 0.3, sinks, keep: (_b, _h, i, j) => j <= i + S - 2 });
    assertClose(r.out, want.out, 2e-5, 2e-4, 'paged out');
    assertClose(r.lse, want.lse, 2e-5, 2e-4, 'paged lse');
  });

  test('backward: dq, dk, dv and dsinks match finite differences of Σ dout · out', () => {
    const rand = rng(9);
    const q = randn([1, 2, 3, 4], rand), k = randn([1, 1, 5, 4], rand), v = randn([1, 1, 5, 4], rand), dout = randn([1, 2, 3, 4], rand);
    const sinks = [0.7, -0.3];
    const loss = (qq: Tensor, kk: Tensor, vv: Tensor, ss: number[]) => {
      const o = attention(qq, kk, vv, { causal: 'bottom-right', sinks: ss, kernel: 'reference' }).out.toFloat32();
      return o.reduce((a, x, n) => a + x * dout.toFloat32()[n], 0);
    };
    for (const kernel of ['reference', 'flash'] as const) {
      const g = attentionBackward(q, k, v, dout, { causal: 'bottom-right', sinks, kernel });
      const h = 1e-3;
      const numeric = (t: Tensor, which: number) => Float32Array.from(t.toFloat32(), (_, n) => {
        const bump = (e: number) => { const x = Float32Array.from(t.toFloat32()); x[n] += e; return Tensor.from(x, t.shape); };
        const args = (e: number): [Tensor, Tensor, Tensor] => [which === 0 ? bump(e) : q, which === 1 ? bump(e) : k, which === 2 ? bump(e) : v];
        return (loss(...args(h), sinks) - loss(...args(-h), sinks)) / (2 * h);
      });
      assertClose(g.dq, numeric(q, 0), 2e-3, 2e-2, `${kernel} dq`);
      assertClose(g.dk, numeric(k, 1), 2e-3, 2e-2, `${kernel} dk`);
      assertClose(g.dv, numeric(v, 2), 2e-3, 2e-2, `${kernel} dv`);
      const ds = sinks.map((_, n) => {
        const at = (e: number) => sinks.map((x, m) => (m === n ? x + e : x));
        return (loss(q, k, v, at(h)) - loss(q, k, v, at(-h))) / (2 * h);
      });
      assertClose(g.dsinks!, ds, 2e-3, 2e-2, `${kernel} dsinks`);
    }
  });

  test('a sink per query head, finite: clear errors', () => {
    const q = randn([1, 2, 3, 4], rng(1));
    assert.throws(() => attention(q, q, q, { sinks: [1] }), /sinks must have one logit per query head \(2\), got 1/);
    assert.throws(() => attention(q, q, q, { sinks: [1, NaN] }), /sinks\[1\] must be a finite number, got NaN/);
  });
});
