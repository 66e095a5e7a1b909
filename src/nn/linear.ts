// Linear layer y = x Wᵀ + b with torch's weight layout [out_features, in_features]. The weight is used as stored —
// f32, f16, bf16, or int8 with row scales (Int8Matrix) — and widened inside the WebAssembly kernel, so a model
// loaded in 16 bits stays in 16 bits. Without WebAssembly SIMD the TypeScript loops run on an f32 copy made once.
import { QkvError } from '../errors.js';
import { matmulTransB } from '../kernels/cpu/matmul.js';
import { type MatrixData, wasmGatedMatmul, wasmMatmulTransB } from '../kernels/wasm/matmul-wasm.js';
import { gpuDevice, hasF16 } from '../kernels/webgpu/device.js';
import { GpuTensor } from '../kernels/webgpu/gpu-tensor.js';
import { matmulGpu } from '../kernels/webgpu/matmul.js';
import { validated } from '../kernels/webgpu/pipelines.js';
import { Int8Matrix, type LinearWeight } from '../tensor/quantize.js';
import { fmtShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { activation, activationKind, mul } from './activations.js';

const widened = new WeakMap<object, Float32Array>();
const dense = new WeakMap<Tensor, Tensor>(); // strided weights: one dense copy, so the kernel keeps one resident copy

// the weight as the kernel takes it (a contiguous view of its storage), and as f32 for the TypeScript fallback
function matrixData(w: LinearWeight): MatrixData {
  if (w instanceof Int8Matrix) return { dtype: 'int8', data: w.q, scales: w.scales };
  let c = dense.get(w) ?? w.contiguous();
  if (c !== w) dense.set(w, c);
  if (c.dtype === 'float16' || c.dtype === 'bfloat16') return { dtype: c.dtype, data: c.data as Uint16Array };
  return { dtype: 'float32', data: c.toFloat32() };
}
// the weight widened to float32 once (kept, so the GPU and TypeScript paths upload or use it once)
function asFloat32(w: LinearWeight, m: MatrixData): Float32Array {
  if (m.dtype === 'float32') return m.data;
  let f = widened.get(m.data);
  if (!f) widened.set(m.data, (f = (w instanceof Int8Matrix ? w.dequantize() : w).toFloat32()));
  return f;
}

/**
 * y = x Wᵀ + b over the last dimension of x.
 * @example linear(Tensor.from([1, 2], [1, 2]), Tensor.from([1, 0, 0, 1, 1, 1], [3, 2])).toArray() // [1, 2, 3]
 */
export function linear(x: Tensor, weight: LinearWeight, bias?: Tensor | null, what = 'linear'): Tensor {
  const [outF, inF] = weight.shape;
  if (weight.shape.length !== 2) throw new QkvError(`${what}: weight must be [out_features, in_features], got ${fmtShape(weight.shape)}`);
  if (x.shape[x.rank - 1] !== inF) {
    throw new QkvError(`${what}: input's last dim must be in_features=${inF}, got x ${fmtShape(x.shape)}, weight ${fmtShape(weight.shape)}`);
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outF)) throw new QkvError(`${what}: bias must be [${outF}], got ${fmtShape(bias.shape)}`);
  const rows = x.size / inF;
  const xa = x.toFloat32();
  const m = matrixData(weight);
  // WebAssembly SIMD where it applies (the weight stays resident in wasm memory), else the TypeScript loops
  const y = wasmMatmulTransB(xa, m, rows, inF, outF) ?? matmulTransB(xa, asFloat32(weight, m), rows, inF, outF); // [rows, out]
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
  const [F, E] = gate.shape;
  if (gate.shape.length !== 2 || up.shape.join() !== gate.shape.join()) {
    throw new QkvError(`gatedLinear: gate and up must both be [out_features, in_features], got ${fmtShape(gate.shape)} and ${fmtShape(up.shape)}`);
  }
  const kind = activationKind(act); // an unknown name is an error here, on every path
  if (x.shape[x.rank - 1] !== E) throw new QkvError(`gatedLinear: input's last dim must be in_features=${E}, got x ${fmtShape(x.shape)}`);
  // the gated SIMD job knows SiLU and GELU-tanh
  const h = kind === 'silu' || kind === 'gelu_tanh' ? wasmGatedMatmul(x.toFloat32(), matrixData(gate), matrixData(up), kind, x.size / E, E, F) : null;
  if (h) return Tensor.from(h, [...x.shape.slice(0, -1), F]);
  return mul(activation(act)(linear(x, gate, null, 'gatedLinear')), linear(x, up, null, 'gatedLinear'));
}

