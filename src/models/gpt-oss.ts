// gpt-oss (OpenAI 2025, https://arxiv.org/abs/2508.10925), read next to transformers' modeling_gpt_oss.py. Llama-shaped
// (pre-norm RMSNorm, GQA, RoPE — YaRN-scaled) with these differences:
//   a learned sink logit per head joins every softmax row, its probability dropped     (attention/sinks.ts)
//   layers alternate sliding-window (local) and full attention (layer_types);  q, k, v and o have biases
//   the MLP is a mixture of experts (nn/moe.ts): top-k of E by router logits, softmaxed among themselves; each expert
//   a clamped SwiGLU with biases:  [g, u] = x W + b (interleaved),  g ← min(g, 7),  u ← clamp(u, ±7),
//                                 h = (u + 1) · g · σ(1.702 g),  y = h W_d + b_d
import { QkvError } from '../errors.js';
import { linear } from '../nn/linear.js';
import { MixtureOfExperts, softmaxTopK } from '../nn/moe.js';
import { ropeInvFreq, type RopeFrequencies } from '../nn/positional/rope.js';
import type { LinearWeight } from '../tensor/quantize.js';
import { Tensor } from '../tensor/tensor.js';
import { count, num, ropeConfig, slidingWindowOf, type HfConfig } from './config.js';
import { decoderInfo, lmHeadOf } from './llama.js';
import type { CausalForwardOptions, ModelInfo } from './model.js';
import { decoderTrunk, forwardOnCpu, type AttendSpec, type Decoder, type DecoderOps } from './ops.js';
import type { Weights } from './weights.js';

interface Layer {
  attnNorm: Tensor; mlpNorm: Tensor;
  wq: LinearWeight; bq: Tensor; wk: LinearWeight; bk: Tensor; wv: LinearWeight; bv: Tensor; wo: LinearWeight; bo: Tensor;
  sinks: Float32Array; sliding: boolean; moe: MixtureOfExperts;
}

export class GptOss implements Decoder {
  readonly kind = 'causal-lm';
  readonly info: ModelInfo;
  private readonly embed: LinearWeight; // the table as stored, or a tied output projection's int8/int4 copy
  private readonly layers: Layer[];
  private readonly norm: Tensor;
  private readonly lmHead: LinearWeight;
  private readonly freqs: RopeFrequencies;
  private readonly eps: number;
  private readonly window: number | null;

  constructor(c: HfConfig, w: Weights) {
    const info = (this.info = decoderInfo(c, 'GptOssForCausalLM'));
    const { hiddenSize: E, numHeads: Hq, numKvHeads: Hkv, headDim: D, vocabSize: V } = info;
    this.eps = num(c, 'rms_norm_eps', 1e-5, { min: 0 });
    this.freqs = ropeInvFreq(ropeConfig(c, D));
    this.window = slidingWindowOf(c);
    const types = Array.isArray(c.layer_types) ? (c.layer_types as string[]) : null;
    const experts = { E: count(c, 'num_local_experts'), k: count(c, 'num_experts_per_tok'), F: count(c, 'intermediate_size') };
    if (experts.k > experts.E) {
      throw new QkvError(`config.json: num_experts_per_tok (${experts.k}) must be ≤ num_local_experts (${experts.E})`);
    }
    const limit = num(c, 'swiglu_limit', 7, { min: 0, minExclusive: true });
    const table = w.table('model.embed_tokens.weight', [V, E]);
    // the output projection before the layers (Weights.embeddingTable says why)
    this.lmHead = lmHeadOf(c, w, table, V, E);
    this.embed = w.embeddingTable('model.embed_tokens.weight', table); // tied and quantized: one copy serves both
    this.layers = Array.from({ length: info.numLayers }, (_, l) => {
      const p = `model.layers.${l}.`;
      const a = `${p}self_attn.`;
      return {
        attnNorm: w.get(`${p}input_layernorm.weight`, [E]), mlpNorm: w.get(`${p}post_attention_layernorm.weight`, [E]),
        wq: w.matrix(`${a}q_proj.weight`, [Hq * D, E]), bq: w.get(`${a}q_proj.bias`, [Hq * D]),
        wk: w.matrix(`${a}k_proj.weight`, [Hkv * D, E]), bk: w.get(`${a}k_proj.bias`, [Hkv * D]),
        wv: w.matrix(`${a}v_proj.weight`, [Hkv * D, E]), bv: w.get(`${a}v_proj.bias`, [Hkv * D]),
        wo: w.matrix(`${a}o_proj.weight`, [E, Hq * D]), bo: w.get(`${a}o_proj.bias`, [E]),
        sinks: w.get(`${a}sinks`, [Hq]).toFloat32(),
        sliding: types ? types[l] === 'sliding_attention' : l % 2 === 0,
        moe: expertsOf(w, `${p}mlp.`, E, experts, limit),
      };
    });
    this.norm = w.get('model.norm.weight', [E]);
  }

