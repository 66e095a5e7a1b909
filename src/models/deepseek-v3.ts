// DeepSeek-V3 (DeepSeek-AI 2024, https://arxiv.org/abs/2412.19437), read next to transformers' modeling_deepseek_v3.py.
// Llama-shaped (pre-norm RMSNorm, SwiGLU) with these differences:
//   attention is multi-head latent attention (nn/mla.ts): q through a low-rank bottleneck, k and v from one shared
//   latent plus a decoupled RoPE key (interleaved pairs) shared by every head; run absorbed by default — the KV
//   cache then holds only the latent and the RoPE key — or plain (`mla = 'plain'`), with the same numbers
//   softmax scale = (qk_nope + qk_rope)^(−1/2) · mscale(factor, mscale_all_dim)²         (YaRN's correction)
//   after the first first_k_dense_replace layers the MLP is a mixture of experts (nn/moe.ts): sigmoid router scores,
//   top-k chosen with a bias correction (within the top groups), weights normalised and scaled, plus shared experts
import { QkvError } from '../errors.js';
import { gatedLinear, linear } from '../nn/linear.js';
import { LatentAttention, type MlaProjections } from '../nn/mla.js';
import { MixtureOfExperts, topK, type Routing } from '../nn/moe.js';
import { ropeInvFreq, yarnMscale, type RopeFrequencies } from '../nn/positional/rope.js';
import type { LinearWeight } from '../tensor/quantize.js';
import type { Tensor } from '../tensor/tensor.js';
import { count, num, ropeConfig, type HfConfig } from './config.js';
import { decoderInfo, lmHeadOf } from './llama.js';
import type { CausalForwardOptions, ModelInfo } from './model.js';
import { decoderTrunk, forwardOnCpu, type AttendSpec, type Decoder, type DecoderOps } from './ops.js';
import type { Weights } from './weights.js';

interface Mlp { gate: LinearWeight; up: LinearWeight; down: LinearWeight }
interface Layer { attnNorm: Tensor; mlpNorm: Tensor; mla: LatentAttention; wo: LinearWeight; mlp: Mlp | MixtureOfExperts }

export class DeepseekV3 implements Decoder {
  readonly kind = 'causal-lm';
  readonly info: ModelInfo;
  /** How attention runs: 'absorbed' (the cache keeps latent + RoPE key) or 'plain' (k, v expanded per head). */
  mla: 'absorbed' | 'plain' = 'absorbed';
  private readonly embed: LinearWeight; // the table as stored, or a tied output projection's int8/int4 copy
  private readonly layers: Layer[];
  private readonly norm: Tensor;
  private readonly lmHead: LinearWeight;
  private readonly freqs: RopeFrequencies;
  private readonly eps: number;
  private readonly scale: number;

