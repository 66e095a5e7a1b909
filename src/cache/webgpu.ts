// A KV cache that lives on the GPU, for generation on WebGPU: per layer one buffer [Hkv, capacity, D] of keys and one
// of values, doubled when full (one batch row). New keys and values are written into place by a transpose kernel —
// nothing is read back — and attention runs over the filled part where the cache is: split-K decoding for a few new
// tokens (the buffers are a block pool with a single block of `capacity` slots), the tiled kernel for a prompt.
// The GPU counterpart of contiguous.ts; the CPU caches stay the reference it is tested against.
import { QkvError } from '../errors.js';
import { GpuTensor } from '../kernels/webgpu/gpu-tensor.js';
import { transpose01Gpu } from '../kernels/webgpu/ops.js';
import { denseDecodeOnGpu } from '../kernels/webgpu/sdpa-decode.js';
import { flashOnGpu } from '../kernels/webgpu/sdpa-flash.js';

interface Layer { k: GpuTensor; v: GpuTensor; cap: number; len: number; Hkv: number; D: number; Dv: number }

/** What one layer's attention takes: the new tokens' q [T, Hq, D], k [T, Hkv, D] (RoPE applied) and v [T, Hkv, Dv]. */
export interface GpuAttend { q: GpuTensor; k: GpuTensor; v: GpuTensor; scale: number; slidingWindow?: number | null; softcap?: number }

export class GpuKVCache {
  private readonly layers: (Layer | undefined)[];

  constructor(readonly device: GPUDevice, readonly numLayers: number, readonly initialCapacity = 256) {
    this.layers = new Array(numLayers);
  }

  length(layer: number): number { return this.layers[layer]?.len ?? 0; }

  /** Appends k, v to `layer` and attends the new queries to every cached key: out [T, Hq·Dv]. */
  async attend(layer: number, a: GpuAttend): Promise<GpuTensor> {
    const [T, Hq, D] = a.q.shape;
    const [, Hkv, Dv] = a.v.shape;
    if (layer < 0 || layer >= this.numLayers) throw new QkvError(`GpuKVCache: layer ${layer} out of range [0, ${this.numLayers})`);
    let L = this.layers[layer];
    if (!L) L = this.layers[layer] = { k: GpuTensor.empty(this.device, [Hkv, 0, D]), v: GpuTensor.empty(this.device, [Hkv, 0, Dv]), cap: 0, len: 0, Hkv, D, Dv };
    if (L.Hkv !== Hkv || L.D !== D || L.Dv !== Dv || a.k.shape.join() !== [T, Hkv, D].join()) {
      throw new QkvError(`GpuKVCache: layer ${layer} holds [Hkv=${L.Hkv}, ·, D=${L.D}], got k [${a.k.shape.join(', ')}], v [${a.v.shape.join(', ')}]`);
    }
    if (L.len + T > L.cap) this.grow(L, Math.max(this.initialCapacity, 2 * L.cap, L.len + T));
    // 1. the new keys and values into rows len … len + T − 1 of each head
    await transpose01Gpu(a.k, { dst: L.k, capA: L.cap, off: L.len });
    await transpose01Gpu(a.v, { dst: L.v, capA: L.cap, off: L.len });
    L.len += T;
    // 2. attention of the new queries (positions len − T … len − 1) over keys 0 … len − 1
    const q = await transpose01Gpu(a.q); // [Hq, T, D]
    const out = GpuTensor.empty(this.device, [Hq, T, Dv]);
    const lse = GpuTensor.empty(this.device, [Hq, T]);
    const W = a.slidingWindow ?? null;
    if (T <= 8) {
      await denseDecodeOnGpu(this.device, { B: 1, Hq, Hkv, L: T, S: L.cap, D, Dv }, { scale: a.scale, softcap: a.softcap ?? 0, causal: true, window: W },
        { q: q.buffer, k: L.k.buffer, v: L.v.buffer, out: out.buffer, lse: lse.buffer }, L.len);
    } else {
      // S = the capacity (the buffers' head stride); row i's last key is i + len − T, so nothing past len is read
      const dims = { B: 1, Hq, Hkv, L: T, S: L.cap, D, Dv };
      await flashOnGpu(this.device, dims, { scale: a.scale, causal: true, window: W ? [W - 1, 0] : undefined, softcap: a.softcap || undefined },
        { q: q.buffer, k: L.k.buffer, v: L.v.buffer, out: out.buffer, lse: lse.buffer }, undefined, L.len - T);
    }
    const merged = await transpose01Gpu(out); // [T, Hq, Dv]
    for (const t of [q, out, lse]) t.release();
    return merged.reshape([T, Hq * Dv]);
  }

  // a larger capacity changes the head stride: copy each head's filled rows into the new buffers
  private grow(L: Layer, cap: number): void {
    const k = GpuTensor.empty(this.device, [L.Hkv, cap, L.D]);
    const v = GpuTensor.empty(this.device, [L.Hkv, cap, L.Dv]);
    if (L.len > 0) {
      const enc = this.device.createCommandEncoder();
      for (let h = 0; h < L.Hkv; h++) {
        enc.copyBufferToBuffer(L.k.buffer, 4 * h * L.cap * L.D, k.buffer, 4 * h * cap * L.D, 4 * L.len * L.D);
        enc.copyBufferToBuffer(L.v.buffer, 4 * h * L.cap * L.Dv, v.buffer, 4 * h * cap * L.Dv, 4 * L.len * L.Dv);
      }
      this.device.queue.submit([enc.finish()]);
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
