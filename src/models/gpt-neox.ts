// GPT-NeoX (Black et al. 2022, https://arxiv.org/abs/2204.06745; the Pythia suite), read next to transformers'
// modeling_gpt_neox.py. Its attention differs from Llama's in two ways:
//   partial rotary: RoPE turns only the first rotary_pct (here partial_rotary_factor) of each head's dims
//   parallel residual: x = x + Attention(LN₁(x)) + MLP(LN₂(x))   — both read the same x (use_parallel_residual;
//                      otherwise the usual x = x + Attention(LN₁(x));  x = x + MLP(LN₂(x)))
// and LayerNorms with biases, biased projections, a GELU MLP (not gated), a fused query_key_value whose rows are
// [head, (q, k, v), head_dim] (split into q, k, v at load), and no grouped-query attention.
import { activationKind } from '../nn/activations.js';
import { ropeInvFreq, type RopeFrequencies } from '../nn/positional/rope.js';
import type { LinearWeight } from '../tensor/quantize.js';
import type { Tensor } from '../tensor/tensor.js';
import { count, num, ropeConfig, type HfConfig } from './config.js';
import { decoderInfo } from './llama.js';
import type { CausalForwardOptions, ModelInfo } from './model.js';
import { decoderTrunk, forwardOnCpu, type AttendSpec, type Decoder, type DecoderOps } from './ops.js';
import type { Weights } from './weights.js';

interface Layer {
  ln1: [Tensor, Tensor]; ln2: [Tensor, Tensor];
  wq: LinearWeight; wk: LinearWeight; wv: LinearWeight; bq: Tensor | null; bk: Tensor | null; bv: Tensor | null;
  wo: LinearWeight; bo: Tensor | null; up: LinearWeight; bUp: Tensor; down: LinearWeight; bDown: Tensor;
}

export class GptNeoX implements Decoder {
  readonly kind = 'causal-lm';
  readonly info: ModelInfo;
  private readonly embed: LinearWeight; // the table as stored, or a tied output projection's int8/int4 copy
  private readonly layers: Layer[];
  private readonly norm: [Tensor, Tensor];
  private readonly lmHead: LinearWeight;
  private readonly freqs: RopeFrequencies;
  private readonly eps: number;
  private readonly act: string;
  private readonly parallel: boolean;

  constructor(c: HfConfig, w: Weights) {
    const info = (this.info = decoderInfo(c, 'GPTNeoXForCausalLM'));
    const { hiddenSize: E, numHeads: H, headDim: D, vocabSize: V } = info;
    const F = count(c, 'intermediate_size');
    this.eps = num(c, 'layer_norm_eps', 1e-5, { min: 0 });
    this.act = typeof c.hidden_act === 'string' ? c.hidden_act : 'gelu';
    activationKind(this.act); // an unknown name fails at load
    this.parallel = c.use_parallel_residual !== false;
    this.freqs = ropeInvFreq(ropeConfig(c, D)); // partial_rotary_factor: RoPE on the first dims of each head only
    const table = w.table('gpt_neox.embed_in.weight', [V, E]);
    const ln = (name: string): [Tensor, Tensor] => [w.get(`${name}.weight`, [E]), w.get(`${name}.bias`, [E])];
    // the output projection before the layers (Weights.embeddingTable says why)
    this.lmHead = c.tie_word_embeddings === true ? w.asFormat(table) : w.matrix('embed_out.weight', [V, E]);
    this.embed = w.embeddingTable('gpt_neox.embed_in.weight', table); // tied and quantized: one copy serves both
    this.layers = Array.from({ length: info.numLayers }, (_, l) => {
      const p = `gpt_neox.layers.${l}.`;
      splitQkv(w, `${p}attention.query_key_value`, H, D, E);
      return {
        ln1: ln(`${p}input_layernorm`), ln2: ln(`${p}post_attention_layernorm`),
        wq: w.matrix(`${p}attention.q.weight`, [H * D, E]), bq: w.optional(`${p}attention.q.bias`, [H * D]),
        wk: w.matrix(`${p}attention.k.weight`, [H * D, E]), bk: w.optional(`${p}attention.k.bias`, [H * D]),
        wv: w.matrix(`${p}attention.v.weight`, [H * D, E]), bv: w.optional(`${p}attention.v.bias`, [H * D]),
        wo: w.matrix(`${p}attention.dense.weight`, [E, H * D]), bo: w.optional(`${p}attention.dense.bias`, [E]),
        up: w.matrix(`${p}mlp.dense_h_to_4h.weight`, [F, E]), bUp: w.get(`${p}mlp.dense_h_to_4h.bias`, [F]),
        down: w.matrix(`${p}mlp.dense_4h_to_h.weight`, [E, F]), bDown: w.get(`${p}mlp.dense_4h_to_h.bias`, [E]),
      };
    });
    this.norm = ln('gpt_neox.final_layer_norm');
  }

