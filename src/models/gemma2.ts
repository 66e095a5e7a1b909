// Gemma 2 (Gemma Team 2024, https://arxiv.org/abs/2408.00118), read next to transformers' modeling_gemma2.py.
// Llama-shaped, with these differences:
//   x = embed(ids) · √hidden                                      (embedding scaling)
//   attention scale = query_pre_attn_scalar^(−1/2), not head_dim^(−1/2)
//   s = 50 · tanh(s / 50) before masking                          (attention logit soft-capping)
//   layers alternate sliding-window (local) and full (global) attention (layer_types)
//   x = x + post_attention_norm(Attention(input_norm(x)));   x = x + post_ffw_norm(MLP(pre_ffw_norm(x)))
//   RMSNorm scales by (1 + γ);   MLP uses GELU-tanh;   logits = 30 · tanh(logits / 30)   (final soft-capping)
// gemma2ForwardWebGPU is the same forward on WebGPU (one sequence, weights and KV cache on the GPU).
import type { GpuKVCache } from '../cache/webgpu.js';
import { attentionOverGpuCache } from '../attention/webgpu.js';
import { activationKind, add } from '../nn/activations.js';
import { addGpu, gatedActGpu, GpuTensor, linearGpu, rmsNormGpuLayer, ropeGpuLayer, ropeTableGpu, rowsGpu } from '../nn/webgpu.js';
import { gatedLinear, linear } from '../nn/linear.js';
import { rmsNorm } from '../nn/norm.js';
import { embedding } from '../nn/positional/learned.js';
import { ropeInvFreq, type RopeFrequencies } from '../nn/positional/rope.js';
import type { LinearWeight } from '../tensor/quantize.js';
import { Tensor } from '../tensor/tensor.js';
import { modelAttention, splitHeads } from './attention-layer.js';
import { checkTied, count, num, ropeConfig, type HfConfig } from './config.js';
import { decoderInfo, positionsOf } from './llama.js';
import type { CausalForwardOptions, CausalLM, ModelInfo } from './model.js';
import type { Weights } from './weights.js';

interface Layer {
  inNorm: Tensor; wq: LinearWeight; wk: LinearWeight; wv: LinearWeight; wo: LinearWeight; postAttnNorm: Tensor;
  preFfwNorm: Tensor; gate: LinearWeight; up: LinearWeight; down: LinearWeight; postFfwNorm: Tensor; sliding: boolean;
}

export class Gemma2 implements CausalLM {
  readonly kind = 'causal-lm';
  readonly info: ModelInfo;
  private readonly embed: Tensor;
  private readonly layers: Layer[];
  private readonly norm: Tensor;
  private readonly lmHead: LinearWeight;
  private readonly freqs: RopeFrequencies;
  private readonly eps: number;
  private readonly scale: number;
  private readonly attnSoftcap: number;
  private readonly finalSoftcap: number;
  private readonly window: number | null;
  private readonly act: string; // the feed-forward's gate activation

