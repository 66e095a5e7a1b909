// Host side of ops.wgsl on GpuTensors: each function records one compute pass and returns
// its result as a new GpuTensor without waiting for the GPU (synchronously: nothing here awaits). Shapes are checked
// here, before anything is recorded.
import { QkvError } from '../../errors.js';
import { encodePass, release, residentBuffer, submit, uniform, upload } from './buffers.js';
import { OPS_PARAMS, SCATTER_PARAMS, TRANSPOSE_PARAMS } from './uniforms.js';
import { GpuTensor, type GpuDType } from './gpu-tensor.js';
import { WGSL } from './ops-wgsl.js';
import { WGSL as TRANSPOSE } from './transpose-wgsl.js';
import { WGSL as SCATTER } from './scatter-wgsl.js';
import { hasF16 } from './device.js';
import { bindBuffers, computePipeline } from './pipelines.js';

type Entry = 'rmsNorm' | 'rope' | 'siluMul' | 'geluTanhMul' | 'add' | 'softcap';

// one pass of an ops.wgsl entry point over `groups` workgroups (split over y past 65535)
function run(entry: Entry, x: GpuTensor, y: GPUBuffer | GpuTensor, out: GpuTensor, fields: number[], eps: number, groups: number): void {
  const device = x.device;
  const [n = 0, a = 0, b = 0, c = 0, d = 0, e = 0] = fields; // each entry point says what they are (ops.wgsl)
  const u = uniform(device, OPS_PARAMS.bytes({ n, a, b, c, d, e, pad: 0, eps }));
  const pipe = computePipeline(device, 'ops', WGSL, entry);
  const yBuf = y instanceof GpuTensor ? y.buffer : y;
  const used = entry === 'softcap' ? [0, 2, 3] : undefined; // softcap reads no second operand
  const bind = bindBuffers(device, pipe, [x.buffer, yBuf, out.buffer, u], used);
  submit(device, encodePass(device, pipe, bind, Math.min(groups, 65535), Math.ceil(groups / 65535)));
  release(device, u); // the queue runs in order: a later writeBuffer into it comes after this pass
}

const groupsOf = (n: number) => Math.max(1, Math.ceil(n / 64));
const same = (a: GpuTensor, b: GpuTensor, what: string) => {
  if (a.shape.join() !== b.shape.join()) throw new QkvError(`${what}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] differ`);
};

/** RMSNorm over the last dim: x / sqrt(mean(x²) + eps) · (offset + weight); weight stays resident. */
export function rmsNormGpu(x: GpuTensor, weight: Float32Array, eps: number, offset = 0): GpuTensor {
  const E = x.shape[x.shape.length - 1];
  if (weight.length !== E) throw new QkvError(`rmsNormGpu: weight has ${weight.length} values, x's last dim is ${E}`);
  const out = GpuTensor.empty(x.device, x.shape);
  run('rmsNorm', x, residentBuffer(x.device, weight), out, [x.size / E, E, 0, 0, 0, offset], eps, x.size / E);
  return out;
}

/** RoPE on x [T, H, D] with a table [T, 2, half] of cos θ and sin θ (ropeTable); `interleaved` pairs (2k, 2k+1). */
export function ropeGpu(x: GpuTensor, table: GpuTensor, interleaved = false): GpuTensor {
  const [T, H, D] = x.shape;
  const half = table.shape[2];
  if (x.shape.length !== 3 || table.shape[0] !== T || 2 * half > D) throw new QkvError(`ropeGpu: x [T, H, D] = [${x.shape.join(', ')}] needs a table [${T}, 2, ≤ ${D / 2}], got [${table.shape.join(', ')}]`);
  const out = GpuTensor.empty(x.device, x.shape);
  run('rope', x, table, out, [0, T, H, D, half, interleaved ? 1 : 0], 0, groupsOf(T * H * (D / 2)));
  return out;
}

// out = f(a, b) element by element over one shape
function elementwise(entry: 'siluMul' | 'geluTanhMul' | 'add', a: GpuTensor, b: GpuTensor, what: string): GpuTensor {
  same(a, b, what);
  const out = GpuTensor.empty(a.device, a.shape);
  run(entry, a, b, out, [a.size], 0, groupsOf(a.size));
  return out;
}

/** SiLU(gate) ⊙ up. */
export const siluMulGpu = (gate: GpuTensor, up: GpuTensor) => elementwise('siluMul', gate, up, 'siluMulGpu');

/** GELU-tanh(gate) ⊙ up (GeGLU). */
export const geluTanhMulGpu = (gate: GpuTensor, up: GpuTensor) => elementwise('geluTanhMul', gate, up, 'geluTanhMulGpu');

/** a + b. */
export const addGpu = (a: GpuTensor, b: GpuTensor) => elementwise('add', a, b, 'addGpu');

/** c · tanh(x / c): soft-capping (of logits). */
export function softcapGpu(x: GpuTensor, c: number): GpuTensor {
  if (typeof c !== 'number' || !(c > 0) || !Number.isFinite(c)) {
    throw new QkvError(`softcapGpu: c must be a positive number, got ${String(c)}`);
  }
  const out = GpuTensor.empty(x.device, x.shape);
  run('softcap', x, x.buffer, out, [x.size], c, groupsOf(x.size));
  return out;
}

