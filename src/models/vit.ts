// Vision Transformer (Dosovitskiy et al. 2021, https://arxiv.org/abs/2010.11929), read next to transformers'
// modeling_vit.py. An image is cut into P×P patches, each projected to a token (a convolution with stride P):
//   x = [CLS; patch_1 W; …; patch_N W] + position        N = (H/P)·(W/P), row-major
//   for each layer:  x = x + dense(Attention(LN_before(x)));   x = x + dense(GELU(intermediate(LN_after(x))))
//   last_hidden_state = LayerNorm(x)
import { activation, add } from '../nn/activations.js';
import { linear } from '../nn/linear.js';
import { layerNorm } from '../nn/norm.js';
import { describeValue, QkvError } from '../errors.js';
import { fmtShape } from '../tensor/shape.js';
import { checkTensor, Tensor } from '../tensor/tensor.js';
import { modelAttention, splitHeads } from './attention-layer.js';
import { attentionShape, count, num, type HfConfig } from './config.js';
import type { EncoderInputs, EncoderModel, ModelInfo } from './model.js';
import type { Weights } from './weights.js';

type Ln = [Tensor, Tensor];
interface Layer { ln1: Ln; wq: Tensor; bq: Tensor; wk: Tensor; bk: Tensor; wv: Tensor; bv: Tensor; wo: Tensor; bo: Tensor; ln2: Ln; wi: Tensor; bi: Tensor; wout: Tensor; bout: Tensor }

export class ViT implements EncoderModel {
  readonly kind = 'encoder';
  readonly info: ModelInfo;
  private readonly patchW: Tensor; // [E, C·P·P] — the convolution as a matrix
  private readonly patchB: Tensor;
  private readonly cls: Tensor;
  private readonly posEmb: Tensor;
  private readonly layers: Layer[];
  private readonly lnf: Ln;
  private readonly eps: number;
  private readonly act: (x: Tensor) => Tensor;
  readonly patch: number;
  readonly image: number;
  readonly channels: number;

  constructor(c: HfConfig, w: Weights) {
    const E = count(c, 'hidden_size');
    const { numHeads: H } = attentionShape(c, E);
    const F = count(c, 'intermediate_size');
    this.patch = count(c, 'patch_size');
    this.image = count(c, 'image_size');
    this.channels = count(c, 'num_channels', 3);
    if (this.image % this.patch !== 0) {
      throw new QkvError(`config.json: 'image_size' (${this.image}) must be a multiple of 'patch_size' (${this.patch})`);
    }
    const N = (this.image / this.patch) ** 2;
    this.info = {
      architecture: 'ViTModel', numLayers: count(c, 'num_hidden_layers'), numHeads: H, numKvHeads: H, headDim: E / H,
      hiddenSize: E, vocabSize: 0, maxPositions: N + 1, eosTokenIds: [], bosTokenId: null, padTokenId: null,
    };
    this.eps = num(c, 'layer_norm_eps', 1e-12, { min: 0 });
    this.act = activation(String(c.hidden_act ?? 'gelu'));
    const pre = w.has('vit.embeddings.cls_token') ? 'vit.' : '';
    const ln = (p: string): Ln => [w.get(`${p}.weight`, [E]), w.get(`${p}.bias`, [E])];
    const [C, P] = [this.channels, this.patch];
    this.patchW = w.get(`${pre}embeddings.patch_embeddings.projection.weight`, [E, C, P, P]).reshape([E, C * P * P]);
    this.patchB = w.get(`${pre}embeddings.patch_embeddings.projection.bias`, [E]);
    this.cls = w.get(`${pre}embeddings.cls_token`, [1, 1, E]);
    this.posEmb = w.get(`${pre}embeddings.position_embeddings`, [1, N + 1, E]);
    this.layers = Array.from({ length: this.info.numLayers }, (_, l) => {
      const p = `${pre}encoder.layer.${l}.`;
      return {
        ln1: ln(`${p}layernorm_before`),
        wq: w.get(`${p}attention.attention.query.weight`, [E, E]), bq: w.get(`${p}attention.attention.query.bias`, [E]),
        wk: w.get(`${p}attention.attention.key.weight`, [E, E]), bk: w.get(`${p}attention.attention.key.bias`, [E]),
        wv: w.get(`${p}attention.attention.value.weight`, [E, E]), bv: w.get(`${p}attention.attention.value.bias`, [E]),
        wo: w.get(`${p}attention.output.dense.weight`, [E, E]), bo: w.get(`${p}attention.output.dense.bias`, [E]),
        ln2: ln(`${p}layernorm_after`),
        wi: w.get(`${p}intermediate.dense.weight`, [F, E]), bi: w.get(`${p}intermediate.dense.bias`, [F]),
        wout: w.get(`${p}output.dense.weight`, [E, F]), bout: w.get(`${p}output.dense.bias`, [E]),
      };
    });
    this.lnf = ln(`${pre}layernorm`);
  }

