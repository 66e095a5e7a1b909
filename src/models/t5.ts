// T5 (Raffel et al. 2020, https://arxiv.org/abs/1910.10683), encoder-decoder, read next to transformers'
// modeling_t5.py. Its attention differs from the others in three ways: no 1/√d scaling (folded into the
// initialisation), no absolute positions — a learned bias per relative-position bucket and head, computed by the
// first layer and shared by all (bidirectional buckets in the encoder, causal ones in the decoder) — and an RMS
// LayerNorm without mean or bias.
//   encoder:  x = x + o(SelfAttn(norm(x)) + bias);  x = x + FFN(norm(x));  hidden = norm(x)
//   decoder:  y = y + o(CausalSelfAttn(norm(y)) + bias);  y = y + o(CrossAttn(norm(y), hidden));  y = y + FFN(norm(y))
//   logits = norm(y) · d_model^(−1/2) · sharedᵀ   (the rescale applies with tied embeddings)
// FFN is ReLU (T5) or gated GELU (T5 v1.1, "gated-gelu").
import { describeValue, QkvError } from '../errors.js';
import { activation, add, mul } from '../nn/activations.js';
import { linear } from '../nn/linear.js';
import { rmsNorm } from '../nn/norm.js';
import { embedding } from '../nn/positional/learned.js';
import { t5RelativeBias } from '../nn/positional/t5-bucket.js';
import { fmtShape } from '../tensor/shape.js';
import { checkTensor, Tensor } from '../tensor/tensor.js';
import type { KVCache } from '../cache/kv-cache.js';
import { modelAttention, splitHeads } from './attention-layer.js';
import { checkTied, count, num, tokenId, tokenIds, type HfConfig } from './config.js';
import { checkCache, checkIdRows, checkRows, isMaskValue } from './inputs.js';
import type { ModelInfo, Seq2SeqLM } from './model.js';
import type { Weights } from './weights.js';

interface Attn { q: Tensor; k: Tensor; v: Tensor; o: Tensor; norm: Tensor }
interface Ffn { wi: Tensor | null; wi0: Tensor | null; wi1: Tensor | null; wo: Tensor; norm: Tensor }
interface Block { self: Attn; cross: Attn | null; ffn: Ffn }
type Rows = readonly (readonly number[])[];

export class T5 implements Seq2SeqLM {
  readonly kind = 'seq2seq';
  readonly info: ModelInfo & { decoderStartTokenId: number };
  private readonly shared: Tensor;
  private readonly lmHead: Tensor;
  private readonly tied: boolean;
  private readonly encoder: Block[];
  private readonly decoder: Block[];
  private readonly encNorm: Tensor;
  private readonly decNorm: Tensor;
  private readonly encBias: Tensor;
  private readonly decBias: Tensor;
  private readonly eps: number;
  private readonly maxDistance: number;
  private readonly act: (x: Tensor) => Tensor;

  constructor(c: HfConfig, w: Weights) {
    const E = count(c, 'd_model');
    const H = count(c, 'num_heads');
    const Dk = count(c, 'd_kv');
    const F = count(c, 'd_ff');
    const V = count(c, 'vocab_size');
    const nEnc = count(c, 'num_layers');
    const nDec = count(c, 'num_decoder_layers', nEnc);
    this.info = {
      architecture: 'T5ForConditionalGeneration', numLayers: nDec, numHeads: H, numKvHeads: H, headDim: Dk, hiddenSize: E,
      vocabSize: V, maxPositions: Infinity, eosTokenIds: tokenIds(c.eos_token_id), bosTokenId: null,
      padTokenId: tokenId(c, 'pad_token_id'),
      decoderStartTokenId: num(c, 'decoder_start_token_id', 0, { integer: true, min: 0, max: V - 1 }),
    };
    this.eps = num(c, 'layer_norm_epsilon', 1e-6, { min: 0 });
    this.maxDistance = count(c, 'relative_attention_max_distance', 128);
    const proj = String(c.feed_forward_proj ?? 'relu');
    this.act = activation(proj === 'gated-gelu' ? 'gelu_new' : proj.replace('gated-', ''));
    const nb = count(c, 'relative_attention_num_buckets', 32);
    const attn = (p: string): Attn => ({
      q: w.get(`${p}.q.weight`, [H * Dk, E]), k: w.get(`${p}.k.weight`, [H * Dk, E]), v: w.get(`${p}.v.weight`, [H * Dk, E]),
      o: w.get(`${p}.o.weight`, [E, H * Dk]), norm: w.get(`${p.replace(/\.(SelfAttention|EncDecAttention)$/, '')}.layer_norm.weight`, [E]),
    });
    const ffn = (p: string): Ffn => ({
      wi: w.optional(`${p}.DenseReluDense.wi.weight`, [F, E]), wi0: w.optional(`${p}.DenseReluDense.wi_0.weight`, [F, E]),
      wi1: w.optional(`${p}.DenseReluDense.wi_1.weight`, [F, E]), wo: w.get(`${p}.DenseReluDense.wo.weight`, [E, F]),
      norm: w.get(`${p}.layer_norm.weight`, [E]),
    });
    this.shared = w.get('shared.weight', [V, E]);
    this.encoder = Array.from({ length: nEnc }, (_, l) => ({
      self: attn(`encoder.block.${l}.layer.0.SelfAttention`), cross: null, ffn: ffn(`encoder.block.${l}.layer.1`),
    }));
    this.decoder = Array.from({ length: nDec }, (_, l) => ({
      self: attn(`decoder.block.${l}.layer.0.SelfAttention`), cross: attn(`decoder.block.${l}.layer.1.EncDecAttention`),
      ffn: ffn(`decoder.block.${l}.layer.2`),
    }));
    for (const b of [...this.encoder, ...this.decoder]) {
      if (!b.ffn.wi && !(b.ffn.wi0 && b.ffn.wi1)) throw new QkvError(`${w.source}: T5 feed-forward needs DenseReluDense.wi or wi_0/wi_1`);
    }
    this.encNorm = w.get('encoder.final_layer_norm.weight', [E]);
    this.decNorm = w.get('decoder.final_layer_norm.weight', [E]);
    this.encBias = w.get('encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight', [nb, H]);
    this.decBias = w.get('decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight', [nb, H]);
    checkTied(c, w.has('lm_head.weight'), w.source);
    this.tied = c.tie_word_embeddings !== false;
    this.lmHead = this.tied || !w.has('lm_head.weight') ? this.shared : w.get('lm_head.weight', [V, E]);
  }

