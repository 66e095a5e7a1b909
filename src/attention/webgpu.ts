// attentionWebGPU(q, k, v, options): attention on the GPU through WebGPU (src/kernels/webgpu), with the same options
// and results as attention() for what the WGSL kernel covers; without an adapter, or for options it does not cover
// yet, the call runs on the CPU and warns once. Async: GPU results come back through a buffer map. The options are
// lowered once to a mask plan (mask-plan.ts) and the kernel is chosen by dispatch.ts (gpuKernelFor) among the WGSL
// kernels registered by kernels/webgpu/index.ts; attentionOverGpuCache does the same over a GPU KV cache.
import { gpuDevice, hasF16 } from '../kernels/webgpu/device.js';
import type { AttnDims, GpuOperands, GpuSdpaRequest, MaskPlan } from '../kernels/contract.js';
import { getGpuBackwardKernel, getGpuLayerKernels, getGpuPagedKernel } from '../kernels/registry.js';
import '../kernels/webgpu/index.js';
import { readBackBytes } from '../kernels/webgpu/buffers.js';
import { validated } from '../kernels/webgpu/pipelines.js';
import { GpuTensor, type GpuDType } from '../kernels/webgpu/gpu-tensor.js';
import { pagedAttention, type PagedProblem } from './paged.js';
import { Tensor } from '../tensor/tensor.js';
import { describeValue, QkvError } from '../errors.js';
import { attention, attentionBackward, type AttentionBackwardOptions } from './index.js';
import { gpuKernelFor } from './dispatch.js';
import { lowerMaskSpec, maskPlan } from './mask-plan.js';
import { applySinks, sinkGradient, sinkLogits } from './sinks.js';
import type { AttentionOptions } from './options.js';
import { checkDout, checkOptionKeys, checkPagedProblem, checkQkv, checkQkvShapes } from './validate.js';

// the options the WGSL kernels take (as a mask plan, mask-plan.ts); the rest (JavaScript functions) run on the CPU
const SUPPORTED = new Set(['scale', 'causal', 'window', 'dilation', 'keyLengths', 'softcap', 'alibiSlopes', 'kernel',
  'globalTokens', 'blockSparse', 'cuSeqlens', 'prefix', 'mask', 'bias', 'returnWeights', 'returnStats', 'blockM', 'blockN', 'numSplits',
  'sinks']);

/** Why the WGSL kernels cannot take these options, or null when they can. */
export function webgpuUnsupported(o: AttentionOptions, D: number, Dv: number): string | null {
  const extra = Object.keys(o).filter((k) => !SUPPORTED.has(k) && (o as Record<string, unknown>)[k] !== undefined);
  if (extra.length) return `option${extra.length > 1 ? 's' : ''} ${extra.join(', ')} not on WebGPU (JavaScript functions run on the CPU)`;
  if (o.mask && !(o.mask instanceof Tensor)) {
    return 'a mask spec (masks.*) that options cannot express (most ORs, a maskMod) is not on WebGPU';
  }
  if (o.returnWeights || o.returnStats) return 'weights and statistics come from the CPU kernels';
  const bias = o.bias ?? (o.mask instanceof Tensor && o.mask.dtype !== 'bool' ? o.mask : undefined);
  if (bias && beyondSentinel(bias)) {
    return "a bias of ±2^126 or more (torch's finfo.min mask): the WGSL kernels' −3.4e38 means a masked score";
  }
  if (Dv > 256 || D > 256) return `head_dim ${Math.max(D, Dv)} > 256`;
  if (D < 1) return 'empty head_dim';
  return null;
}

// Whether a bias holds a finite value of 2^126 or more in size. The WGSL kernels have no infinity: −3.4e38 (f32's most
// negative value) marks a masked score, so torch's finfo.min additive mask made a row masked that way everywhere an empty
// one (out 0) where PyTorch and the CPU kernels give the mean of its values.
function beyondSentinel(bias: Tensor): boolean {
  const data = bias.toFloat32();
  for (let i = 0; i < data.length; i++) if (Math.abs(data[i]) >= 2 ** 126 && data[i] !== -Infinity) return true;
  return false;
}

