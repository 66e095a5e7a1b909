// A KV cache that lives on the GPU, for generation on WebGPU: per layer one buffer [Hkv, capacity, D] of keys and one
// of values, doubled when full (one batch row). It stores: new keys and values are written into place by a transpose
// kernel — nothing is read back — and `store` returns the layer's buffers as a view; attention over it runs where the
// cache is (attentionOverGpuCache, attention/webgpu.ts). Stored as float32, or float16 (shader-f16): half the memory,
// keys and values rounded once as they are written. The GPU counterpart of contiguous.ts; the CPU caches stay the
// reference it is tested against.
import { QkvError } from '../errors.js';
import { GpuTensor, type GpuDType } from '../kernels/webgpu/gpu-tensor.js';
import { submit } from '../kernels/webgpu/buffers.js';
import { hasF16 } from '../kernels/webgpu/device.js';
import { getGpuLayerKernels } from '../kernels/registry.js';
import '../kernels/webgpu/index.js';

interface Layer { k: GpuTensor; v: GpuTensor; cap: number; len: number; Hkv: number; D: number; Dv: number }

/** A layer's keys [Hkv, cap, D] and values [Hkv, cap, Dv] on the GPU, the first `len` rows of each head filled. */
export interface GpuKVView { k: GpuTensor; v: GpuTensor; len: number; cap: number; dtype: GpuDType }

export class GpuKVCache {
  private readonly layers: (Layer | undefined)[];

  constructor(readonly device: GPUDevice, readonly numLayers: number, readonly initialCapacity = 256, readonly dtype: GpuDType = 'float32') {
    if (dtype !== 'float32' && dtype !== 'float16') throw new QkvError(`GpuKVCache: dtype must be 'float32' or 'float16', got ${JSON.stringify(dtype)}`);
    if (dtype === 'float16' && !hasF16(device)) throw new QkvError('GpuKVCache: a float16 cache needs a device with shader-f16');
    this.layers = new Array(numLayers);
  }

  length(layer: number): number { return this.layers[layer]?.len ?? 0; }

  /** Appends k [T, Hkv, D] and v [T, Hkv, Dv] (RoPE applied) to `layer`; returns the layer's keys and values. */
  store(layer: number, k: GpuTensor, v: GpuTensor): GpuKVView {
    const [T, Hkv, D] = k.shape;
    const Dv = v.shape[2];
    if (layer < 0 || layer >= this.numLayers) throw new QkvError(`GpuKVCache: layer ${layer} out of range [0, ${this.numLayers})`);
    let L = this.layers[layer];
    if (!L) L = this.layers[layer] = { k: GpuTensor.empty(this.device, [Hkv, 0, D], this.dtype), v: GpuTensor.empty(this.device, [Hkv, 0, Dv], this.dtype), cap: 0, len: 0, Hkv, D, Dv };
    if (L.Hkv !== Hkv || L.D !== D || L.Dv !== Dv || v.shape.join() !== [T, Hkv, Dv].join()) {
      throw new QkvError(`GpuKVCache: layer ${layer} holds [Hkv=${L.Hkv}, ·, D=${L.D}], ` +
        `got k [${k.shape.join(', ')}], v [${v.shape.join(', ')}]`);
    }
    if (this.dtype === 'float16' && (D % 2 || Dv % 2)) throw new QkvError(`GpuKVCache: a float16 cache needs even head dims (its buffers grow by copies in 4-byte units), got D=${D}, Dv=${Dv}`);
    if (L.len + T > L.cap) this.grow(L, Math.max(this.initialCapacity, 2 * L.cap, L.len + T));
    // the new keys and values into rows len … len + T − 1 of each head
    getGpuLayerKernels('webgpu').transpose01(k, { dst: L.k, capA: L.cap, off: L.len });
    getGpuLayerKernels('webgpu').transpose01(v, { dst: L.v, capA: L.cap, off: L.len });
    L.len += T;
    return { k: L.k, v: L.v, len: L.len, cap: L.cap, dtype: this.dtype };
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
