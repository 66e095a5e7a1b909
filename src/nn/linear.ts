// Linear layer y = x Wᵀ + b with torch's weight layout [out_features, in_features]. The weight is used as stored —
// f32, f16 (or F16Matrix: scaled for the kernel), bf16, int8 with row scales (Int8Matrix) or int4 in blocks
// (Int4Matrix) — and widened inside the WebAssembly kernel, so a model loaded in 16 bits stays in 16 bits. Without
// WebAssembly SIMD the TypeScript loops run on an f32 copy made once.
// The kernel is chosen by attention/dispatch.ts (matmulFor) from the registry; linearWebGPU is in webgpu.ts.
import { gatedMatmulFor, matmulFor } from '../attention/dispatch.js';
import { QkvError } from '../errors.js';
import type { MatrixData } from '../kernels/contract.js';
import { isConstant, keptForm, markConstant } from '../tensor/constant.js';
import { F16Matrix } from '../tensor/f16-matrix.js';
import { Int4Matrix, Int8Matrix, type LinearWeight } from '../tensor/quantize.js';
import { fmtShape } from '../tensor/shape.js';
import { checkTensor, checkWeight, Tensor } from '../tensor/tensor.js';
import { activation, activationKind, mul } from './activations.js';

const dense = new WeakMap<Tensor, Tensor>(); // constant strided weights: one dense copy, which the kernel keeps resident

/** The weight as kernels take it: a contiguous view of its storage, in its own format. */
export function matrixData(w: LinearWeight): MatrixData {
  if (w instanceof Int8Matrix) return { dtype: 'int8', data: w.q, scales: w.scales };
  if (w instanceof Int4Matrix) return { dtype: 'int4', data: w.q, scales: w.scales };
  if (w instanceof F16Matrix) return { dtype: 'float16', data: w.h, shift: w.shift };
  // a strided weight's dense copy is kept (and constant) only when the weight is (tensor/constant.ts); else made anew
  let c = dense.get(w) ?? w.contiguous();
  if (c !== w && isConstant(w.data) && !dense.has(w)) { markConstant(c.data); dense.set(w, c); }
  if (c.dtype === 'float16' || c.dtype === 'bfloat16') return { dtype: c.dtype, data: c.data as Uint16Array };
  return { dtype: 'float32', data: c.toFloat32() };
}

/**
 * y = x Wᵀ + b over the last dimension of x.
 * @example linear(Tensor.from([1, 2], [1, 2]), Tensor.from([1, 0, 0, 1, 1, 1], [3, 2])).toArray() // [1, 2, 3]
 */
export function linear(x: Tensor, weight: LinearWeight, bias?: Tensor | null, what = 'linear'): Tensor {
  what = String(what); // the label of its errors (a symbol would not print)
  checkTensor(x, `${what}: x`);
  checkWeight(weight, `${what}: weight`);
  if (bias !== null && bias !== undefined) checkTensor(bias, `${what}: bias`);
  const [outF, inF] = weight.shape;
  if (weight.shape.length !== 2) throw new QkvError(`${what}: weight must be [out_features, in_features], got ${fmtShape(weight.shape)}`);
  if (x.shape[x.rank - 1] !== inF) {
    throw new QkvError(`${what}: input's last dim must be in_features=${inF}, got x ${fmtShape(x.shape)}, weight ${fmtShape(weight.shape)}`);
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outF)) throw new QkvError(`${what}: bias must be [${outF}], got ${fmtShape(bias.shape)}`);
  const rows = x.size / inF;
  const xa = x.toFloat32();
  // WebAssembly SIMD where it covers the weight (a model's weight then stays resident in its memory; any other is
  // copied in for this call: tensor/constant.ts), else the TypeScript loops
  const p = { a: xa, b: matrixData(weight), M: rows, K: inF, N: outF };
  const y = matmulFor(p).forward(p); // [rows, out]
  if (bias) {
    const b = bias.toFloat32();
    for (let r = 0; r < rows; r++) for (let o = 0; o < outF; o++) y[r * outF + o] += b[o];
  }
  return Tensor.from(y, [...x.shape.slice(0, -1), outF]);
}

/**
 * The gated input of a GLU feed-forward (Shazeer 2020, "GLU Variants Improve Transformer"):
 *   h = act(x W_gateᵀ) ⊙ (x W_upᵀ)      SwiGLU: act = SiLU (Llama, Mistral, Qwen2); GeGLU: act = GELU-tanh (Gemma)
 * `act` is a config's activation name. With WebAssembly SIMD and SiLU or GELU-tanh, both products and the activation
 * are one job; otherwise linear, activation and product in turn.
 * @example const h = gatedLinear(x, gate, up, 'silu'); // [..., intermediate_size]
 */
export function gatedLinear(x: Tensor, gate: LinearWeight, up: LinearWeight, act: string): Tensor {
  checkTensor(x, 'gatedLinear: x');
  checkWeight(gate, 'gatedLinear: gate');
  checkWeight(up, 'gatedLinear: up');
  const [F, E] = gate.shape;
  if (gate.shape.length !== 2 || up.shape.join() !== gate.shape.join()) {
    throw new QkvError(`gatedLinear: gate and up must both be [out_features, in_features], got ${fmtShape(gate.shape)} and ${fmtShape(up.shape)}`);
  }
  const kind = activationKind(act); // an unknown name is an error here, on every path
  if (x.shape[x.rank - 1] !== E) throw new QkvError(`gatedLinear: input's last dim must be in_features=${E}, got x ${fmtShape(x.shape)}`);
  // the gated SIMD job knows SiLU and GELU-tanh
  if (kind === 'silu' || kind === 'gelu_tanh') {
    const p = { a: x.toFloat32(), b: matrixData(gate), M: x.size / E, K: E, N: F };
    const up8 = matrixData(up);
    const k = gatedMatmulFor(p, up8);
    if (k) return Tensor.from(k.gated!(p, up8, kind), [...x.shape.slice(0, -1), F]);
  }
  return mul(activation(act)(linear(x, gate, null, 'gatedLinear')), linear(x, up, null, 'gatedLinear'));
}

/** A torch.nn.Linear: weight [out, in] and an optional bias [out]. */
export class Linear {
  constructor(readonly weight: LinearWeight, readonly bias: Tensor | null = null) {
    checkWeight(weight, 'Linear: weight');
    if (bias !== null) checkTensor(bias, 'Linear: bias');
  }

  get inFeatures(): number { return this.weight.shape[1]; }
  get outFeatures(): number { return this.weight.shape[0]; }
  forward(x: Tensor): Tensor { return linear(x, this.weight, this.bias); }
}

const vectors = new WeakMap<Tensor, Float32Array>();
/**
 * One float32 array per tensor (a bias, a norm weight), kept: the GPU keeps its uploaded copy keyed by that array.
 * Refilled from the tensor on every call unless the tensor is constant (tensor/constant.ts: a model's weights).
 */
export const vectorF32 = (t: Tensor): Float32Array => keptForm(vectors, t, t.data, () => t.toFloat32().slice());
