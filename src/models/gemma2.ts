// Gemma 2 (Gemma Team 2024, https://arxiv.org/abs/2408.00118), read next to transformers' modeling_gemma2.py.
// Llama-shaped, with these differences:
//   x = embed(ids) · √hidden                                      (embedding scaling)
//   attention scale = query_pre_attn_scalar^(−1/2), not head_dim^(−1/2)
//   s = 50 · tanh(s / 50) before masking                          (attention logit soft-capping)
//   layers alternate sliding-window (local) and full (global) attention (layer_types)
//   x = x + post_attention_norm(Attention(input_norm(x)));   x = x + post_ffw_norm(MLP(pre_ffw_norm(x)))
//   RMSNorm scales by (1 + γ);   MLP uses GELU-tanh;   logits = 30 · tanh(logits / 30)   (final soft-capping)
// logits() is written once over DecoderOps (ops.ts): the same code runs on the CPU and on WebGPU.
import { activationKind } from '../nn/activations.js';
import { ropeInvFreq, type RopeFrequencies } from '../nn/positional/rope.js';
import type { LinearWeight } from '../tensor/quantize.js';
import type { Tensor } from '../tensor/tensor.js';
import { checkTied, count, num, ropeConfig, slidingWindowOf, type HfConfig } from './config.js';
import { decoderInfo } from './llama.js';
import type { CausalForwardOptions, ModelInfo } from './model.js';
import { decoderTrunk, forwardOnCpu, type AttendSpec, type Decoder, type DecoderOps } from './ops.js';
import type { Weights } from './weights.js';

interface Layer {
  inNorm: Tensor; wq: LinearWeight; wk: LinearWeight; wv: LinearWeight; wo: LinearWeight; postAttnNorm: Tensor;
  preFfwNorm: Tensor; gate: LinearWeight; up: LinearWeight; down: LinearWeight; postFfwNorm: Tensor; sliding: boolean;
  /** Gemma 3: RMSNorm (1 + γ) over each head of q and k. */
  qNorm: Tensor | null; kNorm: Tensor | null;
  /** This layer's RoPE (Gemma 3: one base for local layers, another for global ones). */
  freqs: RopeFrequencies;
}

/** What distinguishes Gemma 3 (gemma3.ts) from Gemma 2. */
export interface GemmaVariant { architecture: string; qkNorm: boolean }

export class Gemma2 implements Decoder {
  readonly kind = 'causal-lm';
  readonly info: ModelInfo;
  private readonly embed: LinearWeight; // the table as stored, or a tied output projection's int8/int4 copy
  private readonly layers: Layer[];
  private readonly norm: Tensor;
  private readonly lmHead: LinearWeight;
  private readonly eps: number;
  private readonly scale: number;
  private readonly attnSoftcap: number;
  private readonly finalSoftcap: number;
  private readonly window: number | null;
  private readonly act: string; // the feed-forward's gate activation

