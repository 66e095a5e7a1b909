// The layers of a decoder on GpuTensors (src/kernels/webgpu): what models call to run their forward pass on WebGPU
// with nothing read back between layers. Same arguments as their CPU twins (linear.ts, norm.ts, rope.ts,
// activations.ts) — weights as models hold them, widened to f32 once and kept on the GPU after the first call; and
// linearWebGPU, linear() on the GPU.
import { QkvError } from '../errors.js';
import type { MatrixData } from '../kernels/contract.js';
import { residentBuffer } from '../kernels/webgpu/buffers.js';
import { gpuDevice, hasF16 } from '../kernels/webgpu/device.js';
import { GpuTensor } from '../kernels/webgpu/gpu-tensor.js';
import { validated } from '../kernels/webgpu/pipelines.js';
import { getGpuLayerKernels } from '../kernels/registry.js';
import '../kernels/webgpu/index.js';
import { keptForm } from '../tensor/constant.js';
import { F16Matrix } from '../tensor/f16-matrix.js';
import type { LinearWeight } from '../tensor/quantize.js';
import { fmtShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { activationKind } from './activations.js';
import { linear, matrixData, vectorF32 } from './linear.js';
import { ropeAngles, type RopeFrequencies } from './positional/rope.js';

export { GpuTensor };

/**
 * linear() on the GPU through WebGPU (the tiled matmul of src/kernels/webgpu/matmul.wgsl): y = x Wᵀ + b. The weight
 * stays on the GPU after the first call: f16 as f16 where the device has shader-f16, others widened to f32 once.
 * A GpuTensor x gives a GpuTensor y (nothing read back);
 * a Tensor x is uploaded and y read back. Without an adapter a Tensor x runs on the CPU, with a warning once.
 * @example const y = await linearWebGPU(x, weight); // [..., out_features]
 */
export async function linearWebGPU(x: GpuTensor, weight: LinearWeight, bias?: Tensor | null): Promise<GpuTensor>;
export async function linearWebGPU(x: Tensor, weight: LinearWeight, bias?: Tensor | null): Promise<Tensor>;
export async function linearWebGPU(x: Tensor | GpuTensor, weight: LinearWeight, bias?: Tensor | null): Promise<Tensor | GpuTensor> {
  if (x instanceof GpuTensor) return validated(x.device, 'matmul', () => linearGpu(x, weight, bias)); // the result stays there
  const device = await gpuDevice();
  if (!device) {
    if (!warnedCpu) { warnedCpu = true; console.warn('qkv: linearWebGPU on the CPU (no WebGPU adapter)'); }
    return linear(x, weight, bias, 'linearWebGPU');
  }
  checkLinear(x.shape, weight, bias);
  // a host tensor: in, the product, and back
  const xg = GpuTensor.upload(device, x.toFloat32(), x.shape);
  try {
    const y = await validated(device, 'matmul', async () => {
      const yg = linearGpu(xg, weight, bias);
      try { return await yg.read(); } finally { yg.release(); }
    });
    return Tensor.from(y, [...x.shape.slice(0, -1), weight.shape[0]]);
  } finally {
    xg.release();
  }
}
let warnedCpu = false;

function checkLinear(xShape: readonly number[], weight: LinearWeight, bias?: Tensor | null): void {
  const [outF, inF] = weight.shape;
  if (xShape[xShape.length - 1] !== inF) {
    const shapes = `x ${fmtShape(xShape)}, weight ${fmtShape(weight.shape)}`;
    throw new QkvError(`linearWebGPU: input's last dim must be in_features=${inF}, got ${shapes}`);
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outF)) {
    throw new QkvError(`linearWebGPU: bias must be [${outF}], got ${fmtShape(bias.shape)}`);
  }
}

const widened = new WeakMap<object, Float32Array>();
// the weight widened to float32 once and kept (so it is uploaded once) when it is constant (tensor/constant.ts: a
// model's weights); any other is widened again into the kept array on every call (and uploaded again)
function asFloat32(w: LinearWeight, m: MatrixData): Float32Array {
  if (m.dtype === 'float32') return m.data;
  return keptForm(widened, m.data, m.data, () => (w instanceof Tensor ? w : w.dequantize()).toFloat32());
}

/** y = x Wᵀ + b on the GPU, recorded without waiting (the result stays there). */
export function linearGpu(x: GpuTensor, weight: LinearWeight, bias?: Tensor | null): GpuTensor {
  checkLinear(x.shape, weight, bias);
  // an f16 weight stays f16 where the device has shader-f16 (half the GPU memory and reads); others go up as f32
  const m = matrixData(weight);
  const w = m.dtype === 'float16' && hasF16(x.device) ? m.data : asFloat32(weight, m);
  // an F16Matrix's bits are scaled for the CPU kernel: its true f16 go up instead, unscaled only for the upload
  if (weight instanceof F16Matrix && w === m.data) residentBuffer(x.device, w, () => weight.unscaled());
  return gpu().matmul(x, w, weight.shape[0], bias ? vectorF32(bias) : null);
}

/** RMSNorm over the last dim (offset 1: Gemma's 1 + γ). */
export function rmsNormGpuLayer(x: GpuTensor, weight: Tensor, eps: number, offset = 0): GpuTensor {
  return gpu().rmsNorm(x, vectorF32(weight), eps, offset);
}

/** The cos θ / sin θ table of `positions` [T] for RoPE on the GPU: [T, 2, half], θ = p · inv_freq (× attention factor). */
export function ropeTableGpu(device: GPUDevice, freqs: RopeFrequencies, positions: readonly number[]): GpuTensor {
  const half = freqs.invFreq.length;
  const { cos, sin } = ropeAngles(freqs, positions); // the CPU's angles, bit for bit
  const table = new Float32Array(positions.length * 2 * half);
  positions.forEach((_, t) => {
    table.set(cos.subarray(t * half, (t + 1) * half), 2 * t * half);
    table.set(sin.subarray(t * half, (t + 1) * half), (2 * t + 1) * half);
  });
  return GpuTensor.upload(device, table, [positions.length, 2, half]);
}

/** RoPE (rotate-half) on x [T, H, D]. */
export const ropeGpuLayer = (x: GpuTensor, table: GpuTensor) => gpu().rope(x, table);

/** The gated feed-forward activations that have a GPU kernel: SwiGLU's SiLU(gate) ⊙ up, GeGLU's GELU-tanh(gate) ⊙ up. */
export function gatedActGpu(act: string, gate: GpuTensor, up: GpuTensor): GpuTensor {
  const kind = activationKind(act);
  if (kind === 'silu' || kind === 'gelu_tanh') return gpu().gated(kind, gate, up);
  throw new QkvError(`WebGPU: activation '${act}' has no GPU kernel yet (silu and gelu_tanh do)`);
}

/** a + b. */
export const addGpu = (a: GpuTensor, b: GpuTensor) => gpu().add(a, b);
/** Rows [first, first + n) of x [R, C]. */
export const rowsGpu = (x: GpuTensor, first: number, n: number) => gpu().rows(x, first, n);
/** c · tanh(x / c). */
export const softcapGpu = (x: GpuTensor, c: number) => gpu().softcap(x, c);

// the WebGPU backend's layer kernels, from the registry (kernels/webgpu/index.ts registers them)
const gpu = () => getGpuLayerKernels('webgpu');
