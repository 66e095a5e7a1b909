// Host side of the tiled WGSL matrix product (matmul.wgsl): C = A · Bᵀ (+ bias), B in torch's Linear layout; for a
// few rows of A (decoding) its GEMV entry point. A weight
// (B) is uploaded once per storage array and stays on the GPU (residentBuffer), so a layer called again moves only
// its activations. f16 weights stay f16 on devices with shader-f16 (the kernel widens them as it stages them); bf16
// and int8 weights are widened to f32 once, on the host (linear.ts).
import { QkvError } from '../../errors.js';
import { encodePass, release, residentBuffer, submit, uniform } from './buffers.js';
import { MATMUL_PARAMS } from './uniforms.js';
import { hasF16 } from './device.js';
import { GpuTensor } from './gpu-tensor.js';
import { bindBuffers, computePipeline, storageVariant } from './pipelines.js';
import { WGSL } from './matmul-wgsl.js';

const GEMV_M = 8; // rows of x up to which the GEMV entry point runs (matmul.wgsl's GEMV_M) …
const GEMV_N = 2; // … and its output columns per workgroup (GEMV_N)

/**
 * x [M, K] · Wᵀ (+ bias) with W [N, K] resident on the GPU: [M, N], recorded without waiting. W is float32 values or
 * the bits of float16 ones (a Uint16Array; needs shader-f16).
 */
export function matmulGpu(x: GpuTensor, w: Float32Array | Uint16Array, N: number, bias?: Float32Array | null): GpuTensor {
  const K = x.shape[x.shape.length - 1];
  const M = x.size / K;
  if (w.length !== N * K) throw new QkvError(`matmulGpu: weight has ${w.length} values, expected N·K = ${N}·${K}`);
  if (bias && bias.length !== N) throw new QkvError(`matmulGpu: bias has ${bias.length} values, expected N = ${N}`);
  // a few rows (decoding): the GEMV entry point, a workgroup per GEMV_N output columns; else 64 × 64 tiles
  const gemv = M <= GEMV_M;
  const groups = Math.ceil(N / GEMV_N);
  const [gx, gy] = gemv ? [Math.min(groups, 65535), Math.ceil(groups / 65535)] : [Math.ceil(N / 64), Math.ceil(M / 64)];
  if (gx > 65535 || gy > 65535) throw new QkvError(`matmulGpu: ${M}×${N} needs ${gy}×${gx} workgroups; the limit is 65535 per dimension`);
  const device = x.device;
  const out = GpuTensor.empty(device, [...x.shape.slice(0, -1), N]);
  const u = uniform(device, MATMUL_PARAMS.bytes({ M, K, N, useBias: bias ? 1 : 0 }));
  const dtype = w instanceof Uint16Array ? 'float16' : 'float32';
  if (dtype === 'float16' && !hasF16(device)) throw new QkvError('matmulGpu: an f16 weight needs a device with shader-f16 (pass it widened to float32)');
  const pipe = computePipeline(device, `matmul ${dtype}`, () => storageVariant(WGSL, dtype), gemv ? 'gemv' : 'main');
  const bBuf = residentBuffer(device, w);
  submit(device, encodePass(device, pipe, bindBuffers(device, pipe, [x.buffer, bBuf, bias ? residentBuffer(device, bias) : bBuf, out.buffer, u]), gx, gy));
  release(device, u); // the queue runs in order: a later writeBuffer into it comes after this pass
  return out;
}