/**
 * x [A, B, C] → [B, A, C] (a new tensor of `dtype`, default x's), or written into `into` [B, capA, C] at rows
 * off … off + A − 1 of each block (appending to a KV cache, in the cache's dtype). f16 on either side needs shader-f16.
 */
export function transpose01Gpu(x: GpuTensor, into?: { dst: GpuTensor; capA: number; off: number }, dtype: GpuDType = into?.dst.dtype ?? x.dtype): GpuTensor {
  const [A, B, C] = x.shape;
  if (x.shape.length !== 3) throw new QkvError(`transpose01Gpu: x must be [A, B, C], got [${x.shape.join(', ')}]`);
  const device = x.device;
  const dst = into?.dst ?? GpuTensor.empty(device, [B, A, C], dtype);
  const capA = into?.capA ?? A, off = into?.off ?? 0;
  if (off + A > capA || dst.size < B * capA * C) throw new QkvError(`transpose01Gpu: rows ${off}…${off + A - 1} do not fit a destination [${B}, ${capA}, ${C}]`);
  if (dst.dtype !== dtype) throw new QkvError(`transpose01Gpu: the destination is ${dst.dtype}, not ${dtype}`);
  const pipe = copyPipeline(device, 'transpose', TRANSPOSE, x.dtype, dtype);
  const u = uniform(device, TRANSPOSE_PARAMS.bytes({ A, B, C, capA, off, pad0: 0, pad1: 0, pad2: 0 }));
  const groups = groupsOf(A * B * C);
  const bind = bindBuffers(device, pipe, [x.buffer, dst.buffer, u]);
  submit(device, encodePass(device, pipe, bind, Math.min(groups, 65535), Math.ceil(groups / 65535)));
  release(device, u);
  return dst;
}

// the pipeline of a copying shader (transpose.wgsl, scatter.wgsl) reading X and writing Y: f32, or f16 with shader-f16
function copyPipeline(device: GPUDevice, what: string, source: string, x: GpuDType, y: GpuDType): GPUComputePipeline {
  const f16 = x === 'float16' || y === 'float16';
  if (f16 && !hasF16(device)) throw new QkvError(`${what}: float16 needs a device with shader-f16`);
  const name = (t: GpuDType) => (t === 'float16' ? 'f16' : 'f32');
  const code = () => `${f16 ? 'enable f16;\n' : ''}${source.replace('alias X = f32;', `alias X = ${name(x)};`).replace('alias Y = f32;', `alias Y = ${name(y)};`)}`;
  return computePipeline(device, `${what} ${name(x)}>${name(y)}`, code);
}

/**
 * x [R, H, C] (R new tokens' keys or values) written into a paged pool `dst` [blocks, H, blockSize, C] at token slots
 * `slots` (block · blockSize + offset, one per token), in the pool's dtype: a paged KV cache's store on the GPU.
 */
export function scatterGpu(x: GpuTensor, slots: Uint32Array, into: { dst: GpuTensor; blockSize: number }): void {
  const [R, H, C] = x.shape;
  const { dst, blockSize } = into;
  const blocks = dst.size / (H * blockSize * C);
  if (x.shape.length !== 3 || slots.length !== R || !Number.isInteger(blocks)) {
    throw new QkvError(`scatterGpu: x [R, H, C] = [${x.shape.join(', ')}] needs R slots (got ${slots.length}) and a pool of whole ` +
      `[H, ${blockSize}, C] blocks (got ${dst.size} elements)`);
  }
  const bad = slots.findIndex((s) => s >= blocks * blockSize);
  if (bad >= 0) throw new QkvError(`scatterGpu: slot ${slots[bad]} of token ${bad} is past the pool's ${blocks * blockSize} slots`);
  const device = x.device;
  const pipe = copyPipeline(device, 'scatterGpu', SCATTER, x.dtype, dst.dtype);
  const [s, u] = [upload(device, slots), uniform(device, SCATTER_PARAMS.bytes({ R, H, C, blockSize }))];
  const groups = groupsOf(R * H * C);
  const bind = bindBuffers(device, pipe, [x.buffer, s, dst.buffer, u]);
  submit(device, encodePass(device, pipe, bind, Math.min(groups, 65535), Math.ceil(groups / 65535)));
  release(device, s, u);
}

/** Rows [first, first + n) of x [R, C] as a new tensor [n, C] (a buffer copy). */
export function rowsGpu(x: GpuTensor, first: number, n: number): GpuTensor {
  const C = x.shape[x.shape.length - 1];
  const R = x.size / C;
  if (first < 0 || n < 1 || first + n > R) throw new QkvError(`rowsGpu: rows ${first}…${first + n - 1} of ${R}`);
  const out = GpuTensor.empty(x.device, [n, C]);
  const enc = x.device.createCommandEncoder();
  enc.copyBufferToBuffer(x.buffer, 4 * first * C, out.buffer, 0, 4 * n * C);
  submit(x.device, enc.finish());
  return out;
}