  constructor(c: HfConfig, w: Weights, readonly variant: GemmaVariant = { architecture: 'Gemma2ForCausalLM', qkNorm: false }) {
    const info = (this.info = decoderInfo(c, variant.architecture));
    const { hiddenSize: E, numHeads: Hq, numKvHeads: Hkv, headDim: D, vocabSize: V } = info;
    const F = count(c, 'intermediate_size');
    this.eps = num(c, 'rms_norm_eps', 1e-6, { min: 0 });
    this.scale = num(c, 'query_pre_attn_scalar', D, { min: 0, minExclusive: true }) ** -0.5;
    this.attnSoftcap = num(c, 'attn_logit_softcapping', 0, { min: 0 });
    this.finalSoftcap = num(c, 'final_logit_softcapping', 0, { min: 0 });
    this.window = slidingWindowOf(c);
    this.act = String(c.hidden_activation ?? c.hidden_act ?? 'gelu_pytorch_tanh');
    activationKind(this.act); // an unknown name fails at load
    // layer_types (transformers 5) or the older rules: Gemma 2's even layers slide, Gemma 3's every 6th is global
    const types = Array.isArray(c.layer_types) ? (c.layer_types as string[]) : null;
    const pattern = variant.qkNorm ? count(c, 'sliding_window_pattern', 6) : 2;
    const sliding = (l: number) => (types ? types[l] === 'sliding_attention' : (l + 1) % pattern !== 0);
    // RoPE per layer type where the config has one set each (rope_parameters.sliding_attention / .full_attention)
    const freqs = new Map<boolean, RopeFrequencies>();
    const freqsOf = (slides: boolean) => {
      if (!freqs.has(slides)) freqs.set(slides, ropeInvFreq(ropeConfig(c, D, slides ? 'sliding_attention' : 'full_attention')));
      return freqs.get(slides)!;
    };
    const table = w.table('model.embed_tokens.weight', [V, E]);
    // the output projection before the layers (Weights.embeddingTable says why)
    checkTied(c, w.has('lm_head.weight'), w.source);
    this.lmHead = c.tie_word_embeddings === false && w.has('lm_head.weight') ? w.matrix('lm_head.weight', [V, E]) : w.asFormat(table);
    this.embed = w.embeddingTable('model.embed_tokens.weight', table); // tied and quantized: one copy serves both
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
        sliding: sliding(l), freqs: freqsOf(sliding(l)),
        qNorm: variant.qkNorm ? w.get(`${p}self_attn.q_norm.weight`, [D]) : null,
        kNorm: variant.qkNorm ? w.get(`${p}self_attn.k_norm.weight`, [D]) : null,
      };
    });
    this.norm = w.get('model.norm.weight', [E]);
  }

  forward(ids: readonly (readonly number[])[], o: CausalForwardOptions = {}): { logits: Tensor; attentions?: Tensor[] } {
    return forwardOnCpu(this, ids, o);
  }

  /** The forward pass on any device (ops.ts: the CPU's Tensors or WebGPU's GpuTensors). */
  logits<X>(ops: DecoderOps<X>, ids: readonly (readonly number[])[], lastOnly: boolean): X {
    // embedding scaling by √hidden (transformers rounds the factor to the activation dtype; float32 here)
    const scale = Math.fround(Math.sqrt(this.info.hiddenSize));
    const x = decoderTrunk(ops, ids, this.embed, this.layers, (h: X, L, l) => this.block(ops, h, L, l), lastOnly, scale);
    const logits = ops.linear(ops.rmsNorm(x, this.norm, this.eps, 1), this.lmHead); // [B, T, V]
    return this.finalSoftcap ? ops.softcap(logits, this.finalSoftcap) : logits;
  }

  // x + post_attention_norm(Attention(input_norm(x))), then x + post_ffw_norm(MLP(pre_ffw_norm(x)))
  private block<X>(ops: DecoderOps<X>, x: X, L: Layer, l: number): X {
    const { numHeads: Hq, numKvHeads: Hkv, headDim: D } = this.info;
    const norm = (t: X, g: Tensor) => ops.rmsNorm(t, g, this.eps, 1); // Gemma: x̂ · (1 + γ)
    const attend: AttendSpec = {
      Hq, Hkv, D, rope: L.freqs, scale: this.scale, causal: true, slidingWindow: L.sliding ? this.window : null,
      softcap: this.attnSoftcap || undefined,
    };
    const n = norm(x, L.inNorm);
    let [q, k] = [ops.linear(n, L.wq), ops.linear(n, L.wk)];
    if (L.qNorm && L.kNorm) [q, k] = [norm(q, L.qNorm), norm(k, L.kNorm)]; // Gemma 3's qk-norm, per head
    const a = ops.attend(l, q, k, ops.linear(n, L.wv), attend); // [B, T, Hq·D]
    x = ops.add(x, norm(ops.linear(a, L.wo), L.postAttnNorm)); // [B, T, E]
    const m = norm(x, L.preFfwNorm);
    return ops.add(x, norm(ops.linear(ops.gatedLinear(m, L.gate, L.up, this.act), L.down), L.postFfwNorm));
  }
}

/** Gemma2ForCausalLM. */
export function gemma2(c: HfConfig, w: Weights): Gemma2 {
  return new Gemma2(c, w);
}
