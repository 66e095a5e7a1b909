// Llama (Touvron et al. 2023, https://arxiv.org/abs/2302.13971) — and the families that are Llama with one change:
// Mistral (sliding-window attention, mistral.ts) and Qwen2 (biases on q/k/v, qwen2.ts). Read next to transformers'
// modeling_llama.py:
//   x = embed(ids)
//   for each layer:  x = x + o_proj(Attention(RoPE(q_proj(n)), RoPE(k_proj(n)), v_proj(n))),  n = RMSNorm(x)
//                    x = x + down_proj(SiLU(gate_proj(n)) ⊙ up_proj(n)),                       n = RMSNorm(x)
//   logits = lm_head(RMSNorm(x))       (lm_head tied to embed when tie_word_embeddings)
// Attention is grouped-query: Hq query heads share Hkv key/value heads.
import type { KVCache } from '../cache/kv-cache.js';
import { activationKind } from '../nn/activations.js';
import { embedding } from '../nn/positional/learned.js';
import { ropeInvFreq, type RopeFrequencies } from '../nn/positional/rope.js';
import type { LinearWeight } from '../tensor/quantize.js';
import type { Tensor } from '../tensor/tensor.js';
import { attentionShape, checkTied, count, num, ropeConfig, tokenId, tokenIds, type HfConfig } from './config.js';
import type { Ablations, CausalForwardOptions, ModelInfo } from './model.js';
import { forwardOnCpu, type AttendSpec, type Decoder, type DecoderOps } from './ops.js';
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

export class Llama implements Decoder {
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

  forward(ids: readonly (readonly number[])[], o: CausalForwardOptions = {}): { logits: Tensor; attentions?: Tensor[] } {
    return forwardOnCpu(this, ids, o);
  }

  /** The forward pass on any device (ops.ts: the CPU's Tensors or WebGPU's GpuTensors). */
  logits<X>(ops: DecoderOps<X>, ids: readonly (readonly number[])[], lastOnly: boolean, ab: Ablations = {}): X {
    const { hiddenSize: E, numHeads: Hq, numKvHeads: Hkv, headDim: D } = this.info;
    let x = ops.input(embedding(this.embed, ids.flat()).toFloat32(), [ids.length, ids[0].length, E]); // [B, T, E]
    // the lab's ablations break one piece of attention at a time (model.ts: Ablations)
    const attend: AttendSpec = {
      Hq, Hkv, D, rope: ab.noPositions ? null : this.freqs, scale: ab.noScale ? 1 : 1 / Math.sqrt(D), causal: !ab.noCausal,
      slidingWindow: ab.slidingWindow ?? this.variant.slidingWindow, poolKvHeads: ab.kvHeads,
    };
    for (const [l, L] of this.layers.entries()) x = ops.scoped(() => this.block(ops, x, L, l, attend));
    if (lastOnly) x = ops.last(x); // [B, 1, E]
    return ops.linear(ops.rmsNorm(x, this.norm, this.eps), this.lmHead); // [B, T, V]
  }

  // x + Attention(RMSNorm(x)), then + MLP(RMSNorm(·)); RoPE is applied in attend, at the new tokens' positions
  private block<X>(ops: DecoderOps<X>, x: X, L: Layer, l: number, attend: AttendSpec): X {
    const n = ops.rmsNorm(x, L.ln1, this.eps); // [B, T, E]
    const a = ops.attend(l, ops.linear(n, L.wq, L.bq), ops.linear(n, L.wk, L.bk), ops.linear(n, L.wv, L.bv), attend); // [B, T, Hq·D]
    x = ops.add(x, ops.linear(a, L.wo)); // [B, T, E]
    const m = ops.rmsNorm(x, L.ln2, this.eps);
    return ops.add(x, ops.linear(ops.gatedLinear(m, L.gate, L.up, this.actName), L.down)); // [B, T, E]
  }
}

/** LlamaForCausalLM. */
export function llama(c: HfConfig, w: Weights): Llama {
  return new Llama(c, w, { architecture: 'LlamaForCausalLM', qkvBias: c.attention_bias === true, slidingWindow: null });
}

export type { KVCache };
