// BERT (Devlin et al. 2019, https://arxiv.org/abs/1810.04805), the encoder, read next to transformers'
// modeling_bert.py:
//   x = LayerNorm(word[ids] + position[0..T−1] + token_type[types])
//   for each layer:  x = LayerNorm(x + dense(Attention(x)))          bidirectional, padding keys masked
//                    x = LayerNorm(x + dense(GELU(intermediate(x))))   post-norm
// Output: the last hidden state [B, T, E] (the pooler and task heads are left out).
import { activation, add } from '../nn/activations.js';
import { linear } from '../nn/linear.js';
import { layerNorm } from '../nn/norm.js';
import { embedding } from '../nn/positional/learned.js';
import { describeValue, QkvError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { modelAttention, splitHeads } from './attention-layer.js';
import { attentionShape, count, num, tokenId, type HfConfig } from './config.js';
import { checkIdRows, checkRows, isMaskValue, isPosition } from './inputs.js';
import type { EncoderInputs, EncoderModel, ModelInfo } from './model.js';
import type { Weights } from './weights.js';

type Ln = [Tensor, Tensor];
interface Layer { wq: Tensor; bq: Tensor; wk: Tensor; bk: Tensor; wv: Tensor; bv: Tensor; wo: Tensor; bo: Tensor; ln1: Ln; wi: Tensor; bi: Tensor; wout: Tensor; bout: Tensor; ln2: Ln }

export class Bert implements EncoderModel {
  readonly kind = 'encoder';
  readonly info: ModelInfo;
  private readonly word: Tensor;
  private readonly pos: Tensor;
  private readonly type: Tensor;
  private readonly embLn: Ln;
  private readonly layers: Layer[];
  private readonly eps: number;
  private readonly act: (x: Tensor) => Tensor;

  constructor(c: HfConfig, w: Weights) {
    const E = count(c, 'hidden_size');
    const { numHeads: H } = attentionShape(c, E);
    const F = count(c, 'intermediate_size');
    const V = count(c, 'vocab_size');
    const P = count(c, 'max_position_embeddings');
    this.info = {
      architecture: 'BertModel', numLayers: count(c, 'num_hidden_layers'), numHeads: H, numKvHeads: H, headDim: E / H,
      hiddenSize: E, vocabSize: V, maxPositions: P, eosTokenIds: [], bosTokenId: null, padTokenId: tokenId(c, 'pad_token_id'),
    };
    this.eps = num(c, 'layer_norm_eps', 1e-12, { min: 0 });
    this.act = activation(String(c.hidden_act ?? 'gelu'));
    // BertModel saves without a prefix, BertFor* heads under "bert."
    const pre = w.has('bert.embeddings.word_embeddings.weight') ? 'bert.' : '';
    const ln = (p: string): Ln => [w.get(`${p}.weight`, [E]), w.get(`${p}.bias`, [E])];
    this.word = w.get(`${pre}embeddings.word_embeddings.weight`, [V, E]);
    this.pos = w.get(`${pre}embeddings.position_embeddings.weight`, [P, E]);
    this.type = w.get(`${pre}embeddings.token_type_embeddings.weight`, [count(c, 'type_vocab_size', 2), E]);
    this.embLn = ln(`${pre}embeddings.LayerNorm`);
    this.layers = Array.from({ length: this.info.numLayers }, (_, l) => {
      const p = `${pre}encoder.layer.${l}.`;
      return {
        wq: w.get(`${p}attention.self.query.weight`, [E, E]), bq: w.get(`${p}attention.self.query.bias`, [E]),
        wk: w.get(`${p}attention.self.key.weight`, [E, E]), bk: w.get(`${p}attention.self.key.bias`, [E]),
        wv: w.get(`${p}attention.self.value.weight`, [E, E]), bv: w.get(`${p}attention.self.value.bias`, [E]),
        wo: w.get(`${p}attention.output.dense.weight`, [E, E]), bo: w.get(`${p}attention.output.dense.bias`, [E]),
        ln1: ln(`${p}attention.output.LayerNorm`),
        wi: w.get(`${p}intermediate.dense.weight`, [F, E]), bi: w.get(`${p}intermediate.dense.bias`, [F]),
        wout: w.get(`${p}output.dense.weight`, [E, F]), bout: w.get(`${p}output.dense.bias`, [E]),
        ln2: ln(`${p}output.LayerNorm`),
      };
    });
  }

  forward(inp: EncoderInputs): { lastHiddenState: Tensor; attentions?: Tensor[] } {
    if (typeof inp !== 'object' || inp === null) {
      throw new QkvError(`BERT forward: inputs must be an object { inputIds, … }, got ${describeValue(inp)}`);
    }
    const [B, T] = checkIdRows(inp.inputIds, 'BERT forward: inputIds', this.info.vocabSize);
    const ids = inp.inputIds!;
    checkRows(inp.attentionMask, 'BERT forward: attentionMask', B, T, isMaskValue, 'values 0 or 1', 'one per token');
    checkRows(inp.tokenTypeIds, 'BERT forward: tokenTypeIds', B, T, isPosition, 'integers ≥ 0', 'one per token');
    const { hiddenSize: E, numHeads: H, headDim: D } = this.info;
    const types = inp.tokenTypeIds?.flat() ?? new Array<number>(B * T).fill(0);
    const positions = ids.flatMap((row) => row.map((_, t) => t));
    const e = add(add(embedding(this.word, ids.flat()), embedding(this.pos, positions, 'BERT positions')), embedding(this.type, types, 'BERT token types'));
    let x = layerNorm(e, ...this.embLn, this.eps).reshape([B, T, E]); // [B, T, E]
    const attentions: Tensor[] = [];
    for (const L of this.layers) {
      const a = modelAttention({
        q: splitHeads(linear(x, L.wq, L.bq), H), k: splitHeads(linear(x, L.wk, L.bk), H), v: splitHeads(linear(x, L.wv, L.bv), H),
        scale: 1 / Math.sqrt(D), causal: false, keyMask: inp.attentionMask, returnWeights: inp.outputAttentions,
      });
      if (a.weights) attentions.push(a.weights);
      x = layerNorm(add(x, linear(a.out, L.wo, L.bo)), ...L.ln1, this.eps); // [B, T, E]
      x = layerNorm(add(x, linear(this.act(linear(x, L.wi, L.bi)), L.wout, L.bout)), ...L.ln2, this.eps);
    }
    return { lastHiddenState: x, attentions: inp.outputAttentions ? attentions : undefined };
  }
}

/** BertModel. */
export function bert(c: HfConfig, w: Weights): Bert {
  return new Bert(c, w);
}