  forward(ids: readonly (readonly number[])[], o: CausalForwardOptions = {}): { logits: Tensor; attentions?: Tensor[] } {
    return forwardOnCpu(this, ids, o);
  }

  /** The forward pass on any device (ops.ts). LayerNorm and GELU have no GPU kernels yet: GPT-NeoX runs on the CPU. */
  logits<X>(ops: DecoderOps<X>, ids: readonly (readonly number[])[], lastOnly: boolean): X {
    const { numHeads: H, headDim: D } = this.info;
    const attend: AttendSpec = { Hq: H, Hkv: H, D, rope: this.freqs, scale: 1 / Math.sqrt(D), causal: true, slidingWindow: null };
    const x = decoderTrunk(ops, ids, this.embed, this.layers, (h: X, L, l) => this.block(ops, h, L, l, attend), lastOnly);
    return ops.linear(ops.layerNorm(x, ...this.norm, this.eps), this.lmHead); // [B, T, V]
  }

  // parallel: x + Attention(LN₁(x)) + MLP(LN₂(x));  sequential: x' = x + Attention(LN₁(x)), x' + MLP(LN₂(x'))
  private block<X>(ops: DecoderOps<X>, x: X, L: Layer, l: number, attend: AttendSpec): X {
    const n = ops.layerNorm(x, ...L.ln1, this.eps);
    const q = ops.linear(n, L.wq, L.bq), k = ops.linear(n, L.wk, L.bk), v = ops.linear(n, L.wv, L.bv);
    const a = ops.linear(ops.attend(l, q, k, v, attend), L.wo, L.bo); // [B, T, E]
    const mlp = (t: X) => ops.linear(ops.act(ops.linear(ops.layerNorm(t, ...L.ln2, this.eps), L.up, L.bUp), this.act), L.down, L.bDown);
    if (this.parallel) return ops.add(ops.add(mlp(x), a), x);
    const y = ops.add(a, x);
    return ops.add(mlp(y), y);
  }
}

// query_key_value's rows (and bias) are [head, (q, k, v), head_dim]: q, k and v each take their rows of every head
function splitQkv(w: Weights, name: string, H: number, D: number, E: number): void {
  const base = name.slice(0, name.lastIndexOf('.') + 1);
  const weight = w.table(`${name}.weight`, [3 * H * D, E]).reshape([H, 3, D, E]);
  const bias = w.optional(`${name}.bias`, [3 * H * D])?.reshape([H, 3, D]);
  ['q', 'k', 'v'].forEach((part, i) => {
    w.tensors.set(`${base}${part}.weight`, weight.slice(1, i, i + 1).contiguous().reshape([H * D, E]));
    if (bias) w.tensors.set(`${base}${part}.bias`, bias.slice(1, i, i + 1).contiguous().reshape([H * D]));
  });
  w.tensors.delete(`${name}.weight`);
  w.tensors.delete(`${name}.bias`);
}

/** GPTNeoXForCausalLM. */
export function gptNeoX(c: HfConfig, w: Weights): GptNeoX {
  return new GptNeoX(c, w);
}
