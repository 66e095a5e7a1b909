// Llama (Touvron et al. 2023, https://arxiv.org/abs/2302.13971) — and the families that are Llama with one change:
// Mistral (sliding-window attention, mistral.ts) and Qwen2 (biases on q/k/v, qwen2.ts). Read next to transformers'
// modeling_llama.py:
//   x = embed(ids)
//   for each layer:  x = x + o_proj(Attention(RoPE(q_proj(n)), RoPE(k_proj(n)), v_proj(n))),  n = RMSNorm(x)
//                    x = x + down_proj(SiLU(gate_proj(n)) ⊙ up_proj(n)),                       n = RMSNorm(x)
//   logits = lm_head(RMSNorm(x))       (lm_head tied to embed when tie_word_embeddings)
// Attention is grouped-query: Hq query heads share Hkv key/value heads.
import type { KVCache } from '../cache/kv-cache.js';
import type { GpuKVCache } from '../cache/webgpu.js';
import { attentionOverGpuCache } from '../attention/webgpu.js';
import { addGpu, gatedActGpu, GpuTensor, linearGpu, rmsNormGpuLayer, ropeGpuLayer, ropeTableGpu, rowsGpu } from '../nn/webgpu.js';
import { activationKind, add } from '../nn/activations.js';
import { gatedLinear, linear } from '../nn/linear.js';
import { rmsNorm } from '../nn/norm.js';
import { embedding } from '../nn/positional/learned.js';
import { ropeInvFreq, type RopeFrequencies } from '../nn/positional/rope.js';
import { QkvError } from '../errors.js';
import type { LinearWeight } from '../tensor/quantize.js';
import { Tensor } from '../tensor/tensor.js';
import { modelAttention, splitHeads } from './attention-layer.js';
import { attentionShape, checkTied, count, num, ropeConfig, tokenId, tokenIds, type HfConfig } from './config.js';
import type { CausalForwardOptions, CausalLM, ModelInfo } from './model.js';
import type { Weights } from './weights.js';

/** What distinguishes the Llama-like families. */
export interface LlamaVariant { architecture: string; qkvBias: boolean; slidingWindow: number | null }

interface Layer {
  ln1: Tensor; wq: LinearWeight; wk: LinearWeight; wv: LinearWeight; bq: Tensor | null; bk: Tensor | null; bv: Tensor | null;
  wo: LinearWeight; ln2: Tensor; gate: LinearWeight; up: LinearWeight; down: LinearWeight;
}

/** Model facts every decoder-only family reads the same way. */
export function decoderInfo(c: HfConfig, architecture: string): ModelInfo {
  const hiddenSize = count(c, 'hidden_size');
  const vocabSize = count(c, 'vocab_size');
  return {
    architecture, hiddenSize, ...attentionShape(c, hiddenSize), numLayers: count(c, 'num_hidden_layers'),
    vocabSize, maxPositions: count(c, 'max_position_embeddings', 2048),
    eosTokenIds: tokenIds(c.eos_token_id), bosTokenId: tokenId(c, 'bos_token_id'), padTokenId: tokenId(c, 'pad_token_id'),
  };
}

/** Positions of the new tokens: given, or cache length + 0, 1, … for every row. */
export function positionsOf(ids: readonly (readonly number[])[], o: CausalForwardOptions): number[] {
  const past = o.cache?.length(0) ?? 0;
  return ids.flatMap((row, b) => row.map((_, t) => o.positionIds?.[b][t] ?? past + t));
}

export class Llama implements CausalLM {
  readonly kind = 'causal-lm';
  readonly info: ModelInfo;
  private readonly embed: Tensor;
  private readonly layers: Layer[];
  private readonly norm: Tensor;
  private readonly lmHead: LinearWeight;
  private readonly freqs: RopeFrequencies;
  private readonly eps: number;
  private readonly actName: string;