/** The WGSL kernel that ran: tiled flash attention (f32/f16), its tensor-core variant, or split-K decoding. */
export type GpuKernel = 'webgpu-flash' | 'webgpu-tensor-cores' | 'webgpu-decode';
/** Out and lse where they were computed, and the kernel that computed them. */
export interface GpuResult<T> { out: T; lse: T; device: 'webgpu'; kernel: GpuKernel }
/** Without an adapter (or for options the WGSL kernels do not take): attention() on the CPU, and its kernel. */
export interface CpuResult { out: Tensor; lse: Tensor; device: 'cpu'; kernel: string }

/**
 * Attention on the GPU: resolves to out [B, Hq, L, Dv] (q's dtype), lse [B, Hq, L], where it ran and the kernel. Given
 * GpuTensors (toGpu), the inputs are read where they are and out and lse stay on the GPU (lse −∞ reads as −3.4e38).
 * @example const { out, device } = await attentionWebGPU(q, k, v, { causal: true });
 */
export async function attentionWebGPU(q: GpuTensor, k: GpuTensor, v: GpuTensor, o?: AttentionOptions): Promise<GpuResult<GpuTensor>>;
export async function attentionWebGPU(q: Tensor, k: Tensor, v: Tensor, o?: AttentionOptions): Promise<GpuResult<Tensor> | CpuResult>;
export async function attentionWebGPU(q: Tensor | GpuTensor, k: Tensor | GpuTensor, v: Tensor | GpuTensor, o: AttentionOptions = {}):
  Promise<GpuResult<Tensor | GpuTensor> | CpuResult> {
  checkOptionKeys(o, 'attentionWebGPU');
  o = lowerMaskSpec(o);
  const onGpu = [q, k, v].find((t) => t instanceof GpuTensor);
  if (onGpu instanceof GpuTensor) return validated(onGpu.device, 'attention', () => attentionOnGpu(q, k, v, o));
  if (!(q instanceof Tensor && k instanceof Tensor && v instanceof Tensor)) throw new QkvError('attentionWebGPU: q, k, v must all be Tensors or all GpuTensors');
  const dims = checkQkv(q, k, v, 'attentionWebGPU');
  const why = webgpuUnsupported(o, dims.D, dims.Dv);
  const device = why ? null : await gpuDevice();
  if (!device) {
    warnOnce(why ?? 'no WebGPU adapter');
    const r = attention(q, k, v, o);
    return { out: r.out, lse: r.lse, device: 'cpu', kernel: r.kernel };
  }
  // host tensors: in (f16 stays f16 where the device has shader-f16), the resident call, and back
  const [qg, kg, vg] = [q, k, v].map((t) => uploadTensor(device, t, sameF16(q, k, v) && hasF16(device)));
  const { sinks, ...kernelOptions } = o; // learned sinks rescale the results on the host (sinks.ts)
  try {
    const [outData, lseData, kernel] = await attentionRead(device, qg, kg, vg, kernelOptions);
    const outShape = [dims.B, dims.Hq, dims.L, dims.Dv];
    let out = qg.dtype === 'float16' ? new Tensor('float16', new Uint16Array(outData), outShape)
      : Tensor.from(new Float32Array(outData), outShape);
    let lse = Tensor.from(new Float32Array(lseData).map((x) => (x <= -3.4e38 ? -Infinity : x)), [dims.B, dims.Hq, dims.L]); // −∞ restored
    if (sinks !== undefined) {
      const r = { out: Float32Array.from(out.toFloat32()), lse: Float32Array.from(lse.toFloat32()) };
      applySinks(r, sinkLogits(sinks, dims.Hq, 'attentionWebGPU'), dims.L, dims.Dv, dims.S);
      [out, lse] = [Tensor.from(r.out, outShape), Tensor.from(r.lse, lse.shape)];
    }
    return { out: q.dtype === out.dtype ? out : out.to(q.dtype), lse, device: 'webgpu', kernel };
  } finally {
    for (const t of [qg, kg, vg]) t.release();
  }
}

