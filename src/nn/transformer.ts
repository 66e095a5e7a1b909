// Transformer blocks in torch.nn.TransformerEncoderLayer / DecoderLayer's arrangement (Vaswani et al. 2017, §3.1):
//   post-norm:  x = norm1(x + SelfAttn(x));            x = norm2(x + FFN(x))
//   pre-norm:   x = x + SelfAttn(norm1(x));            x = x + FFN(norm2(x))       (GPT-2, Llama)
//   decoder:    masked self-attention, then cross-attention over the encoder's memory, then FFN (three norms).
//   FFN:        W2 act(W1 x + b1) + b2,   or SwiGLU: W_down (SiLU(W_gate x) ⊙ W_up x)   (Shazeer 2020)
// Inference only (no dropout). Layers take batch-first [B, T, E] tensors.
import { checkHasMethod, describeValue, QkvError } from '../errors.js';
import { checkWeight, Tensor } from '../tensor/tensor.js';
import { activation, add, mul, silu } from './activations.js';
import { linear } from './linear.js';
import { MultiheadAttention, type MhaForwardOptions } from './mha.js';
import { LayerNorm, RMSNorm } from './norm.js';
import { Rng } from './random.js';

/** A position-wise feed-forward network. */
export interface FeedForward { forward(x: Tensor): Tensor }

/** W2 act(W1 x + b1) + b2. */
export class MLP implements FeedForward {
  constructor(readonly w1: Tensor, readonly b1: Tensor | null, readonly w2: Tensor, readonly b2: Tensor | null, readonly act = 'relu') {
    checkWeight(w1, 'MLP: w1');
    checkWeight(w2, 'MLP: w2');
    activation(act); // a QkvError now for an unknown name, not at the first forward
  }
  forward(x: Tensor): Tensor {
    const h = activation(this.act)(linear(x, this.w1, this.b1, 'MLP linear1')); // [B, T, dff]
    return linear(h, this.w2, this.b2, 'MLP linear2'); // [B, T, E]
  }
}

/** SwiGLU: W_down (SiLU(W_gate x) ⊙ W_up x), as in Llama's MLP. */
export class SwiGLU implements FeedForward {
  constructor(readonly gate: Tensor, readonly up: Tensor, readonly down: Tensor) {
    for (const [n, w] of [['gate', gate], ['up', up], ['down', down]] as const) checkWeight(w, `SwiGLU: ${n}`);
  }
  forward(x: Tensor): Tensor {
    const h = mul(silu(linear(x, this.gate, null, 'SwiGLU gate')), linear(x, this.up, null, 'SwiGLU up')); // [B, T, dff]
    return linear(h, this.down, null, 'SwiGLU down'); // [B, T, E]
  }
}

type Norm = LayerNorm | RMSNorm;

/** Throws unless each submodule has a forward() and normFirst is a boolean (JavaScript callers are not type-checked). */
function checkModules(modules: Record<string, unknown>, normFirst: unknown, what: string): void {
  for (const [n, m] of Object.entries(modules)) checkHasMethod(m, 'forward', `${what}: ${n}`);
  if (typeof normFirst !== 'boolean') throw new QkvError(`${what}: normFirst must be a boolean, got ${describeValue(normFirst)}`);
}

/** Encoder layer: self-attention + FFN, each with a residual connection and a norm (post- or pre-norm). */
export class TransformerEncoderLayer {
  constructor(readonly selfAttn: MultiheadAttention, readonly ffn: FeedForward, readonly norm1: Norm, readonly norm2: Norm,
    readonly normFirst = false) {
    checkModules({ selfAttn, ffn, norm1, norm2 }, normFirst, 'TransformerEncoderLayer');
  }

  forward(x: Tensor, o: MhaForwardOptions = {}): Tensor {
    const sa = (y: Tensor) => this.selfAttn.forward(y, y, y, { ...o, needWeights: false }).out;
    if (this.normFirst) {
      const h = add(x, sa(this.norm1.forward(x))); // [B, T, E]
      return add(h, this.ffn.forward(this.norm2.forward(h)));
    }
    const h = this.norm1.forward(add(x, sa(x))); // [B, T, E]
    return this.norm2.forward(add(h, this.ffn.forward(h)));
  }
}

