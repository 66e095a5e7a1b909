// Properties the golden data does not cover: recurrent linear attention, permutation equivariance, GAT on isolated
// nodes, MHA → GQA conversion, Performer convergence, score-function padding, norms and activations.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  add, attention, drawOmega, GATConv, GATv2Conv, gelu, layerNorm, linearAttention, LinearAttentionState, luongAttention,
  MultiheadAttention, performerAttention, randomEncoderLayer, rmsNorm, sinusoidalEncoding, Tensor, additiveAttention,
} from '../../../src/index.js';
import { assertClose, randn, rng } from '../../helpers.js';

describe('linear attention', () => {
  test('causal linear attention equals its recurrent step form', () => {
    const rand = rng(1);
    const [q, k, v] = [randn([1, 1, 12, 6], rand), randn([1, 1, 12, 6], rand), randn([1, 1, 12, 5], rand)];
    const parallel = linearAttention(q, k, v, { causal: true }).toFloat32();
    const st = new LinearAttentionState(6, 5);
    const [qa, ka, va] = [q.toFloat32(), k.toFloat32(), v.toFloat32()];
    for (let t = 0; t < 12; t++) {
      const step = st.step(qa.slice(t * 6, t * 6 + 6), ka.slice(t * 6, t * 6 + 6), va.slice(t * 5, t * 5 + 5));
      assertClose(step, parallel.subarray(t * 5, t * 5 + 5), 1e-6, 1e-5, `step ${t}`);
    }
  });

  test('the last causal row equals non-causal attention over the whole sequence', () => {
    const rand = rng(2);
    const [q, k, v] = [randn([2, 2, 9, 4], rand), randn([2, 2, 9, 4], rand), randn([2, 2, 9, 3], rand)];
    const causal = linearAttention(q, k, v, { causal: true });
    const full = linearAttention(q.slice(2, 8, 9), k, v);
    assertClose(causal.slice(2, 8, 9).contiguous(), full, 1e-6, 1e-5, 'last row');
  });
});

describe('Performer', () => {
  test('the approximation error shrinks as the number of features grows', () => {
    const rand = rng(3);
    const [q, k, v] = [randn([1, 2, 32, 8], rand, 0.5), randn([1, 2, 32, 8], rand, 0.5), randn([1, 2, 32, 8], rand)];
    const exact = attention(q, k, v).out.toFloat32();
    const err = (m: number) => {
      let e = 0;
      for (let seed = 0; seed < 4; seed++) {
        const approx = performerAttention(q, k, v, { features: m, seed }).toFloat32();
        for (let x = 0; x < exact.length; x++) e += (approx[x] - exact[x]) ** 2;
      }
      return Math.sqrt(e / 4 / exact.length);
    };
    const [e16, e1024] = [err(16), err(1024)];
    assert.ok(e1024 < e16 / 3, `rmse with 16 features ${e16}, with 1024 ${e1024}`);
  });

  test('orthogonal features: each block of d rows is mutually orthogonal', () => {
    const w = drawOmega(16, 8, 7).toFloat32();
    for (let a = 0; a < 8; a++) for (let b = a + 1; b < 8; b++) {
      let dot = 0;
      for (let c = 0; c < 8; c++) dot += w[a * 8 + c] * w[b * 8 + c];
      assert.ok(Math.abs(dot) < 1e-4, `rows ${a}, ${b}: ${dot}`);
    }
    for (const [m, d] of [[2, 2 ** 31], [2 ** 20, 64], [4, 4097]]) {
      assert.throws(() => drawOmega(m, d, 1), /drawOmega: m · d must be ≤ 2\^24 and d ≤ 4096/);
    }
  });
});

describe('permutation equivariance', () => {
  test('without positions, shuffling tokens shuffles the encoder output; with positions it does not', () => {
    const rand = rng(4);
    const layer = randomEncoderLayer(16, 4, 32, 1);
    const x = randn([1, 6, 16], rand);
    const perm = [3, 0, 5, 1, 4, 2];
    const shuffle = (t: Tensor) => Tensor.from(perm.flatMap((p) => [...t.toFloat32().subarray(p * 16, (p + 1) * 16)]), [1, 6, 16]);
    const y = layer.forward(x);
    assertClose(layer.forward(shuffle(x)), shuffle(y), 1e-5, 1e-4, 'equivariant');
    const pe = sinusoidalEncoding(6, 16).reshape([1, 6, 16]);
    const yPos = layer.forward(add(x, pe));
    const yShufPos = layer.forward(add(shuffle(x), pe));
    const diff = Math.max(...yShufPos.toFloat32().map((a, i) => Math.abs(a - shuffle(yPos).toFloat32()[i])));
    assert.ok(diff > 1e-2, `with positions the outputs should differ, max diff ${diff}`);
  });
});

