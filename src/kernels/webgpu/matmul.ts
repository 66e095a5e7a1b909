// Host side of the tiled WGSL matrix product (matmul.wgsl): C = A · Bᵀ (+ bias), B in torch's Linear layout. A weight
// (B) is uploaded once per storage array and stays on the GPU (a WeakMap from the array to its buffer), so a layer
// called again moves only its activations; f16/bf16 weights are widened to f32 once, on the host.
import { QkvError } from '../../errors.js';
import { acquire, encodePass, readBack, release, STORAGE, uniform, upload } from './buffers.js';
import { bindBuffers, computePipeline, validated } from './pipelines.js';
import { WGSL } from './matmul-wgsl.js';

const resident = new WeakMap<GPUDevice, WeakMap<Float32Array, GPUBuffer>>();

/** The GPU buffer that holds `w` on `device`, uploaded on first use and kept (never returned to the pool). */
export function residentBuffer(device: GPUDevice, w: Float32Array): GPUBuffer {
  let byArray = resident.get(device);
  if (!byArray) resident.set(device, (byArray = new WeakMap()));
  let buf = byArray.get(w);
  if (!buf) {
    buf = device.createBuffer({ size: Math.max(16, w.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(buf, 0, w.buffer, w.byteOffset, w.byteLength);
    byArray.set(w, buf);
  }
  return buf;
}

/** C [M, N] = A [M, K] · B [N, K]ᵀ (+ bias [N]) on the GPU; B (and bias) stay resident for later calls. */
export async function webgpuMatmulTransB(device: GPUDevice, a: Float32Array, b: Float32Array, M: number, K: number, N: number, bias?: Float32Array | null): Promise<Float32Array> {
  if (a.length !== M * K) throw new QkvError(`webgpuMatmulTransB: a has ${a.length} elements, expected M·K = ${M}·${K}`);
  if (b.length !== N * K) throw new QkvError(`webgpuMatmulTransB: b has ${b.length} elements, expected N·K = ${N}·${K}`);
  if (bias && bias.length !== N) throw new QkvError(`webgpuMatmulTransB: bias has ${bias.length} elements, expected N = ${N}`);
  const [gx, gy] = [Math.ceil(N / 64), Math.ceil(M / 64)];
  if (gx > 65535 || gy > 65535) throw new QkvError(`webgpuMatmulTransB: ${M}×${N} needs ${gy}×${gx} workgroups; the limit is 65535 per dimension`);
  if (M * N === 0) return new Float32Array(0);
  const aBuf = upload(device, a);
  const cBuf = acquire(device, 4 * M * N, STORAGE());
  const params = uniform(device, Uint32Array.from([M, K, N, bias ? 1 : 0]).buffer);
  const bBuf = residentBuffer(device, b);
  const biasBuf = bias ? residentBuffer(device, bias) : aBuf; // any buffer when unused
  try {
    const pipe = await computePipeline(device, 'matmul', WGSL);
    const [c] = await validated(device, 'matmul', () =>
      readBack(device, [encodePass(device, pipe, bindBuffers(device, pipe, [aBuf, bBuf, biasBuf, cBuf, params]), gx, gy)], [[cBuf, 4 * M * N]]));
    return c;
  } finally {
    release(device, aBuf, cBuf, params);
  }
}