/** Decoder layer: masked self-attention, cross-attention over `memory`, FFN — three residuals and norms. */
export class TransformerDecoderLayer {
  constructor(readonly selfAttn: MultiheadAttention, readonly crossAttn: MultiheadAttention, readonly ffn: FeedForward,
    readonly norm1: Norm, readonly norm2: Norm, readonly norm3: Norm, readonly normFirst = false) {
    checkModules({ selfAttn, crossAttn, ffn, norm1, norm2, norm3 }, normFirst, 'TransformerDecoderLayer');
  }

  /** `tgt` [B, T, E] attends causally to itself and fully to `memory` [B, S, E] (minus memoryKeyPaddingMask). */
  forward(tgt: Tensor, memory: Tensor, o: { causal?: boolean; tgtKeyPaddingMask?: Tensor; memoryKeyPaddingMask?: Tensor } = {}): Tensor {
    const sa = (y: Tensor) => this.selfAttn.forward(y, y, y, { isCausal: o.causal ?? true, keyPaddingMask: o.tgtKeyPaddingMask, needWeights: false }).out;
    const ca = (y: Tensor) => this.crossAttn.forward(y, memory, memory, { keyPaddingMask: o.memoryKeyPaddingMask, needWeights: false }).out;
    let x = tgt;
    if (this.normFirst) {
      x = add(x, sa(this.norm1.forward(x)));
      x = add(x, ca(this.norm2.forward(x)));
      return add(x, this.ffn.forward(this.norm3.forward(x)));
    }
    x = this.norm1.forward(add(x, sa(x)));
    x = this.norm2.forward(add(x, ca(x)));
    return this.norm3.forward(add(x, this.ffn.forward(x)));
  }
}

/** Random weights (uniform ±1/√fan_in, like torch's default init) for examples, tests and the lab. */
export function randomEncoderLayer(dModel: number, numHeads: number, dFF: number, seed = 0, normFirst = false): TransformerEncoderLayer {
  for (const [n, x] of [['dModel', dModel], ['numHeads', numHeads], ['dFF', dFF]] as const) {
    if (!Number.isSafeInteger(x) || x < 1) throw new QkvError(`randomEncoderLayer: ${n} must be an integer ≥ 1, got ${String(x)}`);
  }
  // its largest matrices hold dModel² and dFF · dModel numbers: at most 2^26 each (256 MiB; dFF = 10⁹ had run out of memory)
  if (dModel * dModel > 2 ** 26 || dFF * dModel > 2 ** 26) {
    throw new QkvError(`randomEncoderLayer: dModel² and dFF · dModel must be ≤ 2^26, got dModel ${dModel}, dFF ${dFF}`);
  }
  if (!Number.isSafeInteger(seed)) throw new QkvError(`randomEncoderLayer: seed must be an integer, got ${String(seed)}`);
  const rng = new Rng(seed);
  const w = (rows: number, cols: number) => {
    const a = 1 / Math.sqrt(cols);
    return Tensor.from(Float32Array.from({ length: rows * cols }, () => (rng.uniform() * 2 - 1) * a), cols === 1 ? [rows] : [rows, cols]);
  };
  const E = dModel;
  const attn = new MultiheadAttention({ embedDim: E, numHeads, batchFirst: true },
    { wq: w(E, E), wk: w(E, E), wv: w(E, E), bq: w(E, 1), bk: w(E, 1), bv: w(E, 1), wo: w(E, E), bo: w(E, 1) });
  const ones = Tensor.from(new Float32Array(E).fill(1), [E]);
  return new TransformerEncoderLayer(attn, new MLP(w(dFF, E), w(dFF, 1), w(E, dFF), w(E, 1), 'gelu'),
    new LayerNorm(ones, null), new LayerNorm(ones, null), normFirst);
}
