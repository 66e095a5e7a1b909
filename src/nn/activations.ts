// Activations of transformer feed-forward layers, elementwise on float32 tensors.
//   GELU (exact)  x · Φ(x) = x/2 · (1 + erf(x/√2))                          (Hendrycks & Gimpel 2016)
//   GELU (tanh)   x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))               (GPT-2, Gemma "gelu_pytorch_tanh")
//   SiLU          x · σ(x);   SwiGLU(x) = SiLU(x W_gate) ⊙ (x W_up)          (Shazeer 2020)
//   ELU + 1       the feature map of linear attention (Katharopoulos et al. 2020)
import { rowKernels } from '../attention/dispatch.js';
import { notANumber, QkvError } from '../errors.js';
import { activationFloats } from '../tensor/arena.js';
import { checkTensor, Tensor } from '../tensor/tensor.js';

/** erf with |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit), enough for float32. */
export function erf(x: number): number {
  if (typeof x !== 'number') notANumber('erf', x);
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

function map(x: Tensor, f: (v: number) => number, what: string): Tensor {
  checkTensor(x, `${what}: x`);
  const a = x.toFloat32();
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f(a[i]);
  return Tensor.from(out, x.shape);
}

/** GELU, exact (erf) or with the tanh approximation. */
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  if (approximate === 'tanh') {
    const c = Math.sqrt(2 / Math.PI);
    return map(x, (v) => 0.5 * v * (1 + Math.tanh(c * (v + 0.044715 * v * v * v))), 'gelu');
  }
  return map(x, (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)), 'gelu');
}

/** SiLU (swish): x · σ(x). */
export function silu(x: Tensor): Tensor {
  checkTensor(x, 'silu: x');
  const a = x.toFloat32();
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] / (1 + Math.exp(-a[i]));
  return Tensor.from(out, x.shape);
}

/** ReLU. */
export function relu(x: Tensor): Tensor {
  return map(x, (v) => (v > 0 ? v : 0), 'relu');
}

/** elu(x) + 1: positive, so it can stand in for exp in linear attention. */
export function eluPlusOne(x: Tensor): Tensor {
  return map(x, (v) => (v > 0 ? v + 1 : Math.exp(v)), 'eluPlusOne');
}

/** Elementwise product of two tensors of one shape. */
export function mul(a: Tensor, b: Tensor): Tensor {
  checkTensor(a, 'mul: a');
  checkTensor(b, 'mul: b');
  if (a.shape.join() !== b.shape.join()) throw new QkvError(`mul: shapes [${a.shape}] and [${b.shape}] differ`);
  const [x, y] = [a.toFloat32(), b.toFloat32()];
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * y[i];
  return Tensor.from(out, a.shape);
}

/** Elementwise sum of two tensors of one shape (residual connections). */
export function add(a: Tensor, b: Tensor): Tensor {
  checkTensor(a, 'add: a');
  checkTensor(b, 'add: b');
  if (a.shape.join() !== b.shape.join()) throw new QkvError(`add: shapes [${a.shape}] and [${b.shape}] differ`);
  const [x, y] = [a.toFloat32(), b.toFloat32()];
  const out = activationFloats(x.length); // every element written
  if (rowKernels()?.add(x, y, out)) return Tensor.from(out, a.shape); // in a decoder layer's arena: the SIMD kernel
  for (let i = 0; i < x.length; i++) out[i] = x[i] + y[i];
  return Tensor.from(out, a.shape);
}

/** The activations qkv knows; configs spell some of them several ways (KINDS). */
export type ActivationKind = 'gelu' | 'gelu_tanh' | 'silu' | 'relu';
const KINDS = new Map<string, ActivationKind>([
  ['gelu', 'gelu'], ['gelu_tanh', 'gelu_tanh'], ['gelu_new', 'gelu_tanh'], ['gelu_pytorch_tanh', 'gelu_tanh'],
  ['silu', 'silu'], ['swish', 'silu'], ['relu', 'relu'],
]);

/** Which activation a config's name means (the fused kernels switch on it); an unknown name is an error. */
export function activationKind(name: string): ActivationKind {
  const kind = KINDS.get(name);
  if (!kind) throw new QkvError(`activation: unknown '${String(name)}' (known: gelu, gelu_tanh, silu, relu)`);
  return kind;
}

/** The activation by name, as configs spell it. */
export function activation(name: string): (x: Tensor) => Tensor {
  switch (activationKind(name)) {
    case 'gelu': return (x) => gelu(x);
    case 'gelu_tanh': return (x) => gelu(x, 'tanh');
    case 'silu': return silu;
    case 'relu': return relu;
  }
}