  #norm(x: Tensor, g: Tensor): Tensor { return rmsNorm(x, g, this.eps); }

  #ff(x: Tensor, f: Ffn): Tensor {
    const n = this.#norm(x, f.norm);
    const h = f.wi ? this.act(linear(n, f.wi)) : mul(this.act(linear(n, f.wi0!)), linear(n, f.wi1!)); // [B, T, F]
    return add(x, linear(h, f.wo));
  }

  /** One attention sub-layer: x + o(Attention(norm(x) → q, source → k, v)). */
  #attend(x: Tensor, a: Attn, source: Tensor | null, o: { bias?: Tensor; causal: boolean; keyMask?: Rows; cache?: KVCache; layer?: number; weights?: Tensor[] }): Tensor {
    const H = this.info.numHeads;
    const n = this.#norm(x, a.norm);
    const src = source ?? n;
    const k = splitHeads(linear(src, a.k), H); // [B, H, S, Dk]
    const v = splitHeads(linear(src, a.v), H);
    const r = modelAttention({ q: splitHeads(linear(n, a.q), H), k, v, cache: o.cache, layer: o.layer, scale: 1, causal: o.causal,
      keyMask: o.keyMask, bias: o.bias, returnWeights: !!o.weights });
    if (r.weights) o.weights!.push(r.weights);
    return add(x, linear(r.out, a.o));
  }

  encode(ids: Rows, mask?: Rows, outputAttentions = false): { hidden: Tensor; attentions?: Tensor[] } {
    const [B, T] = checkIdRows(ids, 'T5 encode: ids', this.info.vocabSize);
    checkRows(mask, 'T5 encode: attentionMask', B, T, isMaskValue, 'values 0 or 1', 'one per token');
    let x = embedding(this.shared, ids.flat()).reshape([B, T, this.info.hiddenSize]); // [B, T, E]
    const bias = t5RelativeBias(this.encBias, T, T, true, this.maxDistance); // [1, H, T, T], shared by all layers
    const weights: Tensor[] | undefined = outputAttentions ? [] : undefined;
    for (const b of this.encoder) x = this.#ff(this.#attend(x, b.self, null, { bias, causal: false, keyMask: mask, weights }), b.ffn);
    return { hidden: this.#norm(x, this.encNorm), attentions: weights };
  }

  decode(ids: Rows, hidden: Tensor, o: { attentionMask?: Rows; cache?: KVCache; outputAttentions?: boolean; lastOnly?: boolean } = {}):
    { logits: Tensor; attentions?: Tensor[]; crossAttentions?: Tensor[] } {
    const [B, T] = checkIdRows(ids, 'T5 decode: ids', this.info.vocabSize);
    checkTensor(hidden, 'T5 decode: hidden');
    if (hidden.rank !== 3 || hidden.shape[0] !== B || hidden.shape[2] !== this.info.hiddenSize) {
      const want = `[${B}, S, ${this.info.hiddenSize}]`;
      throw new QkvError(`T5 decode: hidden must be the encoder's output ${want}, got ${fmtShape(hidden.shape)}`);
    }
    if (typeof o !== 'object' || o === null) throw new QkvError(`T5 decode: options must be an object, got ${describeValue(o)}`);
    checkCache(o.cache, 'T5 decode');
    checkRows(o.attentionMask, 'T5 decode: attentionMask', B, hidden.shape[1], isMaskValue, 'values 0 or 1', 'one per encoder token');
    const E = this.info.hiddenSize;
    const past = o.cache?.length(0) ?? 0;
    let y = embedding(this.shared, ids.flat()).reshape([B, T, E]); // [B, T, E]
    const bias = t5RelativeBias(this.decBias, T, past + T, false, this.maxDistance, past); // [1, H, T, S]
    const self: Tensor[] | undefined = o.outputAttentions ? [] : undefined;
    const cross: Tensor[] | undefined = o.outputAttentions ? [] : undefined;
    this.decoder.forEach((b, l) => {
      y = this.#attend(y, b.self, null, { bias, causal: true, cache: o.cache, layer: l, weights: self });
      y = this.#attend(y, b.cross!, hidden, { causal: false, keyMask: o.attentionMask, weights: cross });
      y = this.#ff(y, b.ffn);
    });
    if (o.lastOnly) y = y.slice(1, T - 1).contiguous();
    let h = this.#norm(y, this.decNorm);
    if (this.tied) h = Tensor.from(h.toFloat32().map((v) => v * E ** -0.5), h.shape); // rescale before the tied head
    return { logits: linear(h, this.lmHead), attentions: self, crossAttentions: cross };
  }
}

/** T5ForConditionalGeneration. */
export function t5(c: HfConfig, w: Weights): T5 {
  return new T5(c, w);
}
