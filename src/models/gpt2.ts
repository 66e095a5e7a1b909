// GPT-2 (Radford et al. 2019), read next to nanoGPT's model.py and transformers' modeling_gpt2.py:
//   x = wte(ids) + wpe(positions)                        learned absolute positions
//   for each block:  x = x + c_proj(Attention(split(c_attn(ln_1(x)))))       pre-LayerNorm, MHA
//                    x = x + mlp.c_proj(GELU_tanh(mlp.c_fc(ln_2(x))))
//   logits = ln_f(x) · wteᵀ                              tied embeddings
// The one odd case: GPT-2's layers are Conv1D, whose weight is [in, out] — the transpose of nn.Linear's [out, in] —
// so each weight is transposed once at load time.
import { add, gelu } from '../nn/activations.js';
import { linear } from '../nn/linear.js';
import { layerNorm } from '../nn/norm.js';
import { embedding } from '../nn/positional/learned.js';
import type { Tensor } from '../tensor/tensor.js';
import { modelAttention, splitHeads } from './attention-layer.js';
import { numOf, tokenId, tokenIds, type HfConfig } from './config.js';
import { QkvError } from '../errors.js';
import { checkCausalForward } from './inputs.js';
import { positionsOf } from './ops.js';
import type { CausalForwardOptions, CausalLM, ModelInfo } from './model.js';
import type { Weights } from './weights.js';

interface Block {
  ln1w: Tensor; ln1b: Tensor; attnW: Tensor; attnB: Tensor; projW: Tensor; projB: Tensor;
  ln2w: Tensor; ln2b: Tensor; fcW: Tensor; fcB: Tensor; fcProjW: Tensor; fcProjB: Tensor;
}

export class GPT2 implements CausalLM {
  readonly kind = 'causal-lm';
  readonly info: ModelInfo;
  private readonly wte: Tensor;
  private readonly wpe: Tensor;
  private readonly blocks: Block[];
  private readonly lnf: [Tensor, Tensor];
  private readonly eps: number;

  constructor(c: HfConfig, w: Weights) {
    const E = numOf(c, ['n_embd', 'hidden_size']);
    const H = numOf(c, ['n_head', 'num_attention_heads']);
    const V = numOf(c, ['vocab_size']);
    const P = numOf(c, ['n_positions', 'max_position_embeddings']);
    const F = numOf(c, ['n_inner'], 4 * E);
    if (E % H !== 0) throw new QkvError(`config.json: 'n_embd' (${E}) must be a multiple of 'n_head' (${H})`);
    this.info = {
      architecture: 'GPT2LMHeadModel', numLayers: numOf(c, ['n_layer', 'num_hidden_layers']), numHeads: H, numKvHeads: H,
      headDim: E / H, hiddenSize: E, vocabSize: V, maxPositions: P, eosTokenIds: tokenIds(c.eos_token_id),
      bosTokenId: tokenId(c, 'bos_token_id'), padTokenId: tokenId(c, 'pad_token_id'),
    };
    this.eps = numOf(c, ['layer_norm_epsilon'], 1e-5, { min: 0 });
    // GPT2LMHeadModel saves under "transformer.", a bare GPT2Model without it
    const pre = w.has('transformer.wte.weight') ? 'transformer.' : '';
    // Conv1D [in, out] → Linear [out, in]
    const conv = (name: string, inF: number, outF: number) => w.transposed(name, [inF, outF]);
    this.wte = w.get(`${pre}wte.weight`, [V, E]);
    this.wpe = w.get(`${pre}wpe.weight`, [P, E]);
    this.blocks = Array.from({ length: this.info.numLayers }, (_, l) => {
      const p = `${pre}h.${l}.`;
      return {
        ln1w: w.get(`${p}ln_1.weight`, [E]), ln1b: w.get(`${p}ln_1.bias`, [E]),
        attnW: conv(`${p}attn.c_attn.weight`, E, 3 * E), attnB: w.get(`${p}attn.c_attn.bias`, [3 * E]),
        projW: conv(`${p}attn.c_proj.weight`, E, E), projB: w.get(`${p}attn.c_proj.bias`, [E]),
        ln2w: w.get(`${p}ln_2.weight`, [E]), ln2b: w.get(`${p}ln_2.bias`, [E]),
        fcW: conv(`${p}mlp.c_fc.weight`, E, F), fcB: w.get(`${p}mlp.c_fc.bias`, [F]),
        fcProjW: conv(`${p}mlp.c_proj.weight`, F, E), fcProjB: w.get(`${p}mlp.c_proj.bias`, [E]),
      };
    });
    this.lnf = [w.get(`${pre}ln_f.weight`, [E]), w.get(`${pre}ln_f.bias`, [E])];
  }

  forward(ids: readonly (readonly number[])[], o: CausalForwardOptions = {}): { logits: Tensor; attentions?: Tensor[] } {
    const { hiddenSize: E, numHeads: H, headDim: D } = this.info;
    const [B, T] = checkCausalForward(ids, o, this.info.vocabSize, 'GPT-2 forward');
    const positions = positionsOf(ids, o);
    let x = add(embedding(this.wte, ids.flat()), embedding(this.wpe, positions, 'GPT-2 positions')).reshape([B, T, E]); // [B, T, E]
    const attentions: Tensor[] = [];
    this.blocks.forEach((L, l) => {
      const qkv = linear(layerNorm(x, L.ln1w, L.ln1b, this.eps), L.attnW, L.attnB); // [B, T, 3E]
      const q = splitHeads(qkv.slice(2, 0, E), H); // [B, H, T, D]
      const k = splitHeads(qkv.slice(2, E, 2 * E), H);
      const v = splitHeads(qkv.slice(2, 2 * E, 3 * E), H);
      const a = modelAttention({ q, k, v, cache: o.cache, layer: l, scale: 1 / Math.sqrt(D), causal: true, keyMask: o.attentionMask, returnWeights: o.outputAttentions });
      if (a.weights) attentions.push(a.weights);
      x = add(x, linear(a.out, L.projW, L.projB)); // [B, T, E]
      const h = gelu(linear(layerNorm(x, L.ln2w, L.ln2b, this.eps), L.fcW, L.fcB), 'tanh'); // [B, T, 4E]
      x = add(x, linear(h, L.fcProjW, L.fcProjB));
    });
    if (o.lastOnly) x = x.slice(1, T - 1).contiguous(); // [B, 1, E]
    const logits = linear(layerNorm(x, this.lnf[0], this.lnf[1], this.eps), this.wte); // [B, T, V]
    return { logits, attentions: o.outputAttentions ? attentions : undefined };
  }
}

/** GPT2LMHeadModel. */
export function gpt2(c: HfConfig, w: Weights): GPT2 {
  return new GPT2(c, w);
}
