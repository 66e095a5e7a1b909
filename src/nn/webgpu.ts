// The layers of a decoder on GpuTensors (src/kernels/webgpu): what models call to run their forward pass on WebGPU
// with nothing read back between layers. Same arguments as their CPU twins (linear.ts, norm.ts, rope.ts,
// activations.ts) — weights as models hold them, widened to f32 once and kept on the GPU after the first call.
import { QkvError } from '../errors.js';
import { GpuTensor } from '../kernels/webgpu/gpu-tensor.js';
import { addGpu, geluTanhMulGpu, rmsNormGpu, ropeGpu, rowsGpu, siluMulGpu } from '../kernels/webgpu/ops.js';
import type { LinearWeight } from '../tensor/quantize.js';
import type { Tensor } from '../tensor/tensor.js';
import { activationKind } from './activations.js';
import { linearWebGPU, vectorF32 } from './linear.js';
import { ropeAngles, type RopeFrequencies } from './positional/rope.js';

export { GpuTensor };

/** y = x Wᵀ + b on the GPU (linearWebGPU on a GpuTensor: the result stays there). */
export function linearGpu(x: GpuTensor, weight: LinearWeight, bias?: Tensor | null): Promise<GpuTensor> {
  return linearWebGPU(x, weight, bias);
}

/** RMSNorm over the last dim (offset 1: Gemma's 1 + γ). */
export function rmsNormGpuLayer(x: GpuTensor, weight: Tensor, eps: number, offset = 0): Promise<GpuTensor> {
  return rmsNormGpu(x, vectorF32(weight), eps, offset);
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
export const ropeGpuLayer = (x: GpuTensor, table: GpuTensor) => ropeGpu(x, table);

/** The gated feed-forward activations that have a GPU kernel: SwiGLU's SiLU(gate) ⊙ up, GeGLU's GELU-tanh(gate) ⊙ up. */
export function gatedActGpu(act: string, gate: GpuTensor, up: GpuTensor): Promise<GpuTensor> {
  const kind = activationKind(act);
  if (kind === 'silu') return siluMulGpu(gate, up);
  if (kind === 'gelu_tanh') return geluTanhMulGpu(gate, up);
  throw new QkvError(`WebGPU: activation '${act}' has no GPU kernel yet (silu and gelu_tanh do)`);
}

export { addGpu, rowsGpu };