describe('graph attention', () => {
  const rand = rng(5);
  const x = randn([5, 3], rand);
  const edges = Tensor.from([0, 1, 1, 0], [2, 2], 'int64'); // 0 → 1, 1 → 0; nodes 2, 3, 4 isolated
  const gat = new GATConv({ heads: 2, outChannels: 2, addSelfLoops: false }, randn([4, 3], rand), randn([1, 2, 2], rand), randn([1, 2, 2], rand), Tensor.from([1, 2, 3, 4], [4]));

  test('GAT: an isolated node without self loops gets only the bias', () => {
    const r = gat.forward(x, edges);
    for (const n of [2, 3, 4]) assert.deepEqual([0, 1, 2, 3].map((c) => r.out.get(n, c)), [1, 2, 3, 4]);
    assert.deepEqual(r.alpha.toArray(), [1, 1, 1, 1]); // one incoming edge each: α = 1
  });

  test('GAT: with self loops an isolated node attends only to itself (α = 1, out = W x + bias)', () => {
    const loops = new GATConv({ ...gat.o, addSelfLoops: true }, gat.lin, gat.attSrc, gat.attDst, gat.bias);
    const r = loops.forward(x, edges);
    assert.equal(r.alpha.shape[0], 2 + 5);
    const wx = x.slice(0, 3, 4).toFloat32();
    const W = gat.lin.toFloat32();
    for (let c = 0; c < 4; c++) {
      const want = W[c * 3] * wx[0] + W[c * 3 + 1] * wx[1] + W[c * 3 + 2] * wx[2] + (c + 1);
      assert.ok(Math.abs(r.out.get(3, c) - want) < 1e-5);
    }
  });

  test('GATv2: softmax over incoming edges sums to 1 per node and head; bad edges are refused', () => {
    const v2 = new GATv2Conv({ heads: 2, outChannels: 2, concat: false }, randn([4, 3], rand), null, randn([4, 3], rand), null, randn([1, 2, 2], rand), null);
    const e = Tensor.from([0, 2, 3, 1, 1, 1, 1, 0], [2, 4], 'int64');
    const r = v2.forward(x, e);
    assert.deepEqual(r.out.shape, [5, 2]);
    const dst = r.edgeIndex.toArray().slice(r.alpha.shape[0]);
    for (let n = 0; n < 5; n++) for (let h = 0; h < 2; h++) {
      let s = 0;
      dst.forEach((d, x2) => { if (d === n) s += r.alpha.get(x2, h); });
      assert.ok(Math.abs(s - 1) < 1e-6, `node ${n} head ${h}: ${s}`);
    }
    assert.throws(() => v2.forward(x, Tensor.from([0, 9], [2, 1], 'int64')), /edge 0 \(0 → 9\) names a node outside 0..4/);
  });
});

