// A KV cache that lives on the GPU, for generation on WebGPU: per layer one buffer [Hkv, capacity, D] of keys and one
// of values, doubled when full (one batch row). New keys and values are written into place by a transpose kernel —
// nothing is read back — and attention runs over the filled part where the cache is: split-K decoding for a few new
// tokens (the buffers are a block pool with a single block of `capacity` slots), the tiled kernel for a prompt.
// Stored as float32, or float16 (shader-f16): half the memory, keys and values rounded once as they are written, the
// queries rounded to f16 for the kernels, attention computed in f32 — and on the tensor cores for a prompt where the
// device has subgroup matrices. The GPU counterpart of contiguous.ts; the CPU caches stay the reference it is tested against.
import { QkvError } from '../errors.js';
import { GpuTensor, type GpuDType } from '../kernels/webgpu/gpu-tensor.js';
import { submit } from '../kernels/webgpu/buffers.js';
import { hasF16 } from '../kernels/webgpu/device.js';
import { transpose01Gpu } from '../kernels/webgpu/ops.js';
import { denseDecodeOnGpu } from '../kernels/webgpu/sdpa-decode.js';
import { flashOnGpu } from '../kernels/webgpu/sdpa-flash.js';

interface Layer { k: GpuTensor; v: GpuTensor; cap: number; len: number; Hkv: number; D: number; Dv: number }

/** What one layer's attention takes: the new tokens' q [T, Hq, D], k [T, Hkv, D] (RoPE applied) and v [T, Hkv, Dv]. */
export interface GpuAttend { q: GpuTensor; k: GpuTensor; v: GpuTensor; scale: number; slidingWindow?: number | null; softcap?: number }

export class GpuKVCache {
  private readonly layers: (Layer | undefined)[];

  constructor(readonly device: GPUDevice, readonly numLayers: number, readonly initialCapacity = 256, readonly dtype: GpuDType = 'float32') {
    if (dtype !== 'float32' && dtype !== 'float16') throw new QkvError(`GpuKVCache: dtype must be 'float32' or 'float16', got ${JSON.stringify(dtype)}`);
    if (dtype === 'float16' && !hasF16(device)) throw new QkvError('GpuKVCache: a float16 cache needs a device with shader-f16');
    this.layers = new Array(numLayers);
  }

  length(layer: number): number { return this.layers[layer]?.len ?? 0; }

  /** Appends k, v to `layer` and attends the new queries to every cached key: out [T, Hq·Dv]. */
  async attend(layer: number, a: GpuAttend): Promise<GpuTensor> {
    const [T, Hq, D] = a.q.shape;
    const [, Hkv, Dv] = a.v.shape;
    if (layer < 0 || layer >= this.numLayers) throw new QkvError(`GpuKVCache: layer ${layer} out of range [0, ${this.numLayers})`);
    let L = this.layers[layer];
    if (!L) L = this.layers[layer] = { k: GpuTensor.empty(this.device, [Hkv, 0, D], this.dtype), v: GpuTensor.empty(this.device, [Hkv, 0, Dv], this.dtype), cap: 0, len: 0, Hkv, D, Dv };
    if (L.Hkv !== Hkv || L.D !== D || L.Dv !== Dv || a.k.shape.join() !== [T, Hkv, D].join()) {
      throw new QkvError(`GpuKVCache: layer ${layer} holds [Hkv=${L.Hkv}, ·, D=${L.D}], got k [${a.k.shape.join(', ')}], v [${a.v.shape.join(', ')}]`);
    }
    if (this.dtype === 'float16' && (D % 2 || Dv % 2)) throw new QkvError(`GpuKVCache: a float16 cache needs even head dims (its buffers grow by copies in 4-byte units), got D=${D}, Dv=${Dv}`);
    if (L.len + T > L.cap) this.grow(L, Math.max(this.initialCapacity, 2 * L.cap, L.len + T));
    // 1. the new keys and values into rows len … len + T − 1 of each head
    await transpose01Gpu(a.k, { dst: L.k, capA: L.cap, off: L.len });
    await transpose01Gpu(a.v, { dst: L.v, capA: L.cap, off: L.len });
    L.len += T;
    // 2. attention of the new queries (positions len − T … len − 1) over keys 0 … len − 1
    const dtype = this.dtype; // q, k, v and out of the kernels
    const q = await transpose01Gpu(a.q, undefined, dtype); // [Hq, T, D]
    const out = GpuTensor.empty(this.device, [Hq, T, Dv], dtype);
    const lse = GpuTensor.empty(this.device, [Hq, T]);
    const W = a.slidingWindow ?? null;
    if (T <= 8) {
      await denseDecodeOnGpu(this.device, { B: 1, Hq, Hkv, L: T, S: L.cap, D, Dv }, { scale: a.scale, softcap: a.softcap ?? 0, causal: true, window: W },
        { q: q.buffer, k: L.k.buffer, v: L.v.buffer, out: out.buffer, lse: lse.buffer, dtype }, L.len);
    } else {
      // S = the capacity (the buffers' head stride); row i's last key is i + len − T, so nothing past len is read
      const dims = { B: 1, Hq, Hkv, L: T, S: L.cap, D, Dv };
      await flashOnGpu(this.device, dims, { scale: a.scale, causal: true, window: W ? [W - 1, 0] : undefined, softcap: a.softcap || undefined },
        { q: q.buffer, k: L.k.buffer, v: L.v.buffer, out: out.buffer, lse: lse.buffer, dtype }, undefined, L.len - T);
    }
    const merged = await transpose01Gpu(out, undefined, 'float32'); // [T, Hq, Dv], f32 for the rest of the layer
    for (const t of [q, out, lse]) t.release();
    return merged.reshape([T, Hq * Dv]);
  }

  // a larger capacity changes the head stride: copy each head's filled rows into the new buffers
  private grow(L: Layer, cap: number): void {
    const k = GpuTensor.empty(this.device, [L.Hkv, cap, L.D], this.dtype);
    const v = GpuTensor.empty(this.device, [L.Hkv, cap, L.Dv], this.dtype);
    if (L.len > 0) {
      const enc = this.device.createCommandEncoder();
      const bytes = this.dtype === 'float16' ? 2 : 4;
      for (let h = 0; h < L.Hkv; h++) {
        enc.copyBufferToBuffer(L.k.buffer, bytes * h * L.cap * L.D, k.buffer, bytes * h * cap * L.D, bytes * L.len * L.D);
        enc.copyBufferToBuffer(L.v.buffer, bytes * h * L.cap * L.Dv, v.buffer, bytes * h * cap * L.Dv, bytes * L.len * L.Dv);
      }
      submit(this.device, enc.finish());
    }
    L.k.release();
    L.v.release();
    Object.assign(L, { k, v, cap });
  }

  /** Gives every buffer back to the pool; the cache is empty afterwards. */
  release(): void {
    for (const L of this.layers) { L?.k.release(); L?.v.release(); }
    this.layers.fill(undefined);
  }
}