/** A torch.nn.Linear: weight [out, in] and an optional bias [out]. */
export class Linear {
  constructor(readonly weight: LinearWeight, readonly bias: Tensor | null = null) {}
  get inFeatures(): number { return this.weight.shape[1]; }
  get outFeatures(): number { return this.weight.shape[0]; }
  forward(x: Tensor): Tensor { return linear(x, this.weight, this.bias); }
}

/**
 * linear() on the GPU through WebGPU (the tiled matmul of src/kernels/webgpu/matmul.wgsl): y = x Wᵀ + b. The weight
 * stays on the GPU after the first call: f16 as f16 where the device has shader-f16, others widened to f32 once. A GpuTensor x gives a GpuTensor y (nothing read back);
 * a Tensor x is uploaded and y read back. Without an adapter a Tensor x runs on the CPU, with a warning once.
 * @example const y = await linearWebGPU(x, weight); // [..., out_features]
 */
export async function linearWebGPU(x: GpuTensor, weight: LinearWeight, bias?: Tensor | null): Promise<GpuTensor>;
export async function linearWebGPU(x: Tensor, weight: LinearWeight, bias?: Tensor | null): Promise<Tensor>;
export async function linearWebGPU(x: Tensor | GpuTensor, weight: LinearWeight, bias?: Tensor | null): Promise<Tensor | GpuTensor> {
  const [outF, inF] = weight.shape;
  const device = x instanceof GpuTensor ? x.device : await gpuDevice();
  if (!device) {
    if (!warnedCpu) { warnedCpu = true; console.warn('qkv: linearWebGPU on the CPU (no WebGPU adapter)'); }
    return linear(x as Tensor, weight, bias, 'linearWebGPU');
  }
  if (x.shape[x.shape.length - 1] !== inF) throw new QkvError(`linearWebGPU: input's last dim must be in_features=${inF}, got x ${fmtShape(x.shape)}, weight ${fmtShape(weight.shape)}`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outF)) throw new QkvError(`linearWebGPU: bias must be [${outF}], got ${fmtShape(bias.shape)}`);
  // an f16 weight stays f16 where the device has shader-f16 (half the GPU memory and reads); others go up as f32
  const m = matrixData(weight);
  const w = m.dtype === 'float16' && hasF16(device) ? m.data : asFloat32(weight, m);
  const product = (xg: GpuTensor) => matmulGpu(xg, w, outF, bias ? vectorF32(bias) : null);
  if (x instanceof GpuTensor) return product(x); // already on the GPU: the result stays there
  // a host tensor: in, the product, and back
  const xg = GpuTensor.upload(device, x.toFloat32(), x.shape);
  try {
    const y = await validated(device, 'matmul', async () => {
      const yg = await product(xg);
      try { return await yg.read(); } finally { yg.release(); }
    });
    return Tensor.from(y, [...x.shape.slice(0, -1), outF]);
  } finally {
    xg.release();
  }
}
let warnedCpu = false;
const vectors = new WeakMap<Tensor, Float32Array>();
/** One float32 array per tensor (a bias, a norm weight), kept: the GPU keeps its uploaded copy keyed by that array. */
export const vectorF32 = (t: Tensor) => vectors.get(t) ?? vectors.set(t, t.toFloat32().slice()).get(t)!;