const sameF16 = (...ts: Tensor[]) => ts.every((t) => t.dtype === 'float16');

// a host tensor as a new GPU tensor: its f16 bits when `f16`, else float32 values
function uploadTensor(device: GPUDevice, t: Tensor, f16: boolean): GpuTensor {
  return f16 ? GpuTensor.upload(device, t.contiguous().data as Uint16Array, t.shape) : GpuTensor.upload(device, t.toFloat32(), t.shape);
}

// q, k, v already on the GPU: checked like attention()'s inputs, run without a transfer, results left there
function attentionOnGpu(q: Tensor | GpuTensor, k: Tensor | GpuTensor, v: Tensor | GpuTensor, o: AttentionOptions):
  GpuResult<GpuTensor> {
  if (!(q instanceof GpuTensor && k instanceof GpuTensor && v instanceof GpuTensor)) throw new QkvError('attentionWebGPU: q, k, v must all be Tensors or all GpuTensors (toGpu moves one)');
  if (q.device !== k.device || q.device !== v.device) throw new QkvError('attentionWebGPU: q, k, v live on different GPU devices');
  const dims = checkQkvShapes(q.shape, k.shape, v.shape, 'attentionWebGPU');
  const { B, Hq, L, Dv } = dims;
  if (k.dtype !== q.dtype || v.dtype !== q.dtype) throw new QkvError(`attentionWebGPU: q, k, v must have one dtype on the GPU, got ${q.dtype}, ${k.dtype}, ${v.dtype}`);
  if (q.dtype === 'float16' && !hasF16(q.device)) throw new QkvError('attentionWebGPU: float16 GpuTensors need a device with shader-f16 (toGpu makes float32 ones elsewhere)');
  const why = o.sinks !== undefined ? 'learned sinks rescale results on the host' : webgpuUnsupported(o, dims.D, Dv);
  if (why) throw new QkvError(`attentionWebGPU: ${why}; these GpuTensors would have to come back to the CPU (read them first)`);
  const out = GpuTensor.empty(q.device, [B, Hq, L, Dv], q.dtype); // f16 in, f16 out (lse is always f32)
  const lse = GpuTensor.empty(q.device, [B, Hq, L]);
  const buffers = { q: q.buffer, k: k.buffer, v: v.buffer, out: out.buffer, lse: lse.buffer, dtype: q.dtype };
  const req = { plain: o.kernel === 'flash', blockM: o.blockM, blockN: o.blockN };
  const kernel = recordAttention(q.device, dims, maskPlan(dims, o), buffers, req);
  return { out, lse, device: 'webgpu', kernel };
}

// one call on GPU buffers: the kernel the dispatcher chooses (dispatch.ts: gpuKernelFor) records its passes
function recordAttention(device: GPUDevice, dims: AttnDims, plan: MaskPlan, b: GpuOperands, req: GpuSdpaRequest = {}): GpuKernel {
  const kernel = gpuKernelFor(device, dims, plan, b, req);
  kernel.record(device, dims, plan, b, req);
  return kernel.name as GpuKernel;
}

// the resident call on uploaded tensors, the bytes of its out (q's dtype) and lse (f32, −∞ as −3.4e38), and the kernel
// that ran; errors surfaced
async function attentionRead(device: GPUDevice, q: GpuTensor, k: GpuTensor, v: GpuTensor, o: AttentionOptions):
  Promise<[ArrayBuffer, ArrayBuffer, GpuKernel]> {
  return validated(device, 'attention', async () => {
    const r = attentionOnGpu(q, k, v, o);
    const outBytes = (q.dtype === 'float16' ? 2 : 4) * r.out.size;
    try {
      const [out, lse] = await readBackBytes(device, [], [[r.out.buffer, outBytes], [r.lse.buffer, 4 * r.lse.size]]);
      return [out, lse, r.kernel];
    } finally { r.out.release(); r.lse.release(); }
  });
}

