// attentionWebGPU(q, k, v, options): attention on the GPU through WebGPU (src/kernels/webgpu), with the same options
// and results as attention() for what the WGSL kernel covers; without an adapter, or for options it does not cover
// yet, the call runs on the CPU and warns once. Async: GPU results come back through a buffer map.
import { gpuDevice } from '../kernels/webgpu/device.js';
import { webgpuFlashForward, webgpuUnsupported } from '../kernels/webgpu/sdpa-flash.js';
import { decodeCovers, pagedUnsupported, webgpuDecodeForward, webgpuPagedAttention } from '../kernels/webgpu/sdpa-decode.js';
import { pagedAttention, type PagedProblem } from '../kernels/cpu/sdpa-paged.js';
import { Tensor } from '../tensor/tensor.js';
import { webgpuFlashBackward } from '../kernels/webgpu/sdpa-backward.js';
import { QkvError } from '../errors.js';
import { attention, attentionBackward, type AttentionBackwardOptions } from './index.js';
import { blockSparseTable } from './masks.js';
import type { AttentionOptions } from './options.js';
import { checkOptionKeys, checkQkv } from './validate.js';

/**
 * Attention on the GPU: resolves to out [B, Hq, L, Dv] (q's dtype), lse [B, Hq, L], and where it ran.
 * @example const { out, device } = await attentionWebGPU(q, k, v, { causal: true });
 */
export async function attentionWebGPU(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions = {}): Promise<{ out: Tensor; lse: Tensor; device: 'webgpu' | 'cpu' }> {
  checkOptionKeys(o, 'attentionWebGPU');
  const dims = checkQkv(q, k, v, 'attentionWebGPU');
  const why = webgpuUnsupported(o, dims.D, dims.Dv);
  const device = why ? null : await gpuDevice();
  if (!device) {
    warnOnce(why ?? 'no WebGPU adapter');
    const r = attention(q, k, v, o);
    return { out: r.out, lse: r.lse, device: 'cpu' };
  }
  // a few query rows (decoding): split-K over the keys; otherwise a workgroup per 64 query rows
  const table = o.blockSparse ? blockSparseTable(o.blockSparse, dims.S) : undefined;
  const r = decodeCovers(o, dims)
    ? await webgpuDecodeForward(device, dims, q.toFloat32(), k.toFloat32(), v.toFloat32(), o)
    : await webgpuFlashForward(device, dims, q.toFloat32(), k.toFloat32(), v.toFloat32(), o, table);
  const out = Tensor.from(r.out, [dims.B, dims.Hq, dims.L, dims.Dv]);
  return { out: q.dtype === 'float32' ? out : out.to(q.dtype), lse: Tensor.from(r.lse, [dims.B, dims.Hq, dims.L]), device: 'webgpu' };
}

/**
 * Gradients of attention on the GPU (f32; sdpa-backward.wgsl): dq, dk, dv for the upstream gradient dout, with the
 * same options as attentionWebGPU. Uses `out` and `lse` when given, else runs the forward on the GPU first. Without an
 * adapter, or for options the WGSL kernels do not cover, runs attentionBackward on the CPU and warns once.
 * @example const { dq, dk, dv } = await attentionBackwardWebGPU(q, k, v, dout, { causal: true });
 */
export async function attentionBackwardWebGPU(q: Tensor, k: Tensor, v: Tensor, dout: Tensor, o: AttentionBackwardOptions = {}): Promise<{ dq: Tensor; dk: Tensor; dv: Tensor; device: 'webgpu' | 'cpu' }> {
  checkOptionKeys(o, 'attentionBackwardWebGPU');
  const dims = checkQkv(q, k, v, 'attentionBackwardWebGPU');
  const { B, Hq, Hkv, L, S, D, Dv } = dims;
  const want = [B, Hq, L, Dv];
  if (!(dout instanceof Tensor) || dout.shape.join() !== want.join()) {
    throw new QkvError(`attentionBackwardWebGPU: dout must have the output's shape [${want.join(', ')}], got ${dout instanceof Tensor ? `[${dout.shape.join(', ')}]` : typeof dout}`);
  }
  const { out: givenOut, lse: givenLse, ...options } = o;
  const why = webgpuUnsupported(options, D, Dv);
  const device = why ? null : await gpuDevice();
  if (!device) {
    warnOnce(why ?? 'no WebGPU adapter');
    return { ...attentionBackward(q, k, v, dout, o), device: 'cpu' };
  }
  const table = options.blockSparse ? blockSparseTable(options.blockSparse, S) : undefined;
  const [qa, ka, va] = [q.toFloat32(), k.toFloat32(), v.toFloat32()];
  let out = givenOut?.toFloat32();
  let lse = givenLse?.toFloat32();
  if (out && out.length !== B * Hq * L * Dv) throw new QkvError(`attentionBackwardWebGPU: out must be [${want.join(', ')}]`);
  if (lse && lse.length !== B * Hq * L) throw new QkvError(`attentionBackwardWebGPU: lse must be [${B}, ${Hq}, ${L}]`);
  if (!out || !lse) ({ out, lse } = await webgpuFlashForward(device, dims, qa, ka, va, options, table));
  const g = await webgpuFlashBackward(device, dims, qa, ka, va, out, lse, dout.toFloat32(), options, table);
  const as = (data: Float32Array, shape: number[], like: Tensor) => { const t = Tensor.from(data, shape); return like.dtype === 'float32' ? t : t.to(like.dtype); };
  return { dq: as(g.dq, [B, Hq, L, D], q), dk: as(g.dk, [B, Hkv, S, D], k), dv: as(g.dv, [B, Hkv, S, Dv], v), device: 'webgpu' };
}

/**
 * Paged attention on the GPU: q against keys and values read through each row's block table (the problem the paged
 * KV cache builds; see src/kernels/cpu/sdpa-paged.ts). Resolves to out [B, Hq, T, Dv] and lse [B, Hq, T]; runs on the
 * CPU, warning once, without an adapter or for int8 pools.
 */
export async function pagedAttentionWebGPU(p: PagedProblem): Promise<{ out: Float32Array; lse: Float32Array; device: 'webgpu' | 'cpu' }> {
  const why = pagedUnsupported(p);
  const device = why ? null : await gpuDevice();
  if (!device) {
    warnOnce(why ?? 'no WebGPU adapter');
    const r = pagedAttention(p);
    return { out: r.out, lse: r.lse, device: 'cpu' };
  }
  return { ...(await webgpuPagedAttention(device, p)), device: 'webgpu' };
}

const warned = new Set<string>();
function warnOnce(why: string): void {
  if (warned.has(why)) return;
  warned.add(why);
  console.warn(`qkv: attention on the CPU instead of WebGPU (${why})`);
}
