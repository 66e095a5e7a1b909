// Llama (Touvron et al. 2023, https://arxiv.org/abs/2302.13971) — and the families that are Llama with a change or two
// (LlamaVariant): Mistral (sliding window), Qwen2 (q/k/v biases), Qwen3 (qk-norm per head), SmolLM3 (NoPE layers),
// OLMo 2 (qk-norm over the projection, norms after attention and MLP), Phi-3 (fused projections, LongRoPE).
// Read next to transformers' modeling_llama.py:
//   x = embed(ids)
//   for each layer:  x = x + o_proj(Attention(RoPE(q_proj(n)), RoPE(k_proj(n)), v_proj(n))),  n = RMSNorm(x)
//                    x = x + down_proj(SiLU(gate_proj(n)) ⊙ up_proj(n)),                       n = RMSNorm(x)
//   logits = lm_head(RMSNorm(x))       (lm_head tied to embed when tie_word_embeddings)
// Attention is grouped-query: Hq query heads share Hkv key/value heads.
import type { KVCache } from '../cache/kv-cache.js';
import { activationKind } from '../nn/activations.js';
import { ropeInvFreq, type RopeFrequencies } from '../nn/positional/rope.js';
import type { LinearWeight } from '../tensor/quantize.js';
import type { Tensor } from '../tensor/tensor.js';
import { attentionShape, checkTied, count, num, ropeConfig, tokenId, tokenIds, type HfConfig } from './config.js';
import type { Ablations, CausalForwardOptions, ModelInfo } from './model.js';
import { decoderTrunk, forwardOnCpu, type AttendSpec, type Decoder, type DecoderOps } from './ops.js';
import type { Weights } from './weights.js';

/** What distinguishes the Llama-like families. */
export interface LlamaVariant {
  architecture: string; qkvBias: boolean; slidingWindow: number | null;
  /** RMSNorm on q and k before RoPE: over each head (Qwen3: weights [D]) or the whole projection (OLMo 2: [H·D]). */
  qkNorm?: 'head' | 'projection';
  /** Layers that apply no RoPE (SmolLM3's NoPE layers): position comes from the causal mask alone. */
  noRope?: (layer: number) => boolean;
  /** OLMo 2: x + norm(attention(x)), x + norm(MLP(x)) — the norms after, not before. */
  postNorm?: boolean;
}

interface Layer {
  /** Before attention and before the MLP (after them with postNorm). */
  attnNorm: Tensor; mlpNorm: Tensor;
  wq: LinearWeight; wk: LinearWeight; wv: LinearWeight; bq: Tensor | null; bk: Tensor | null; bv: Tensor | null;
  qNorm: Tensor | null; kNorm: Tensor | null;
  wo: LinearWeight; gate: LinearWeight; up: LinearWeight; down: LinearWeight;
}

/**
 * The output projection of a decoder: lm_head.weight [V, E], or the embedding table itself when the embeddings are tied
 * (tie_word_embeddings, or no lm_head in the checkpoint); tie_word_embeddings: false requires lm_head (checkTied).
 */