  /** Patches of pixels [B, C, H, W] as rows [B, N, C·P·P] in the convolution's (c, i, j) order. */
  #patches(px: Tensor): Tensor {
    const [B, C, Hh, Ww] = px.shape;
    const P = this.patch;
    if (px.rank !== 4 || C !== this.channels || Hh !== this.image || Ww !== this.image) {
      throw new QkvError(`ViT: pixelValues must be [B, ${this.channels}, ${this.image}, ${this.image}], got ${fmtShape(px.shape)}`);
    }
    const a = px.toFloat32();
    const [nh, nw] = [Hh / P, Ww / P];
    const out = new Float32Array(B * nh * nw * C * P * P);
    let o = 0;
    for (let b = 0; b < B; b++) for (let py = 0; py < nh; py++) for (let pxi = 0; pxi < nw; pxi++) {
      for (let c = 0; c < C; c++) for (let i = 0; i < P; i++) for (let j = 0; j < P; j++) {
        out[o++] = a[((b * C + c) * Hh + py * P + i) * Ww + pxi * P + j];
      }
    }
    return Tensor.from(out, [B, nh * nw, C * P * P]);
  }

  forward(inp: EncoderInputs): { lastHiddenState: Tensor; attentions?: Tensor[] } {
    if (typeof inp !== 'object' || inp === null) {
      throw new QkvError(`ViT: inputs must be an object { pixelValues }, got ${describeValue(inp)}`);
    }
    if (!inp.pixelValues) throw new QkvError('ViT: pixelValues are required');
    checkTensor(inp.pixelValues, 'ViT: pixelValues');
    if (!inp.pixelValues.toFloat32().every(Number.isFinite)) throw new QkvError('ViT: pixelValues hold a NaN or ±∞');
    const { hiddenSize: E, numHeads: H, headDim: D } = this.info;
    const tokens = linear(this.#patches(inp.pixelValues), this.patchW, this.patchB); // [B, N, E]
    const [B, N] = tokens.shape;
    // prepend CLS, add positions
    const x0 = new Float32Array(B * (N + 1) * E);
    const [t, cls, pos] = [tokens.toFloat32(), this.cls.toFloat32(), this.posEmb.toFloat32()];
    for (let b = 0; b < B; b++) {
      x0.set(cls, b * (N + 1) * E);
      x0.set(t.subarray(b * N * E, (b + 1) * N * E), (b * (N + 1) + 1) * E);
      for (let i = 0; i < (N + 1) * E; i++) x0[b * (N + 1) * E + i] += pos[i];
    }
    let x = Tensor.from(x0, [B, N + 1, E]); // [B, N+1, E]
    const attentions: Tensor[] = [];
    for (const L of this.layers) {
      const h = layerNorm(x, ...L.ln1, this.eps);
      const a = modelAttention({
        q: splitHeads(linear(h, L.wq, L.bq), H), k: splitHeads(linear(h, L.wk, L.bk), H), v: splitHeads(linear(h, L.wv, L.bv), H),
        scale: 1 / Math.sqrt(D), causal: false, returnWeights: inp.outputAttentions,
      });
      if (a.weights) attentions.push(a.weights);
      x = add(x, linear(a.out, L.wo, L.bo));
      x = add(x, linear(this.act(linear(layerNorm(x, ...L.ln2, this.eps), L.wi, L.bi)), L.wout, L.bout));
    }
    return { lastHiddenState: layerNorm(x, ...this.lnf, this.eps), attentions: inp.outputAttentions ? attentions : undefined };
  }
}

/** ViTModel. */
export function vit(c: HfConfig, w: Weights): ViT {
  return new ViT(c, w);
}