  constructor(c: HfConfig, w: Weights) {
    const info = (this.info = decoderInfo(c, 'Gemma2ForCausalLM'));
    const { hiddenSize: E, numHeads: Hq, numKvHeads: Hkv, headDim: D, vocabSize: V } = info;
    const F = count(c, 'intermediate_size');
    this.eps = num(c, 'rms_norm_eps', 1e-6, { min: 0 });
    this.scale = num(c, 'query_pre_attn_scalar', D, { min: 0, minExclusive: true }) ** -0.5;
    this.attnSoftcap = num(c, 'attn_logit_softcapping', 0, { min: 0 });
    this.finalSoftcap = num(c, 'final_logit_softcapping', 0, { min: 0 });
    this.window = c.sliding_window === undefined || c.sliding_window === null ? null : count(c, 'sliding_window');
    this.act = String(c.hidden_activation ?? c.hidden_act ?? 'gelu_pytorch_tanh');
    activationKind(this.act); // an unknown name fails at load
    this.freqs = ropeInvFreq(ropeConfig(c, D));
    // layer_types (transformers 5) or the older rule: even layers slide, odd layers are global
    const types = Array.isArray(c.layer_types) ? (c.layer_types as string[]) : null;
    this.embed = w.table('model.embed_tokens.weight', [V, E]);
    this.layers = Array.from({ length: info.numLayers }, (_, l) => {
      const p = `model.layers.${l}.`;
      return {
        inNorm: w.get(`${p}input_layernorm.weight`, [E]),
        wq: w.matrix(`${p}self_attn.q_proj.weight`, [Hq * D, E]), wk: w.matrix(`${p}self_attn.k_proj.weight`, [Hkv * D, E]),
        wv: w.matrix(`${p}self_attn.v_proj.weight`, [Hkv * D, E]), wo: w.matrix(`${p}self_attn.o_proj.weight`, [E, Hq * D]),
        postAttnNorm: w.get(`${p}post_attention_layernorm.weight`, [E]),
        preFfwNorm: w.get(`${p}pre_feedforward_layernorm.weight`, [E]),
        gate: w.matrix(`${p}mlp.gate_proj.weight`, [F, E]), up: w.matrix(`${p}mlp.up_proj.weight`, [F, E]), down: w.matrix(`${p}mlp.down_proj.weight`, [E, F]),
        postFfwNorm: w.get(`${p}post_feedforward_layernorm.weight`, [E]),
        sliding: types ? types[l] === 'sliding_attention' : l % 2 === 0,
      };
    });
    this.norm = w.get('model.norm.weight', [E]);
    checkTied(c, w.has('lm_head.weight'), w.source);
    this.lmHead = c.tie_word_embeddings === false && w.has('lm_head.weight') ? w.matrix('lm_head.weight', [V, E]) : w.asFormat(this.embed);
  }

  /** What the WebGPU forward (gemma2ForwardWebGPU) reads. */
  gpuParts() {
    return { embed: this.embed, layers: this.layers, norm: this.norm, lmHead: this.lmHead, freqs: this.freqs, eps: this.eps, act: this.act,
      scale: this.scale, attnSoftcap: this.attnSoftcap, finalSoftcap: this.finalSoftcap, window: this.window };
  }

  /** The last position's logits [V] of one sequence, computed on WebGPU with a GPU KV cache. */
  forwardWebGPU(ids: readonly number[], cache: GpuKVCache): Promise<Float32Array> {
    return gemma2ForwardWebGPU(this, ids, cache);
  }

  forward(ids: readonly (readonly number[])[], o: CausalForwardOptions = {}): { logits: Tensor; attentions?: Tensor[] } {
    const { hiddenSize: E, numHeads: Hq, numKvHeads: Hkv } = this.info;
    const [B, T] = [ids.length, ids[0].length];
    const positions = positionsOf(ids, o);
    const norm = (x: Tensor, g: Tensor) => rmsNorm(x, g, this.eps, 1); // Gemma: x̂ · (1 + γ)
    // embedding scaling by √hidden (transformers rounds the factor to the activation dtype; float32 here)
    const e = embedding(this.embed, ids.flat()).toFloat32().map((v) => v * Math.fround(Math.sqrt(E)));
    let x = Tensor.from(e, [B, T, E]); // [B, T, E]
    const attentions: Tensor[] = [];
    this.layers.forEach((L, l) => {
      const n = norm(x, L.inNorm);
      const q = splitHeads(linear(n, L.wq), Hq); // [B, Hq, T, D]
      const k = splitHeads(linear(n, L.wk), Hkv); // [B, Hkv, T, D]
      const v = splitHeads(linear(n, L.wv), Hkv);
      const a = modelAttention({ q, k, v, rope: { freqs: this.freqs, positions }, cache: o.cache, layer: l, scale: this.scale, causal: true, keyMask: o.attentionMask,
        slidingWindow: L.sliding ? this.window : null, softcap: this.attnSoftcap || undefined, returnWeights: o.outputAttentions });
      if (a.weights) attentions.push(a.weights);
      x = add(x, norm(linear(a.out, L.wo), L.postAttnNorm)); // [B, T, E]
      const m = norm(x, L.preFfwNorm);
      x = add(x, norm(linear(gatedLinear(m, L.gate, L.up, this.act), L.down), L.postFfwNorm));
    });
    if (o.lastOnly) x = x.slice(1, T - 1).contiguous();
    let logits = linear(norm(x, this.norm), this.lmHead); // [B, T, V]
    if (this.finalSoftcap) {
      const c = this.finalSoftcap;
      logits = Tensor.from(logits.toFloat32().map((v) => c * Math.tanh(v / c)), logits.shape);
    }
    return { logits, attentions: o.outputAttentions ? attentions : undefined };
  }
}

