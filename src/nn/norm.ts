// Normalisation over the last dimension.
//   LayerNorm (Ba et al. 2016):  y = (x − μ) / √(σ² + ε) · γ + β     (biased variance, as torch)
//   RMSNorm (Zhang & Sennrich 2019): y = x / √(mean(x²) + ε) · γ      (Llama; Gemma scales by (1 + γ))
import { rowKernels } from '../attention/dispatch.js';
import { QkvError } from '../errors.js';
import { activationFloats } from '../tensor/arena.js';
import { fmtShape } from '../tensor/shape.js';
import { checkTensor, Tensor } from '../tensor/tensor.js';

function lastDim(x: Tensor, weight: Tensor | null, what: string, eps: number): number {
  checkTensor(x, `${what}: x`);
  if (weight !== null && weight !== undefined) checkTensor(weight, `${what}: weight`);
  if (typeof eps !== 'number' || !(eps >= 0)) throw new QkvError(`${what}: eps must be a number ≥ 0, got ${String(eps)}`);
  const D = x.shape[x.rank - 1];
  if (weight && (weight.rank !== 1 || weight.shape[0] !== D)) {
    throw new QkvError(`${what}: weight must be [${D}] for input ${fmtShape(x.shape)}, got ${fmtShape(weight.shape)}`);
  }
  return D;
}

/** LayerNorm over the last dim with optional affine weight γ and bias β. */
export function layerNorm(x: Tensor, weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  const D = lastDim(x, weight, 'layerNorm', eps);
  if (bias !== null && bias !== undefined) checkTensor(bias, 'layerNorm: bias');
  const a = x.toFloat32();
  const [g, b] = [weight?.toFloat32(), bias?.toFloat32()];
  const out = activationFloats(a.length); // every element written
  for (let r = 0; r < a.length / D; r++) {
    let mean = 0;
    for (let d = 0; d < D; d++) mean += a[r * D + d];
    mean /= D;
    let varSum = 0;
    for (let d = 0; d < D; d++) varSum += (a[r * D + d] - mean) ** 2;
    const inv = 1 / Math.sqrt(varSum / D + eps);
    for (let d = 0; d < D; d++) out[r * D + d] = (a[r * D + d] - mean) * inv * (g ? g[d] : 1) + (b ? b[d] : 0);
  }
  return Tensor.from(out, x.shape);
}

/** RMSNorm over the last dim; `offset` 1 gives Gemma's (1 + γ) scaling. */
export function rmsNorm(x: Tensor, weight: Tensor | null = null, eps = 1e-6, offset = 0): Tensor {
  const D = lastDim(x, weight, 'rmsNorm', eps);
  const a = x.toFloat32();
  const g = weight?.toFloat32();
  const out = activationFloats(a.length); // every element written
  // in a decoder layer's arena (tensor/arena.ts): the SIMD kernel, on the arrays where they lie
  if (g && rowKernels()?.rmsNorm(a, g, out, D, eps, offset)) return Tensor.from(out, x.shape);
  for (let r = 0; r < a.length / D; r++) {
    let ms = 0;
    for (let d = 0; d < D; d++) ms += a[r * D + d] ** 2;
    const inv = 1 / Math.sqrt(ms / D + eps);
    for (let d = 0; d < D; d++) out[r * D + d] = a[r * D + d] * inv * (g ? offset + g[d] : 1);
  }
  return Tensor.from(out, x.shape);
}

/** A LayerNorm module (weight, bias, eps). */
export class LayerNorm {
  constructor(readonly weight: Tensor | null, readonly bias: Tensor | null, readonly eps = 1e-5) {}
  forward(x: Tensor): Tensor { return layerNorm(x, this.weight, this.bias, this.eps); }
}

/** An RMSNorm module (weight, eps, offset). */
export class RMSNorm {
  constructor(readonly weight: Tensor | null, readonly eps = 1e-6, readonly offset = 0) {}
  forward(x: Tensor): Tensor { return rmsNorm(x, this.weight, this.eps, this.offset); }
}