  constructor(c: HfConfig, w: Weights, readonly variant: LlamaVariant) {
    const info = (this.info = decoderInfo(c, variant.architecture));
    const { hiddenSize: E, numHeads: Hq, numKvHeads: Hkv, headDim: D, vocabSize: V } = info;
    const F = count(c, 'intermediate_size');
    this.eps = num(c, 'rms_norm_eps', 1e-6, { min: 0 });
    this.actName = typeof c.hidden_act === 'string' ? c.hidden_act : 'silu';
    activationKind(this.actName); // an unknown name fails at load
    this.freqs = ropeInvFreq(ropeConfig(c, D));
    this.embed = w.table('model.embed_tokens.weight', [V, E]);
    const bias = (name: string, n: number) => (variant.qkvBias ? w.get(name, [n]) : w.optional(name, [n]));
    this.layers = Array.from({ length: info.numLayers }, (_, l) => {
      const p = `model.layers.${l}.`;
      return {
        ln1: w.get(`${p}input_layernorm.weight`, [E]),
        wq: w.matrix(`${p}self_attn.q_proj.weight`, [Hq * D, E]), bq: bias(`${p}self_attn.q_proj.bias`, Hq * D),
        wk: w.matrix(`${p}self_attn.k_proj.weight`, [Hkv * D, E]), bk: bias(`${p}self_attn.k_proj.bias`, Hkv * D),
        wv: w.matrix(`${p}self_attn.v_proj.weight`, [Hkv * D, E]), bv: bias(`${p}self_attn.v_proj.bias`, Hkv * D),
        wo: w.matrix(`${p}self_attn.o_proj.weight`, [E, Hq * D]),
        ln2: w.get(`${p}post_attention_layernorm.weight`, [E]),
        gate: w.matrix(`${p}mlp.gate_proj.weight`, [F, E]), up: w.matrix(`${p}mlp.up_proj.weight`, [F, E]),
        down: w.matrix(`${p}mlp.down_proj.weight`, [E, F]),
      };
    });
    this.norm = w.get('model.norm.weight', [E]);
    // tied embeddings: the output projection is the embedding matrix itself
    checkTied(c, w.has('lm_head.weight'), w.source);
    this.lmHead = c.tie_word_embeddings === true || !w.has('lm_head.weight') ? w.asFormat(this.embed) : w.matrix('lm_head.weight', [V, E]);
  }

  /** What the WebGPU forward (llamaForwardWebGPU) reads. */
  gpuParts() {
    return { embed: this.embed, layers: this.layers, norm: this.norm, lmHead: this.lmHead, freqs: this.freqs, eps: this.eps, act: this.actName, slidingWindow: this.variant.slidingWindow };
  }

  /** The last position's logits [V] of one sequence, computed on WebGPU with a GPU KV cache. */
  forwardWebGPU(ids: readonly number[], cache: GpuKVCache): Promise<Float32Array> {
    return llamaForwardWebGPU(this, ids, cache);
  }

  forward(ids: readonly (readonly number[])[], o: CausalForwardOptions = {}): { logits: Tensor; attentions?: Tensor[] } {
    const { hiddenSize: E, numHeads: Hq, numKvHeads: Hkv, headDim: D } = this.info;
    const [B, T] = [ids.length, ids[0].length];
    const positions = positionsOf(ids, o);
    let x = embedding(this.embed, ids.flat()).reshape([B, T, E]); // [B, T, E]
    const attentions: Tensor[] = [];
    this.layers.forEach((L, l) => {
      const n = rmsNorm(x, L.ln1, this.eps); // [B, T, E]
      const q = splitHeads(linear(n, L.wq, L.bq), Hq); // [B, Hq, T, D]
      let k = splitHeads(linear(n, L.wk, L.bk), Hkv); // [B, Hkv, T, D]
      let v = splitHeads(linear(n, L.wv, L.bv), Hkv); // [B, Hkv, T, D]
      const ab = o.ablate ?? {};
      if (ab.kvHeads && ab.kvHeads < Hkv) [k, v] = [poolHeads(k, ab.kvHeads), poolHeads(v, ab.kvHeads)]; // [B, kvHeads, T, D]
      // RoPE is applied by the attention call (or the cache), at the positions of the new tokens
      const a = modelAttention({ q, k, v, rope: ab.noPositions ? undefined : { freqs: this.freqs, positions }, cache: o.cache, layer: l,
        scale: ab.noScale ? 1 : 1 / Math.sqrt(D), causal: !ab.noCausal, keyMask: o.attentionMask,
        slidingWindow: ab.slidingWindow ?? this.variant.slidingWindow, returnWeights: o.outputAttentions });
      if (a.weights) attentions.push(a.weights);
      x = add(x, linear(a.out, L.wo)); // [B, T, E]
      const m = rmsNorm(x, L.ln2, this.eps);
      x = add(x, linear(gatedLinear(m, L.gate, L.up, this.actName), L.down)); // [B, T, E]
    });
    if (o.lastOnly) x = x.slice(1, T - 1).contiguous(); // [B, 1, E]
    const logits = linear(rmsNorm(x, this.norm, this.eps), this.lmHead); // [B, T, V]
    return { logits, attentions: o.outputAttentions ? attentions : undefined };
  }
}