/**
 * The same forward pass on WebGPU, for one sequence (weights and the KV cache on the GPU; only the last position's
 * logits [V] come back, soft-capped on the host). Line for line Gemma2.forward; like llamaForwardWebGPU.
 */
export async function gemma2ForwardWebGPU(m: Gemma2, ids: readonly number[], cache: GpuKVCache): Promise<Float32Array> {
  const { hiddenSize: E, numHeads: Hq, numKvHeads: Hkv, headDim: D } = m.info;
  const g = m.gpuParts();
  const T = ids.length;
  const table = ropeTableGpu(cache.device, g.freqs, ids.map((_, t) => cache.length(0) + t));
  const norm = (x: GpuTensor, w: Tensor) => rmsNormGpuLayer(x, w, g.eps, 1); // x̂ · (1 + γ)
  const scaled = embedding(g.embed, [...ids]).toFloat32().map((v) => v * Math.fround(Math.sqrt(E)));
  let x = GpuTensor.upload(cache.device, scaled, [T, E]); // [T, E]
  for (const [l, L] of g.layers.entries()) {
    const n = await norm(x, L.inNorm); // [T, E]
    const [q0, k0, v] = [await linearGpu(n, L.wq), await linearGpu(n, L.wk), await linearGpu(n, L.wv)];
    const q = await ropeGpuLayer(q0.reshape([T, Hq, D]), table); // [T, Hq, D]
    const k = await ropeGpuLayer(k0.reshape([T, Hkv, D]), table); // [T, Hkv, D]
    const a = await attentionOverGpuCache(cache, l, {
      q, k, v: v.reshape([T, Hkv, D]), scale: g.scale, slidingWindow: L.sliding ? g.window : null, softcap: g.attnSoftcap || undefined,
    });
    const o = await linearGpu(a, L.wo);
    const oNorm = await norm(o, L.postAttnNorm);
    const x2 = await addGpu(x, oNorm); // [T, E]
    const mNorm = await norm(x2, L.preFfwNorm);
    const [gate, up] = [await linearGpu(mNorm, L.gate), await linearGpu(mNorm, L.up)];
    const h = await gatedActGpu(g.act, gate, up); // [T, F]
    const down = await linearGpu(h, L.down);
    const downNorm = await norm(down, L.postFfwNorm);
    const x3 = await addGpu(x2, downNorm); // [T, E]
    for (const t of [x, n, q0, k0, v, q, k, a, o, oNorm, x2, mNorm, gate, up, h, down, downNorm]) t.release();
    x = x3;
  }
  const last = rowsGpu(x, T - 1, 1); // [1, E]
  const finalNorm = await norm(last, g.norm);
  const logits = await linearGpu(finalNorm, g.lmHead); // [1, V]
  const out = await logits.read();
  for (const t of [x, last, finalNorm, logits, table]) t.release();
  const c = g.finalSoftcap;
  return c ? out.map((v) => c * Math.tanh(v / c)) : out;
}

/** Gemma2ForCausalLM. */
export function gemma2(c: HfConfig, w: Weights): Gemma2 {
  return new Gemma2(c, w);
}