export function lmHeadOf(c: HfConfig, w: Weights, embed: Tensor, V: number, E: number): LinearWeight {
  checkTied(c, w.has('lm_head.weight'), w.source);
  return c.tie_word_embeddings === true || !w.has('lm_head.weight') ? w.asFormat(embed) : w.matrix('lm_head.weight', [V, E]);
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

export class Llama implements Decoder {
  readonly kind = 'causal-lm';
  readonly info: ModelInfo;
  private readonly embed: LinearWeight; // the table as stored, or a tied output projection's int8/int4 copy
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
    const table = w.table('model.embed_tokens.weight', [V, E]);
    const bias = (name: string, n: number) => (variant.qkvBias ? w.get(name, [n]) : w.optional(name, [n]));
    // the output projection before the layers (Weights.embeddingTable says why)
    this.lmHead = lmHeadOf(c, w, table, V, E);
    this.embed = w.embeddingTable('model.embed_tokens.weight', table); // tied and quantized: one copy serves both
    this.layers = Array.from({ length: info.numLayers }, (_, l) => {
      const p = `model.layers.${l}.`;
      const [attnNorm, mlpNorm] = variant.postNorm ? ['post_attention', 'post_feedforward'] : ['input', 'post_attention'];
      return {
        attnNorm: w.get(`${p}${attnNorm}_layernorm.weight`, [E]), mlpNorm: w.get(`${p}${mlpNorm}_layernorm.weight`, [E]),
        wq: w.matrix(`${p}self_attn.q_proj.weight`, [Hq * D, E]), bq: bias(`${p}self_attn.q_proj.bias`, Hq * D),
        wk: w.matrix(`${p}self_attn.k_proj.weight`, [Hkv * D, E]), bk: bias(`${p}self_attn.k_proj.bias`, Hkv * D),
        wv: w.matrix(`${p}self_attn.v_proj.weight`, [Hkv * D, E]), bv: bias(`${p}self_attn.v_proj.bias`, Hkv * D),
        qNorm: variant.qkNorm ? w.get(`${p}self_attn.q_norm.weight`, [variant.qkNorm === 'head' ? D : Hq * D]) : null,
        kNorm: variant.qkNorm ? w.get(`${p}self_attn.k_norm.weight`, [variant.qkNorm === 'head' ? D : Hkv * D]) : null,
        wo: w.matrix(`${p}self_attn.o_proj.weight`, [E, Hq * D]),
        gate: w.matrix(`${p}mlp.gate_proj.weight`, [F, E]), up: w.matrix(`${p}mlp.up_proj.weight`, [F, E]),
        down: w.matrix(`${p}mlp.down_proj.weight`, [E, F]),
      };
    });
    this.norm = w.get('model.norm.weight', [E]);
  }

  forward(ids: readonly (readonly number[])[], o: CausalForwardOptions = {}): { logits: Tensor; attentions?: Tensor[] } {
    return forwardOnCpu(this, ids, o);
  }

  /** The forward pass on any device (ops.ts: the CPU's Tensors or WebGPU's GpuTensors). */
  logits<X>(ops: DecoderOps<X>, ids: readonly (readonly number[])[], lastOnly: boolean, ab: Ablations = {}): X {
    const { numHeads: Hq, numKvHeads: Hkv, headDim: D } = this.info;
    // the lab's ablations break one piece of attention at a time (model.ts: Ablations)
    const attend: AttendSpec = {
      Hq, Hkv, D, rope: ab.noPositions ? null : this.freqs, scale: ab.noScale ? 1 : 1 / Math.sqrt(D), causal: !ab.noCausal,
      slidingWindow: ab.slidingWindow ?? this.variant.slidingWindow, poolKvHeads: ab.kvHeads,
    };
    const x = decoderTrunk(ops, ids, this.embed, this.layers, (h: X, L, l) => this.block(ops, h, L, l, attend), lastOnly);
    return ops.linear(ops.rmsNorm(x, this.norm, this.eps), this.lmHead); // [B, T, V]
  }

  // x + Attention(RMSNorm(x)), then + MLP(RMSNorm(·)) — or with postNorm x + RMSNorm(Attention(x)), + RMSNorm(MLP(·))
  private block<X>(ops: DecoderOps<X>, x: X, L: Layer, l: number, attend: AttendSpec): X {
    const pre = (t: X, g: Tensor) => (this.variant.postNorm ? t : ops.rmsNorm(t, g, this.eps));
    const post = (t: X, g: Tensor) => (this.variant.postNorm ? ops.rmsNorm(t, g, this.eps) : t);
    const n = pre(x, L.attnNorm); // [B, T, E]
    ops.noteInput?.(l, n);
    let [q, k] = [ops.linear(n, L.wq, L.bq), ops.linear(n, L.wk, L.bk)]; // [B, T, Hq·D], [B, T, Hkv·D]
    if (L.qNorm && L.kNorm) [q, k] = [ops.rmsNorm(q, L.qNorm, this.eps), ops.rmsNorm(k, L.kNorm, this.eps)]; // qk-norm
    const rope = this.variant.noRope?.(l) ? null : attend.rope; // a NoPE layer: no rotation at all
    const a = ops.attend(l, q, k, ops.linear(n, L.wv, L.bv), { ...attend, rope }); // [B, T, Hq·D]
    x = ops.add(x, post(ops.linear(a, L.wo), L.attnNorm)); // [B, T, E]
    const m = pre(x, L.mlpNorm);
    return ops.add(x, post(ops.linear(ops.gatedLinear(m, L.gate, L.up, this.actName), L.down), L.mlpNorm)); // [B, T, E]
  }
}

/** LlamaForCausalLM. */
export function llama(c: HfConfig, w: Weights): Llama {
  return new Llama(c, w, { architecture: 'LlamaForCausalLM', qkvBias: c.attention_bias === true, slidingWindow: null });
}

export type { KVCache };