/**
 * A copy of `t` on the GPU, or null when there is no WebGPU adapter. A float16 tensor stays float16 where the device
 * has shader-f16 (the attention kernels then read and write f16); everything else goes up as float32.
 */
export async function toGpu(t: Tensor): Promise<GpuTensor | null> {
  const device = await gpuDevice();
  return device ? uploadTensor(device, t, t.dtype === 'float16' && hasF16(device)) : null;
}

/** A GPU tensor's values back on the CPU, as a Tensor of its shape and dtype. */
export async function toCpu(t: GpuTensor): Promise<Tensor> {
  if (typeof (t as { read?: unknown } | null)?.read !== 'function') {
    throw new QkvError(`toCpu: t must be a GpuTensor, got ${describeValue(t)}`);
  }
  return Tensor.from(await t.read(), [...t.shape], t.dtype);
}

/**
 * Gradients of attention on the GPU (f32; sdpa-backward.wgsl): dq, dk, dv for the upstream gradient dout, with the
 * same options as attentionWebGPU. Uses `out` and `lse` when given, else runs the forward on the GPU first. Without an
 * adapter, or for options the WGSL kernels do not cover, runs attentionBackward on the CPU and warns once.
 * @example const { dq, dk, dv } = await attentionBackwardWebGPU(q, k, v, dout, { causal: true });
 */
export async function attentionBackwardWebGPU(q: Tensor, k: Tensor, v: Tensor, dout: Tensor, o: AttentionBackwardOptions = {}):
  Promise<{ dq: Tensor; dk: Tensor; dv: Tensor; dsinks?: Tensor; device: 'webgpu' | 'cpu' }> {
  checkOptionKeys(o, 'attentionBackwardWebGPU');
  const dims = checkQkv(q, k, v, 'attentionBackwardWebGPU');
  const { B, Hq, Hkv, L, S, D, Dv } = dims;
  checkDout(dout, dims, 'attentionBackwardWebGPU');
  const { out: givenOut, lse: givenLse, sinks: sinkOption, ...options } = lowerMaskSpec(o);
  const sinks = sinkOption === undefined ? null : sinkLogits(sinkOption, Hq, 'attentionBackwardWebGPU');
  const why = webgpuUnsupported(options, D, Dv);
  const device = why ? null : await gpuDevice();
  if (!device) {
    warnOnce(why ?? 'no WebGPU adapter');
    return { ...attentionBackward(q, k, v, dout, o), device: 'cpu' };
  }
  let out = givenOut?.toFloat32();
  let lse = givenLse?.toFloat32();
  if (out && out.length !== B * Hq * L * Dv) throw new QkvError(`attentionBackwardWebGPU: out must be [${B}, ${Hq}, ${L}, ${Dv}]`);
  if (lse && lse.length !== B * Hq * L) throw new QkvError(`attentionBackwardWebGPU: lse must be [${B}, ${Hq}, ${L}]`);
  // q, k, v go up once, for the forward (when out and lse are not given) and the backward
  const [qg, kg, vg] = [q, k, v].map((t) => uploadTensor(device, t, false));
  const qkv = { q: qg.buffer, k: kg.buffer, v: vg.buffer };
  let g: { dq: Float32Array; dk: Float32Array; dv: Float32Array };
  try {
    if (!out || !lse) {
      const [outBytes, lseBytes] = await attentionRead(device, qg, kg, vg, options);
      [out, lse] = [new Float32Array(outBytes), new Float32Array(lseBytes)];
      if (sinks) applySinks({ out, lse }, sinks, L, Dv, S); // the backward reads o′ and lse′ (sinks.ts)
    }
    g = await getGpuBackwardKernel().run(device, dims, qkv, out, lse, dout.toFloat32(), maskPlan(dims, options));
  } finally {
    for (const t of [qg, kg, vg]) t.release();
  }
  const as = (data: Float32Array, shape: number[], like: Tensor) => { const t = Tensor.from(data, shape); return like.dtype === 'float32' ? t : t.to(like.dtype); };
  const dsinks = sinks ? { dsinks: Tensor.from(sinkGradient(out!, lse!, dout.toFloat32(), sinks, L, Dv), [Hq]) } : {};
  const grads = { dq: as(g.dq, [B, Hq, L, D], q), dk: as(g.dk, [B, Hkv, S, D], k), dv: as(g.dv, [B, Hkv, S, Dv], v) };
  return { ...grads, ...dsinks, device: 'webgpu' };
}