/**
 * The same forward pass on WebGPU, for one sequence: every layer runs on GpuTensors and the KV cache is on the GPU,
 * so only the last position's logits [V] come back. Line for line the CPU forward above.
 */
export async function llamaForwardWebGPU(m: Llama, ids: readonly number[], cache: GpuKVCache): Promise<Float32Array> {
  const { hiddenSize: E, numHeads: Hq, numKvHeads: Hkv, headDim: D } = m.info;
  const g = m.gpuParts();
  const T = ids.length;
  const past = cache.length(0);
  const table = ropeTableGpu(cache.device, g.freqs, ids.map((_, t) => past + t));
  let x = GpuTensor.upload(cache.device, embedding(g.embed, [...ids]).toFloat32(), [T, E]); // [T, E]
  for (const [l, L] of g.layers.entries()) {
    const n = await rmsNormGpuLayer(x, L.ln1, g.eps); // [T, E]
    const [q0, k0, v] = [await linearGpu(n, L.wq, L.bq), await linearGpu(n, L.wk, L.bk), await linearGpu(n, L.wv, L.bv)];
    const q = await ropeGpuLayer(q0.reshape([T, Hq, D]), table); // [T, Hq, D]
    const k = await ropeGpuLayer(k0.reshape([T, Hkv, D]), table); // [T, Hkv, D]
    const attend = { q, k, v: v.reshape([T, Hkv, D]), scale: 1 / Math.sqrt(D), slidingWindow: g.slidingWindow };
    const a = await attentionOverGpuCache(cache, l, attend); // [T, Hq·D]
    const o = await linearGpu(a, L.wo);
    const x2 = await addGpu(x, o); // [T, E]
    const mNorm = await rmsNormGpuLayer(x2, L.ln2, g.eps);
    const [gate, up] = [await linearGpu(mNorm, L.gate), await linearGpu(mNorm, L.up)];
    const h = await gatedActGpu(g.act, gate, up); // [T, F]
    const down = await linearGpu(h, L.down);
    const x3 = await addGpu(x2, down); // [T, E]
    for (const t of [x, n, q0, k0, v, q, k, a, o, x2, mNorm, gate, up, h, down]) t.release();
    x = x3;
  }
  const last = rowsGpu(x, T - 1, 1); // [1, E]
  const norm = await rmsNormGpuLayer(last, g.norm, g.eps);
  const logits = await linearGpu(norm, g.lmHead); // [1, V]
  const out = await logits.read();
  for (const t of [x, last, norm, logits, table]) t.release();
  return out;
}

/**
 * Mean of each group of consecutive heads: [B, H, T, D] → [B, n, T, D]. Projections and RoPE are linear, so pooling
 * projected keys equals projecting with mean-pooled weights — the GQA paper's checkpoint conversion.
 */
export function poolHeads(x: Tensor, n: number): Tensor {
  const [B, H, T, D] = x.shape;
  if (H % n !== 0) throw new QkvError(`poolHeads: ${n} heads must divide ${H}`);
  const g = H / n;
  const a = x.toFloat32();
  const out = new Float32Array(B * n * T * D);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let r = 0; r < T * D; r++) {
    out[((b * n + Math.floor(h / g)) * T * D) + r] += a[((b * H + h) * T * D) + r] / g;
  }
  return Tensor.from(out, [B, n, T, D]);
}

/** LlamaForCausalLM. */
export function llama(c: HfConfig, w: Weights): Llama {
  return new Llama(c, w, { architecture: 'LlamaForCausalLM', qkvBias: c.attention_bias === true, slidingWindow: null });
}

export type { KVCache };
