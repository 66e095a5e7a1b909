// Transformer blocks: the decoder is causal and ignores padded memory; pre/post-norm encoders compose as written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  add, layerNorm, LayerNorm, MLP, MultiheadAttention, RMSNorm, rmsNorm, silu, SwiGLU, Tensor, TransformerDecoderLayer,
  TransformerEncoderLayer, linear,
} from '../../../src/index.js';
import { assertClose, randn, rng } from '../../helpers.js';

const E = 8;
const rand = rng(11);
const w = (r: number, c: number) => randn(c === 1 ? [r] : [r, c], rand, 0.4);
const mha = () => new MultiheadAttention({ embedDim: E, numHeads: 2, batchFirst: true },
  { wq: w(E, E), wk: w(E, E), wv: w(E, E), bq: w(E, 1), bk: w(E, 1), bv: w(E, 1), wo: w(E, E), bo: w(E, 1) });
const ln = () => new LayerNorm(w(E, 1), w(E, 1));

test('decoder layer: position t does not see tokens after t; padded memory is ignored', () => {
  const dec = new TransformerDecoderLayer(mha(), mha(), new SwiGLU(w(16, E), w(16, E), w(E, 16)), ln(), ln(), ln(), true);
  const tgt = randn([1, 5, E], rand);
  const memory = randn([1, 6, E], rand);
  const pad = Tensor.from([0, 0, 0, 0, 1, 1], [1, 6], 'bool');
  const y = dec.forward(tgt, memory, { memoryKeyPaddingMask: pad });
  // change the last target token and the padded memory: earlier outputs must not move
  const tgt2 = tgt.contiguous().to('float32');
  for (let d = 0; d < E; d++) tgt2.set(5, 0, 4, d);
  const mem2 = memory.contiguous().to('float32');
  for (let d = 0; d < E; d++) { mem2.set(-7, 0, 4, d); mem2.set(9, 0, 5, d); }
  const y2 = dec.forward(tgt2, mem2, { memoryKeyPaddingMask: pad });
  assertClose(y2.slice(1, 0, 4).contiguous(), y.slice(1, 0, 4).contiguous(), 1e-6, 1e-5, 'causal + padding');
  assert.notEqual(y2.get(0, 4, 0), y.get(0, 4, 0));
});

test('post-norm encoder layer = norm2(h + FFN(h)), h = norm1(x + SelfAttn(x))', () => {
  const attn = mha();
  const ffn = new MLP(w(16, E), w(16, 1), w(E, 16), w(E, 1), 'relu');
  const [n1, n2] = [ln(), ln()];
  const layer = new TransformerEncoderLayer(attn, ffn, n1, n2, false);
  const x = randn([2, 4, E], rand);
  const h = n1.forward(add(x, attn.forward(x, x, x).out));
  assertClose(layer.forward(x), n2.forward(add(h, ffn.forward(h))), 1e-6, 1e-5, 'composition');
});

test('SwiGLU = down(SiLU(gate x) ⊙ up x); RMSNorm with Gemma offset scales by (1 + γ)', () => {
  const [g, u, d] = [w(6, E), w(6, E), w(E, 6)];
  const x = randn([3, E], rand);
  const h = silu(linear(x, g)).toFloat32().map((a, i) => a * linear(x, u).toFloat32()[i]);
  assertClose(new SwiGLU(g, u, d).forward(x), linear(Tensor.from(h, [3, 6]), d), 1e-6, 1e-5, 'swiglu');
  const gamma = w(E, 1);
  const plusOne = Tensor.from(gamma.toFloat32().map((a) => a + 1), [E]);
  assertClose(new RMSNorm(gamma, 1e-6, 1).forward(x), rmsNorm(x, plusOne), 1e-6, 1e-6, 'gemma rmsnorm');
  assert.throws(() => layerNorm(x, Tensor.zeros([3])), /weight must be \[8\] for input \[3, 8\], got \[3\]/);
});