/**
 * Paged attention on the GPU: q against keys and values read through each row's block table (the problem the paged
 * KV cache builds; see src/kernels/cpu/sdpa-paged.ts). Resolves to out [B, Hq, T, Dv] and lse [B, Hq, T]; runs on the
 * CPU, warning once, without an adapter or for int8 pools.
 */
export async function pagedAttentionWebGPU(p: PagedProblem): Promise<{ out: Float32Array; lse: Float32Array; device: 'webgpu' | 'cpu' }> {
  checkPagedProblem(p, 'pagedAttentionWebGPU');
  const kernel = getGpuPagedKernel();
  const why = kernel.unsupported(p);
  const device = why ? null : await gpuDevice();
  if (!device) {
    warnOnce(why ?? 'no WebGPU adapter');
    const r = pagedAttention(p);
    return { out: r.out, lse: r.lse, device: 'cpu' };
  }
  const r = await kernel.run(device, p);
  if (p.sinks) applySinks(r, sinkLogits(p.sinks, p.Hq, 'pagedAttentionWebGPU'), p.T, p.pool.Dv, 0); // learned sinks
  return { ...r, device: 'webgpu' };
}

const warned = new Set<string>();
function warnOnce(why: string): void {
  if (warned.has(why)) return;
  warned.add(why);
  console.warn(`qkv: attention on the CPU instead of WebGPU (${why})`);
}

/** What attention needs of a GPU KV cache (cache/webgpu.ts): its device, and a store that returns the layer's keys
 *  [Hkv, cap, D] and values [Hkv, cap, Dv], the first `len` rows of each head filled. */
export interface GpuKVStore {
  readonly device: GPUDevice;
  store(layer: number, k: GpuTensor, v: GpuTensor): { k: GpuTensor; v: GpuTensor; len: number; cap: number; dtype: GpuDType };
}

/** One layer's attention over a GPU KV cache: the new tokens' q [T, Hq, D], k [T, Hkv, D] (RoPE applied), v [T, Hkv, Dv]. */
export interface GpuCacheAttend { q: GpuTensor; k: GpuTensor; v: GpuTensor; scale: number; slidingWindow?: number | null; softcap?: number }

/**
 * Stores k and v in the GPU cache and attends the new queries (positions len − T … len − 1) to every kept key, where the
 * cache is: split-K decoding for a few new tokens (the buffers are a block pool with one block of `cap` slots), the
 * tiled kernel for a prompt (on the tensor cores for an f16 cache where the device has them). Returns out [T, Hq·Dv].
 */