describe('MultiheadAttention → GQA', () => {
  const rand = rng(6);
  const E = 16;
  const w = (r: number, c: number) => randn(c === 1 ? [r] : [r, c], rand, 0.3);
  const mha = new MultiheadAttention({ embedDim: E, numHeads: 4, batchFirst: true },
    { wq: w(E, E), wk: w(E, E), wv: w(E, E), bq: w(E, 1), bk: w(E, 1), bv: w(E, 1), wo: w(E, E), bo: w(E, 1) });
  const x = randn([2, 5, E], rand);

  test('pooling to the same number of heads changes nothing; to fewer heads shrinks the KV cache', () => {
    assertClose(mha.toGqa(4).forward(x, x, x).out, mha.forward(x, x, x).out, 0, 0, 'identity');
    const mqa = mha.toGqa(1);
    assert.equal(mqa.kvCacheBytesPerToken(), mha.kvCacheBytesPerToken() / 4);
    assert.deepEqual(mqa.forward(x, x, x).out.shape, [2, 5, E]);
    assert.throws(() => mha.toGqa(3), /numKvHeads must divide the current 4 kv heads, got 3/);
  });

  test('heads that were already equal within each group pool exactly', () => {
    const wk = mha.w.wk.toFloat32().slice();
    const wv = mha.w.wv.toFloat32().slice();
    wk.copyWithin(4 * E, 0, 4 * E); // head 1 := head 0
    wv.copyWithin(4 * E, 0, 4 * E);
    wk.copyWithin(12 * E, 8 * E, 12 * E); // head 3 := head 2
    wv.copyWithin(12 * E, 8 * E, 12 * E);
    const bk = mha.w.bk!.toFloat32().slice();
    const bv = mha.w.bv!.toFloat32().slice();
    bk.copyWithin(4, 0, 4); bk.copyWithin(12, 8, 12); bv.copyWithin(4, 0, 4); bv.copyWithin(12, 8, 12);
    const twin = new MultiheadAttention(mha.config, { ...mha.w, wk: Tensor.from(wk, [E, E]), wv: Tensor.from(wv, [E, E]), bk: Tensor.from(bk, [E]), bv: Tensor.from(bv, [E]) });
    assertClose(twin.toGqa(2).forward(x, x, x).out, twin.forward(x, x, x).out, 1e-6, 1e-5, 'exact pooling');
  });

  test('torch masks: True blocks; sequence-first layout by default', () => {
    const seqFirst = new MultiheadAttention({ ...mha.config, batchFirst: false }, mha.w);
    const xs = x.transpose(0, 1).contiguous();
    assertClose(seqFirst.forward(xs, xs, xs).out.transpose(0, 1).contiguous(), mha.forward(x, x, x).out, 1e-6, 1e-5, 'layout');
    const causal = Tensor.from(Array.from({ length: 25 }, (_, n) => (n % 5 > Math.floor(n / 5) ? 1 : 0)), [5, 5], 'bool');
    const a = mha.forward(x, x, x, { attnMask: causal, averageAttnWeights: false });
    const b = mha.forward(x, x, x, { isCausal: true, averageAttnWeights: false });
    assertClose(a.out, b.out, 0, 0, 'attn_mask = is_causal');
    assert.equal(a.weights!.get(0, 0, 1, 2), 0);
    assert.throws(() => mha.forward(x, x, x, { keyPaddingMask: Tensor.zeros([2, 4], 'bool') }), /key_padding_mask must be \[B=2, S=5\], got \[2, 4\]/);
  });
});

describe('score functions, norms, activations', () => {
  test('key padding masks the score-function attentions', () => {
    const rand = rng(7);
    const [q, k, v] = [randn([2, 3, 4], rand), randn([2, 5, 4], rand), randn([2, 5, 2], rand)];
    const r = luongAttention(q, k, v, 'dot', undefined, { keyLengths: [5, 2] });
    for (let i = 0; i < 3; i++) for (let j = 2; j < 5; j++) assert.equal(r.weights.get(1, i, j), 0);
    const trimmed = luongAttention(q.slice(0, 1, 2), k.slice(0, 1, 2).slice(1, 0, 2), v.slice(0, 1, 2).slice(1, 0, 2), 'dot');
    assertClose(r.out.slice(0, 1, 2).contiguous(), trimmed.out, 1e-6, 1e-5, 'padded = trimmed');
    assert.throws(() => additiveAttention(q, k, v, randn([6, 4], rand), randn([5, 4], rand), randn([6], rand)), /must share h/);
  });

  test('LayerNorm gives zero mean and unit variance; RMSNorm unit RMS', () => {
    const x = randn([3, 10], rng(8), 5);
    const y = layerNorm(x).toFloat32();
    const z = rmsNorm(x, null, 0).toFloat32();
    for (let r = 0; r < 3; r++) {
      const row = y.subarray(r * 10, r * 10 + 10);
      const mean = row.reduce((a, b) => a + b) / 10;
      const varr = row.reduce((a, b) => a + (b - mean) ** 2, 0) / 10;
      assert.ok(Math.abs(mean) < 1e-6 && Math.abs(varr - 1) < 1e-3, `row ${r}: mean ${mean}, var ${varr}`);
      const rms = Math.sqrt(z.subarray(r * 10, r * 10 + 10).reduce((a, b) => a + b * b, 0) / 10);
      assert.ok(Math.abs(rms - 1) < 1e-5);
    }
  });

  test('GELU exact and tanh at known points', () => {
    const x = Tensor.from([-3, -1, 0, 1, 3], [5]);
    assertClose(gelu(x), [-0.00404951, -0.15865525, 0, 0.84134475, 2.99595049], 1e-6, 1e-6, 'exact');
    assertClose(gelu(x, 'tanh'), [-0.00363752, -0.15880801, 0, 0.84119199, 2.99636248], 1e-6, 1e-6, 'tanh');
  });
});