  constructor(c: HfConfig, w: Weights) {
    const info = (this.info = decoderInfo(c, 'DeepseekV3ForCausalLM'));
    const { hiddenSize: E, numHeads: H, vocabSize: V } = info;
    const sizes = {
      H, qRank: c.q_lora_rank === null || c.q_lora_rank === undefined ? null : count(c, 'q_lora_rank'), kvRank: count(c, 'kv_lora_rank'),
      nope: count(c, 'qk_nope_head_dim'), rope: count(c, 'qk_rope_head_dim'), dv: count(c, 'v_head_dim'),
    };
    this.eps = num(c, 'rms_norm_eps', 1e-6, { min: 0 });
    const rope = ropeConfig(c, sizes.rope); // RoPE turns the decoupled key's dims only
    this.freqs = ropeInvFreq(rope);
    // YaRN's mscale(factor, mscale_all_dim)², applied to the softmax scale (not to cos/sin, whose factor is then 1)
    const m = rope.ropeType === 'yarn' && rope.mscaleAllDim ? yarnMscale(rope.factor ?? 1, rope.mscaleAllDim) : 1;
    this.scale = (sizes.nope + sizes.rope) ** -0.5 * m * m;
    if (!(this.scale > 0) || !Number.isFinite(Math.fround(this.scale))) {
      const why = `YaRN's mscale_all_dim ${rope.mscaleAllDim} makes the softmax scale ${this.scale}`;
      throw new QkvError(`config.json: ${why}; it must be finite and > 0`);
    }
    const F = count(c, 'intermediate_size');
    const dense = num(c, 'first_k_dense_replace', 3, { integer: true, min: 0 }); // the first layers keep a dense MLP
    const table = w.table('model.embed_tokens.weight', [V, E]);
    // the output projection before the layers (Weights.embeddingTable says why)
    this.lmHead = lmHeadOf(c, w, table, V, E);
    this.embed = w.embeddingTable('model.embed_tokens.weight', table); // tied and quantized: one copy serves both
    this.layers = Array.from({ length: info.numLayers }, (_, l) => {
      const p = `model.layers.${l}.`;
      const a = `${p}self_attn.`;
      const qk = sizes.nope + sizes.rope;
      const mla = new LatentAttention(sizes, {
        qA: sizes.qRank ? w.matrix(`${a}q_a_proj.weight`, [sizes.qRank, E]) : null,
        qANorm: sizes.qRank ? w.get(`${a}q_a_layernorm.weight`, [sizes.qRank]) : null,
        qB: sizes.qRank ? w.matrix(`${a}q_b_proj.weight`, [H * qk, sizes.qRank]) : null,
        q: sizes.qRank ? null : w.matrix(`${a}q_proj.weight`, [H * qk, E]),
        kvA: w.matrix(`${a}kv_a_proj_with_mqa.weight`, [sizes.kvRank + sizes.rope, E]),
        kvANorm: w.get(`${a}kv_a_layernorm.weight`, [sizes.kvRank]),
        kvB: w.get(`${a}kv_b_proj.weight`, [H * (sizes.nope + sizes.dv), sizes.kvRank]),
      });
      return {
        attnNorm: w.get(`${p}input_layernorm.weight`, [E]), mlpNorm: w.get(`${p}post_attention_layernorm.weight`, [E]),
        mla, wo: w.matrix(`${a}o_proj.weight`, [E, H * sizes.dv]),
        mlp: l < dense ? mlpOf(w, `${p}mlp.`, E, F) : expertsOf(w, `${p}mlp.`, E, c),
      };
    });
    this.norm = w.get('model.norm.weight', [E]);
  }

  forward(ids: readonly (readonly number[])[], o: CausalForwardOptions = {}): { logits: Tensor; attentions?: Tensor[] } {
    return forwardOnCpu(this, ids, o);
  }

  /** The forward pass over DecoderOps (ops.ts); MLA's projections and the experts run on the CPU. */
  logits<X>(ops: DecoderOps<X>, ids: readonly (readonly number[])[], lastOnly: boolean): X {
    const x = decoderTrunk(ops, ids, this.embed, this.layers, (h: X, L, l) => this.block(ops, h, L, l), lastOnly);
    return ops.linear(ops.rmsNorm(x, this.norm, this.eps), this.lmHead); // [B, T, V]
  }

  // x + o_proj(MLA(RMSNorm(x))), then x + MLP or MoE(RMSNorm(x))
  private block<X>(ops: DecoderOps<X>, x: X, L: Layer, l: number): X {
    const absorbed = this.mla === 'absorbed';
    let p: MlaProjections | null = null;
    const [q, k, v] = ops.host(ops.rmsNorm(x, L.attnNorm, this.eps), (n) => {
      p = absorbed ? L.mla.absorbed(n) : L.mla.plain(n);
      return [p.q, p.k, p.v];
    }, 'multi-head latent attention');
    const { Hkv, D } = p!;
    const attend: AttendSpec = {
      Hq: this.info.numHeads, Hkv, D, rope: this.freqs, ropeStyle: 'interleaved', scale: this.scale, causal: true,
      slidingWindow: null, valuesInKeys: absorbed,
    };
    let a = ops.attend(l, q, k, v, attend); // [B, T, H·dv], or H·kv_lora_rank absorbed
    if (absorbed) [a] = ops.host(a, (o) => [L.mla.expand(o)], 'multi-head latent attention'); // W_uv per head
    x = ops.add(x, ops.linear(a, L.wo));
    const m = ops.rmsNorm(x, L.mlpNorm, this.eps);
    const dense = (d: Mlp) => ops.linear(ops.gatedLinear(m, d.gate, d.up, 'silu'), d.down);
    const mlp = L.mlp instanceof MixtureOfExperts ? ops.moe(m, L.mlp) : dense(L.mlp);
    return ops.add(x, mlp);
  }
}