export function attentionOverGpuCache(cache: GpuKVStore, layer: number, a: GpuCacheAttend): GpuTensor {
  const [T, Hq, D] = a.q.shape;
  const [, Hkv, Dv] = a.v.shape;
  const view = cache.store(layer, a.k, a.v);
  const dtype = view.dtype; // q, k, v and out of the kernels (an f16 cache: the queries rounded to f16, f32 arithmetic)
  const q = getGpuLayerKernels('webgpu').transpose01(a.q, undefined, dtype); // [Hq, T, D]
  const out = GpuTensor.empty(cache.device, [Hq, T, Dv], dtype);
  const lse = GpuTensor.empty(cache.device, [Hq, T]);
  const W = a.slidingWindow ?? null;
  const buffers = { q: q.buffer, k: view.k.buffer, v: view.v.buffer, out: out.buffer, lse: lse.buffer, dtype };
  // S = the capacity (the buffers' head stride); row i sits at key i + len − T, so nothing past len is read
  const dims = { B: 1, Hq, Hkv, L: T, S: view.cap, D, Dv };
  const o = { scale: a.scale, causal: true, window: W ? [W - 1, 0] as [number, number] : undefined, softcap: a.softcap || undefined };
  recordAttention(cache.device, dims, maskPlan(dims, o, view.len - T), buffers); // split-K for a few new tokens
  const merged = getGpuLayerKernels('webgpu').transpose01(out, undefined, 'float32'); // [T, Hq, Dv], f32 for the rest of the layer
  for (const t of [q, out, lse]) t.release();
  return merged.reshape([T, Hq * Dv]);
}

/** What attention needs of a GPU paged cache (GpuPagedKVCache, cache/webgpu.ts): a store of the call's B rows of T new tokens. */
export interface GpuPagedStore {
  readonly device: GPUDevice;
  store(layer: number, k: GpuTensor, v: GpuTensor, B: number, T: number):
    { k: GpuTensor; v: GpuTensor; blockSize: number; aux: Uint32Array; maxS: number; maxBlocks: number };
}

/**
 * One layer's attention of B rows of T new tokens over a GPU paged cache — q [B·T, Hq, D], k [B·T, Hkv, D] (RoPE
 * applied), v [B·T, Hkv, Dv], row b's tokens together — through each row's block table (split-K paged decoding, the
 * kernel the CPU's paged attention is tested against). B rows of one token (decoding a batch) or one row of T (a
 * prompt chunk). Returns out [B·T, Hq·Dv].
 */
export function attentionOverGpuPaged(cache: GpuPagedStore, layer: number, a: GpuCacheAttend & { B: number; T: number }): GpuTensor {
  const { B, T } = a;
  const [, Hq, D] = a.q.shape;
  const [, Hkv, Dv] = a.v.shape;
  if (T > 1 && B > 1) throw new QkvError(`attentionOverGpuPaged: B rows of one token or one row of T tokens, got B=${B}, T=${T}`);
  if (D > 256 || Dv > 256) throw new QkvError(`attentionOverGpuPaged: head_dim ${Math.max(D, Dv)} > 256 runs on the CPU`);
  const view = cache.store(layer, a.k, a.v, B, T);
  const gpu = getGpuLayerKernels('webgpu');
  // the kernel's q is [B, Hq, T, D]: the same order as [B·T, Hq, D] when T = 1; one row's [T, Hq, D] is transposed
  const q = T === 1 ? a.q : gpu.transpose01(a.q);
  const out = GpuTensor.empty(cache.device, [B * Hq * T * Dv]);
  const lse = GpuTensor.empty(cache.device, [B * Hq * T]);
  getGpuPagedKernel().record(cache.device, {
    q: q.buffer, k: view.k.buffer, v: view.v.buffer, out: out.buffer, lse: lse.buffer, B, Hq, T,
    scale: a.scale, softcap: a.softcap ?? 0, causal: true, window: a.slidingWindow ?? null,
    pool: { blockSize: view.blockSize, Hkv, D, Dv }, aux: view.aux, maxS: view.maxS, maxBlocks: view.maxBlocks,
  });
  const merged = T === 1 ? out : gpu.transpose01(out.reshape([Hq, T, Dv])); // [B·T, Hq, Dv]
  for (const t of T === 1 ? [lse] : [q, out, lse]) t.release();
  return merged.reshape([B * T, Hq * Dv]);
}
