// attentionWebGPU(q, k, v, options): attention on the GPU through WebGPU (src/kernels/webgpu), with the same options
// and results as attention() for what the WGSL kernel covers; without an adapter, or for options it does not cover
// yet, the call runs on the CPU and warns once. Async: GPU results come back through a buffer map.
import { gpuDevice } from '../kernels/webgpu/device.js';
import { webgpuFlashForward, webgpuUnsupported } from '../kernels/webgpu/sdpa-flash.js';
import { Tensor } from '../tensor/tensor.js';
import { attention } from './index.js';
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
  const table = o.blockSparse ? blockSparseTable(o.blockSparse, dims.S) : undefined;
  const r = await webgpuFlashForward(device, dims, q.toFloat32(), k.toFloat32(), v.toFloat32(), o, table);
  const out = Tensor.from(r.out, [dims.B, dims.Hq, dims.L, dims.Dv]);
  return { out: q.dtype === 'float32' ? out : out.to(q.dtype), lse: Tensor.from(r.lse, [dims.B, dims.Hq, dims.L]), device: 'webgpu' };
}

const warned = new Set<string>();
function warnOnce(why: string): void {
  if (warned.has(why)) return;
  warned.add(why);
  console.warn(`qkv: attention on the CPU instead of WebGPU (${why})`);
}