function mlpOf(w: Weights, p: string, E: number, F: number): Mlp {
  const [gate, up] = [w.matrix(`${p}gate_proj.weight`, [F, E]), w.matrix(`${p}up_proj.weight`, [F, E])];
  return { gate, up, down: w.matrix(`${p}down_proj.weight`, [E, F]) };
}

// the routed experts (SwiGLU each), the shared experts (one SwiGLU of n_shared · moe_intermediate_size) and the router
function expertsOf(w: Weights, p: string, E: number, c: HfConfig): MixtureOfExperts {
  const [n, k, F] = [count(c, 'n_routed_experts'), count(c, 'num_experts_per_tok'), count(c, 'moe_intermediate_size')];
  const [groups, topGroups] = [count(c, 'n_group', 1), count(c, 'topk_group', 1)];
  if (k > n || n % groups !== 0 || topGroups > groups) {
    throw new QkvError(`config.json: experts ${n}, per token ${k}, groups ${groups} (top ${topGroups}) do not fit together`);
  }
  const swiglu = (m: Mlp) => (x: Tensor) => linear(gatedLinear(x, m.gate, m.up, 'silu'), m.down);
  const experts = Array.from({ length: n }, (_, e) => swiglu(mlpOf(w, `${p}experts.${e}.`, E, F)));
  const shared = c.n_shared_experts ? swiglu(mlpOf(w, `${p}shared_experts.`, E, F * count(c, 'n_shared_experts'))) : null;
  const bias = w.get(`${p}gate.e_score_correction_bias`, [n]).toFloat32();
  const route = sigmoidRouting({ k, groups, topGroups, bias, norm: c.norm_topk_prob === true, scale: num(c, 'routed_scaling_factor', 1) });
  return new MixtureOfExperts({ weight: w.matrix(`${p}gate.weight`, [n, E]), bias: null }, route, experts, shared);
}

/**
 * DeepSeek-V3's router: scores σ(logits); the experts are chosen by score + bias (the load-balancing correction),
 * only among the topGroups groups whose two best biased scores sum highest; their weights are the unbiased scores,
 * normalised to sum 1 (norm_topk_prob) and multiplied by routed_scaling_factor.
 */
function sigmoidRouting(o: { k: number; groups: number; topGroups: number; bias: Float32Array; norm: boolean; scale: number }):
  (logits: Float32Array) => Routing {
  return (logits) => {
    const n = logits.length, per = n / o.groups;
    const scores = Array.from(logits, (x) => 1 / (1 + Math.exp(-x)));
    const choice = scores.map((s, e) => s + o.bias[e]);
    // a group's score: the sum of its two best biased scores
    const best2 = (g: number) => topK(choice.slice(g * per, (g + 1) * per), 2).reduce((a, i) => a + choice[g * per + i], 0);
    const groupScore = Array.from({ length: o.groups }, (_, g) => best2(g));
    const kept = new Set(topK(groupScore, o.topGroups));
    const masked = choice.map((s, e) => (kept.has(Math.floor(e / per)) ? s : 0));
    const experts = topK(masked, o.k);
    let weights = experts.map((e) => scores[e]);
    if (o.norm) { const sum = weights.reduce((a, b) => a + b, 0) + 1e-20; weights = weights.map((x) => x / sum); }
    return { experts, weights: weights.map((x) => x * o.scale) };
  };
}

/** DeepseekV3ForCausalLM. */
export function deepseekV3(c: HfConfig, w: Weights): DeepseekV3 {
  return new DeepseekV3(c, w);
}
