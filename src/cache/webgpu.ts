// A KV cache that lives on the GPU, for generation on WebGPU: per layer one buffer [Hkv, capacity, D] of keys and one
// of values, doubled when full (one batch row). It stores: new keys and values are written into place by a transpose
// kernel — nothing is read back — and `store` returns the layer's buffers as a view; attention over it runs where the
// cache is (attentionOverGpuCache, attention/webgpu.ts). Stored as float32, or float16 (shader-f16): half the memory,
// keys and values rounded once as they are written. The GPU counterpart of contiguous.ts; the CPU caches stay the
// reference it is tested against. GpuPagedKVCache, below, is the GPU counterpart of paged.ts.
import { QkvError } from '../errors.js';
import { GpuTensor, type GpuDType } from '../kernels/webgpu/gpu-tensor.js';
import { submit } from '../kernels/webgpu/buffers.js';
import { hasF16 } from '../kernels/webgpu/device.js';
import { getGpuLayerKernels } from '../kernels/registry.js';
import '../kernels/webgpu/index.js';
import { BlockTables } from './block-tables.js';

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
    if (L.len + T > L.cap) this.#grow(L, Math.max(this.initialCapacity, 2 * L.cap, L.len + T));
    // the new keys and values into rows len … len + T − 1 of each head
    getGpuLayerKernels('webgpu').transpose01(k, { dst: L.k, capA: L.cap, off: L.len });
    getGpuLayerKernels('webgpu').transpose01(v, { dst: L.v, capA: L.cap, off: L.len });
    L.len += T;
    return { k: L.k, v: L.v, len: L.len, cap: L.cap, dtype: this.dtype };
  }

  // a larger capacity changes the head stride: copy each head's filled rows into the new buffers
  #grow(L: Layer, cap: number): void {
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

// ---- the paged cache -------------------------------------------------------------------------------------------------
// A paged KV cache on the GPU, for the batch engine on WebGPU (generate/engine.ts): the bookkeeping of every paged
// cache (block-tables.ts: tables, fork, truncate, copy-on-write) over one fixed pool per layer in GPU buffers,
// [blocks, Hkv, blockSize, D] — the layout of the CPU's paged cache, read by the WGSL decode kernel through the tables
// (sdpa-decode.wgsl). New keys and values are scattered into their slots by one pass per layer (scatter.wgsl);
// a copy-on-write copies a block with copyBufferToBuffer. Nothing is read back.

interface Pool { k: GpuTensor; v: GpuTensor; Hkv: number; D: number; Dv: number }

/** A layer's pools and what the decode kernel needs to read the call's rows through their tables. */
export interface GpuPagedView {
  k: GpuTensor; v: GpuTensor; blockSize: number;
  /** seqLens [B] · tables [B, maxBlocks] (the decode kernel's aux). */
  aux: Uint32Array; maxS: number; maxBlocks: number;
}

export class GpuPagedKVCache extends BlockTables {
  readonly kind = 'webgpu-paged';
  private readonly pools: (Pool | undefined)[];

  /** A fixed pool of `numBlocks` blocks of `blockSize` tokens (default 16) per layer. */
  constructor(readonly device: GPUDevice, readonly numLayers: number, o: { numBlocks: number; blockSize?: number }) {
    super(o.blockSize ?? 16, o.numBlocks, o.numBlocks);
    this.pools = new Array(numLayers);
  }

  protected growPools(): void {
    throw new QkvError('GPU paged cache: the pool is fixed'); // unreachable: maxBlocks = numBlocks
  }

  protected copyBlock(from: number, to: number): void {
    const enc = this.device.createCommandEncoder();
    for (const p of this.pools) {
      if (!p) continue;
      const [kBytes, vBytes] = [4 * p.Hkv * this.blockSize * p.D, 4 * p.Hkv * this.blockSize * p.Dv];
      enc.copyBufferToBuffer(p.k.buffer, from * kBytes, p.k.buffer, to * kBytes, kBytes);
      enc.copyBufferToBuffer(p.v.buffer, from * vBytes, p.v.buffer, to * vBytes, vBytes);
    }
    submit(this.device, enc.finish());
  }

  #pool(layer: number, Hkv: number, D: number, Dv: number): Pool {
    if (layer < 0 || layer >= this.numLayers) throw new QkvError(`GPU paged cache: layer ${layer} out of range [0, ${this.numLayers})`);
    let p = this.pools[layer];
    if (!p) {
      const slots = this.allocator.numBlocks * Hkv * this.blockSize;
      p = this.pools[layer] = { k: GpuTensor.empty(this.device, [slots * D]), v: GpuTensor.empty(this.device, [slots * Dv]), Hkv, D, Dv };
    }
    if (p.Hkv !== Hkv || p.D !== D || p.Dv !== Dv) {
      throw new QkvError(`GPU paged cache: layer ${layer} holds Hkv=${p.Hkv}, D=${p.D}, Dv=${p.Dv}; got Hkv=${Hkv}, D=${D}, Dv=${Dv}`);
    }
    return p;
  }

  /**
   * Appends the call's new keys k [B·T, Hkv, D] and values v [B·T, Hkv, Dv] (row b's T tokens together, RoPE applied)
   * to the sequences of its B rows (`batch`); returns the layer's pools and the rows' tables.
   */
  store(layer: number, k: GpuTensor, v: GpuTensor, B: number, T: number): GpuPagedView {
    const [BT, Hkv, D] = k.shape;
    const Dv = v.shape[2];
    if (k.shape.length !== 3 || BT !== B * T || v.shape.join() !== [BT, Hkv, Dv].join()) {
      throw new QkvError(`GPU paged cache: k [${k.shape.join(', ')}] and v [${v.shape.join(', ')}] must be [B·T = ${B * T}, Hkv, ·]`);
    }
    const pool = this.#pool(layer, Hkv, D, Dv);
    const { seqs, first } = this.place(layer, B, T);
    // token t of row b goes to slot block · blockSize + offset of its position first[b] + t
    const slots = new Uint32Array(B * T);
    seqs.forEach((s, b) => {
      for (let t = 0; t < T; t++) {
        const j = first[b] + t;
        slots[b * T + t] = s.table[Math.floor(j / this.blockSize)] * this.blockSize + (j % this.blockSize);
      }
    });
    const gpu = getGpuLayerKernels('webgpu');
    gpu.scatter(k, slots, { dst: pool.k, blockSize: this.blockSize });
    gpu.scatter(v, slots, { dst: pool.v, blockSize: this.blockSize });
    const maxBlocks = Math.max(1, ...seqs.map((s) => s.table.length));
    const aux = new Uint32Array(B + B * maxBlocks);
    seqs.forEach((s, b) => { aux[b] = s.len; aux.set(s.table, B + b * maxBlocks); });
    return { k: pool.k, v: pool.v, blockSize: this.blockSize, aux, maxS: Math.max(...seqs.map((s) => s.len)), maxBlocks };
  }

  /** Bytes of the pools on the GPU. */
  bytes(): number {
    return this.pools.reduce((n, p) => n + (p ? 4 * (p.k.size + p.v.size) : 0), 0);
  }

  /** Frees every sequence and gives the pools back; views it returned must not be used after. */
  release(): void {
    for (const id of this.sequences()) this.free(id);
    for (const p of this.pools) { p?.k.release(); p?.v.release(); }
    this.pools.fill(undefined);
  }
}
