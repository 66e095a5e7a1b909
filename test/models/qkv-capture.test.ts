// The q, k and v a forward returns on request (outputQkv, for the lab's step-by-step view) are the ones attention
// used: softmax(scale · q kᵀ) under the causal mask, computed here by brute force from them, equals the attention
// weights the same forward returns — on qkv-tiny (RoPE, GQA) and Qwen3 (qk-norm), every layer and head.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { applyRope, embedding, linear, rmsNorm, ropeInvFreq } from '../../src/index.js';
import type { CausalLM } from '../../src/models/model.js';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import { assertClose, ROOT_DIR } from '../helpers.js';
import { TINY } from './helpers.js';

for (const [name, dir] of [['qkv-tiny', TINY], ['qwen3', join(ROOT_DIR, 'test', 'golden-frontier', 'models', 'qwen3')]] as const) {
  test(`${name}: softmax(scale · q kᵀ) from the returned q, k equals the returned attention weights`, () => {
    const model = loadCheckpoint(dir, { tokenizer: false }).model as CausalLM;
    const ids = [[5, 17, 300, 42, 7, 99]];
    const { attentions, qkv } = model.forward(ids, { outputAttentions: true, outputQkv: true });
    assert.equal(qkv!.length, model.info.numLayers);
    const T = ids[0].length;
    qkv!.forEach(({ q, k, scale }, l) => {
      const [, Hq, , D] = q.shape;
      const Hkv = k.shape[1];
      const [qa, ka, w] = [q.toFloat32(), k.toFloat32(), attentions![l].toFloat32()];
      for (let h = 0; h < Hq; h++) {
        const kvh = Math.floor(h / (Hq / Hkv));
        for (let i = 0; i < T; i++) {
          // s_j = scale · q_i · k_j for j ≤ i;  p = softmax(s)
          const s = Array.from({ length: i + 1 }, (_, j) => {
            let dot = 0;
            for (let d = 0; d < D; d++) dot += qa[((h * T) + i) * D + d] * ka[((kvh * T) + j) * D + d];
            return scale * dot;
          });
          const m = Math.max(...s);
          const e = s.map((x) => Math.exp(x - m));
          const z = e.reduce((a, b) => a + b, 0);
          for (let j = 0; j < T; j++) {
            const want = j <= i ? e[j] / z : 0;
            assert.ok(Math.abs(w[(h * T + i) * T + j] - want) < 1e-5, `layer ${l} head ${h} row ${i} key ${j}`);
          }
        }
      }
    });
  });
}

test('qkv-tiny: x, the layer input after RMSNorm, is what q is projected from: q = RoPE(x W_qᵀ), x = RMSNorm(embedding) in layer 0', () => {
  const ckpt = loadCheckpoint(TINY, { tokenizer: false });
  const model = ckpt.model as CausalLM;
  const ids = [5, 17, 300, 42, 7, 99];
  const T = ids.length;
  const { qkv } = model.forward([ids], { outputQkv: true });
  const { x, q } = qkv![0];
  assert.ok(x, 'the layer input is returned');
  const eps = 1e-5;
  const want = rmsNorm(embedding(ckpt.weights.get('model.embed_tokens.weight'), ids), ckpt.weights.get('model.layers.0.input_layernorm.weight'), eps);
  assertClose(x!.toFloat32(), want.toFloat32(), 1e-5, 1e-5, 'x');
  const [, Hq, , D] = q.shape;
  const proj = linear(x!, ckpt.weights.get('model.layers.0.self_attn.q_proj.weight')).reshape([1, T, Hq, D]).transpose(1, 2).contiguous();
  const rotated = applyRope(proj, { freqs: ropeInvFreq({ headDim: D, ropeTheta: 10000 }) });
  assertClose(q.toFloat32(), rotated.toFloat32(), 1e-4, 1e-4, 'q');
});