  forward(ids: readonly (readonly number[])[], o: CausalForwardOptions = {}): { logits: Tensor; attentions?: Tensor[] } {
    return forwardOnCpu(this, ids, o);
  }

  /** The forward pass over DecoderOps (ops.ts); sinks and experts run on the CPU. */
  logits<X>(ops: DecoderOps<X>, ids: readonly (readonly number[])[], lastOnly: boolean): X {
    const x = decoderTrunk(ops, ids, this.embed, this.layers, (h: X, L, l) => this.block(ops, h, L, l), lastOnly);
    return ops.linear(ops.rmsNorm(x, this.norm, this.eps), this.lmHead); // [B, T, V]
  }

  // x + o_proj(Attention with sinks(RMSNorm(x))), then x + MoE(RMSNorm(x))
  private block<X>(ops: DecoderOps<X>, x: X, L: Layer, l: number): X {
    const { numHeads: Hq, numKvHeads: Hkv, headDim: D } = this.info;
    const attend: AttendSpec = {
      Hq, Hkv, D, rope: this.freqs, scale: 1 / Math.sqrt(D), causal: true, slidingWindow: L.sliding ? this.window : null,
      sinks: L.sinks,
    };
    const n = ops.rmsNorm(x, L.attnNorm, this.eps);
    const a = ops.attend(l, ops.linear(n, L.wq, L.bq), ops.linear(n, L.wk, L.bk), ops.linear(n, L.wv, L.bv), attend);
    x = ops.add(x, ops.linear(a, L.wo, L.bo)); // [B, T, E]
    return ops.add(x, ops.moe(ops.rmsNorm(x, L.mlpNorm, this.eps), L.moe));
  }
}

// the router and the experts of one layer; the experts' weights are stored [E, in, out] (x W), kept as [out, in] here
// (the stacked tensors are taken out of the weights, so only the transposed copies stay)
function expertsOf(w: Weights, p: string, H: number, x: { E: number; k: number; F: number }, limit: number): MixtureOfExperts {
  const { E, k, F } = x;
  if (!w.has(`${p}experts.gate_up_proj`) && w.has(`${p}experts.gate_up_proj_blocks`)) {
    throw new QkvError(`${w.source}: the experts are MXFP4-quantized (${p}experts.gate_up_proj_blocks and _scales, as OpenAI ` +
      'publishes gpt-oss); qkv reads experts in bf16, f16 or f32 only — save a dequantized copy first (transformers: ' +
      'Mxfp4Config(dequantize=True))');
  }
  const gateUp = w.take(`${p}experts.gate_up_proj`, [E, H, 2 * F]).reshape([E * H, 2 * F]);
  const down = w.take(`${p}experts.down_proj`, [E, F, H]).reshape([E * F, H]);
  const bGateUp = w.get(`${p}experts.gate_up_proj_bias`, [E, 2 * F]), bDown = w.get(`${p}experts.down_proj_bias`, [E, H]);
  const experts = Array.from({ length: E }, (_, e) => expertMlp(
    w.asFormat(gateUp.slice(0, e * H, (e + 1) * H).transpose(0, 1).contiguous()), // [2F, H]
    bGateUp.slice(0, e, e + 1).reshape([2 * F]),
    w.asFormat(down.slice(0, e * F, (e + 1) * F).transpose(0, 1).contiguous()), // [H, F]
    bDown.slice(0, e, e + 1).reshape([H]), F, limit));
  const router = { weight: w.matrix(`${p}router.weight`, [E, H]), bias: w.get(`${p}router.bias`, [E]) };
  return new MixtureOfExperts(router, softmaxTopK(k), experts);
}

// one expert: down(clampedSwiGlu(gate_up(x))) — a closure over its own weights only, not the stacked tensors
function expertMlp(wGU: LinearWeight, bGU: Tensor, wD: LinearWeight, bD: Tensor, F: number, limit: number): (x: Tensor) => Tensor {
  return (xe) => linear(clampedSwiGlu(linear(xe, wGU, bGU), F, limit), wD, bD);
}

// h = (u + 1) · g · σ(1.702 g) with g = min(gate, limit), u = clamp(up, ±limit); gate and up interleaved in gu [N, 2F]
function clampedSwiGlu(gu: Tensor, F: number, limit: number): Tensor {
  const a = gu.toFloat32();
  const N = a.length / (2 * F);
  const h = new Float32Array(N * F);
  for (let n = 0; n < N; n++) for (let f = 0; f < F; f++) {
    const g = Math.min(a[n * 2 * F + 2 * f], limit);
    const u = Math.min(Math.max(a[n * 2 * F + 2 * f + 1], -limit), limit);
    h[n * F + f] = (u + 1) * (g / (1 + Math.exp(-1.702 * g)));
  }
  return Tensor.from(h, [N, F]);
}

/** GptOssForCausalLM. */
export function gptOss(c: HfConfig, w: Weights): GptOss {
  return new GptOss(c, w);
}
