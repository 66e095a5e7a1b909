// Paged KV cache (vLLM's PagedAttention): keys and values live in fixed-size blocks of one pool per layer; each
// sequence owns a block table. Blocks are allocated as a sequence grows, returned when it is freed, and shared
// between sequences by reference (fork: a common prompt, parallel sampling) with copy-on-write on the first write —
// the bookkeeping of block-tables.ts, which the GPU's paged cache shares (webgpu-paged.ts); this file is the storage.
// Its view is the pool and the tables: paged attention reads the blocks through them (attention/paged.ts) — nothing is
// gathered. Float32 pools live in the kernels' storage (the WebAssembly kernel reads them in place). The same storage
// holds int8 keys/values with a scale per token and head (int8.ts), or f16 ones (half the bytes; a layer whose pool meets
// a value f16 cannot hold — ±∞, NaN, |x| ≥ 65520 — is widened to f32 for good); memory waste is at most one partial
// block per sequence.
import { describeValue, QkvError } from '../errors.js';
import type { BlockPool } from '../kernels/contract.js';
import { kernelStorage } from '../kernels/registry.js';
import { narrow16 } from '../tensor/f16.js';
import { quantizeRow } from '../tensor/quantize.js';
import { fmtShape } from '../tensor/shape.js';
import { MAX_BLOCKS } from './block-allocator.js';
import { BlockTables } from './block-tables.js';
import { checkLayers, widenedF16 } from './contiguous.js';
import { checkStore, type KVCache, type PagedView, type StoreRequest } from './kv-cache.js';

export interface PagedOptions {
  /** Tokens per block (default 16). */
  blockSize?: number;
  /** Blocks to start with (default 64). */
  numBlocks?: number;
  /** Upper bound on blocks (default 2^24, MAX_BLOCKS: growth as far as memory lasts). A fixed pool: maxBlocks = numBlocks. */
  maxBlocks?: number;
  /** Storage of keys and values (default float32). */
  dtype?: 'float32' | 'int8' | 'float16';
}

// the block allocator's arguments from the cache's options, once they are checked (before super(): nothing else can run)
function allocatorArgs(numLayers: number, o: PagedOptions): [number, number, number] {
  checkLayers(numLayers, 'PagedKVCache');
  if (typeof o !== 'object' || o === null) throw new QkvError(`PagedKVCache: options must be an object, got ${describeValue(o)}`);
  return [o.blockSize ?? 16, o.numBlocks ?? 64, o.maxBlocks ?? MAX_BLOCKS];
}

/** n int8 values in the kernels' memory where it has room (the paged kernel reads an int8 pool there), else an array. */
function bytes(n: number): Int8Array {
  return (kernelStorage().matrix?.('int8', n) as Int8Array | null | undefined) ?? new Int8Array(n);
}

/** The most bytes one layer's pool may take: the kernels' whole memory (wasm32). */
const MAX_POOL_BYTES = 2 ** 32;

// room for a layer's pool of `blocks` blocks, its size checked first (an int8 pool the kernels' memory could not take fell
// back to an array: 64 GiB of them was a raw RangeError, a few GiB the process's memory)
function poolRoom<A>(blocks: number, p: { Hkv: number; blockSize: number; D: number; Dv: number }, per: number, give: () => A): A {
  const poolBytes = blocks * p.Hkv * p.blockSize * ((p.D + p.Dv) * per + (per === 1 ? 8 : 0)); // int8: a scale a row, k and v
  if (poolBytes > MAX_POOL_BYTES) {
    const size = `${blocks} blocks × ${p.Hkv} heads × ${p.blockSize} tokens × (D ${p.D} + Dv ${p.Dv})`;
    throw new QkvError(`PagedKVCache: a layer's pool of ${size} takes ${(poolBytes / 2 ** 30).toFixed(1)} GiB; at most 4 GiB: give fewer blocks`);
  }
  try {
    return give();
  } catch (e) {
    if (e instanceof RangeError) throw new QkvError(`PagedKVCache: no memory for a layer's pool of ${(poolBytes / 2 ** 20).toFixed(0)} MiB`);
    throw e;
  }
}

/** An f16 pool's keys and values widened to f32 in place of it (a value f16 cannot hold came): f32 from then on. */
function widenPool(p: BlockPool): void {
  [p.k, p.v] = [widenedF16(p.k as Uint16Array), widenedF16(p.v as Uint16Array)];
}

export class PagedKVCache extends BlockTables implements KVCache {
  readonly kind: string;
  readonly view = 'paged';
  readonly dtype: 'float32' | 'int8' | 'float16';
  private readonly pools: (BlockPool | undefined)[];

  constructor(readonly numLayers: number, o: PagedOptions = {}) {
    super(...allocatorArgs(numLayers, o));
    if (o.dtype !== undefined && o.dtype !== 'float32' && o.dtype !== 'int8' && o.dtype !== 'float16') {
      throw new QkvError(`PagedKVCache: dtype must be 'float32', 'int8' or 'float16', got ${describeValue(o.dtype)}`);
    }
    this.dtype = o.dtype ?? 'float32';
    this.kind = this.dtype === 'int8' ? 'int8' : 'paged';
    this.pools = new Array(numLayers);
  }

  // ---- storage ----------------------------------------------------------------------------------------------

  #pool(layer: number, Hkv: number, D: number, Dv: number): BlockPool {
    let p = this.pools[layer];
    if (!p) {
      const [blocks, blockSize] = [this.allocator.numBlocks, this.blockSize];
      const n = blocks * Hkv * blockSize;
      const int8 = this.dtype === 'int8';
      const room = (m: number) => (int8 ? bytes(m) : this.dtype === 'float16' ? kernelStorage().halves(m) : kernelStorage().floats(m));
      p = this.pools[layer] = poolRoom(blocks, { Hkv, blockSize, D, Dv }, int8 ? 1 : this.dtype === 'float16' ? 2 : 4, () => ({
        blockSize, Hkv, D, Dv, k: room(n * D), v: room(n * Dv),
        kScale: int8 ? kernelStorage().floats(n) : undefined, vScale: int8 ? kernelStorage().floats(n) : undefined,
      }));
    }
    if (p.Hkv !== Hkv || p.D !== D || p.Dv !== Dv) throw new QkvError(`paged cache: layer ${layer} holds Hkv=${p.Hkv}, D=${p.D}; got Hkv=${Hkv}, D=${D}`);
    return p;
  }

  protected growPools(blocks: number): void {
    for (const p of this.pools) {
      if (!p) continue;
      const n = blocks * p.Hkv * this.blockSize;
      // keys, values and scales stay in the kernels' storage (the old arrays go back when garbage-collected)
      const grow = <A extends Float32Array | Int8Array | Uint16Array>(a: A, per: number): A => {
        const [m, st] = [n * per, kernelStorage()];
        const b = (a instanceof Float32Array ? st.floats(m) : a instanceof Uint16Array ? st.halves(m) : bytes(m)) as A;
        b.set(a);
        return b;
      };
      [p.k, p.v] = poolRoom(blocks, p, p.k.BYTES_PER_ELEMENT, () => [grow(p.k, p.D), grow(p.v, p.Dv)]);
      if (p.kScale) p.kScale = grow(p.kScale, 1);
      if (p.vScale) p.vScale = grow(p.vScale, 1);
    }
  }

  /** Copies block `from` into `to` in every layer (copy-on-write). */
  protected copyBlock(from: number, to: number): void {
    for (const p of this.pools) {
      if (!p) continue;
      const slots = p.Hkv * this.blockSize;
      p.k.copyWithin(to * slots * p.D, from * slots * p.D, (from + 1) * slots * p.D);
      p.v.copyWithin(to * slots * p.Dv, from * slots * p.Dv, (from + 1) * slots * p.Dv);
      p.kScale?.copyWithin(to * slots, from * slots, (from + 1) * slots);
      p.vScale?.copyWithin(to * slots, from * slots, (from + 1) * slots);
    }
  }

  /** Writes one token's key or value row (quantizing to int8 with a per-row scale when the pool is int8; rounding to f16
   *  in an f16 pool, widened to f32 first when the row holds a value f16 cannot). */
  #write(pool: BlockPool, which: 'k' | 'v', slot: number, width: number, src: Float32Array, at: number): void {
    const [data, scales] = which === 'k' ? [pool.k, pool.kScale] : [pool.v, pool.vScale];
    if (data instanceof Uint16Array) {
      if (narrow16(src.subarray(at, at + width), data, slot * width)) return;
      widenPool(pool);
      this.#write(pool, which, slot, width, src, at);
      return;
    }
    if (!scales) { (data as Float32Array).set(src.subarray(at, at + width), slot * width); return; }
    // symmetric int8, the one rule of tensor/quantize.ts: scale = max|x| / 127, x8 = round(x / scale)
    scales[slot] = quantizeRow(src, at, width, data as Int8Array, slot * width);
  }

  // ---- the KVCache interface --------------------------------------------------------------------------------

  store(layer: number, r: StoreRequest): PagedView {
    checkStore(layer, r, this.numLayers, 'PagedKVCache.store');
    const [B, Hkv, T, D] = r.k.shape;
    const Dv = r.v.shape[3];
    const pool = this.#pool(layer, Hkv, D, Dv);
    const { seqs, first } = this.place(layer, B, T);
    const k = r.k.toFloat32();
    const v = r.v.toFloat32();
    seqs.forEach((s, b) => {
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < Hkv; h++) {
          const slot = this.slot(s, first[b] + t, h, Hkv);
          this.#write(pool, 'k', slot, D, k, ((b * Hkv + h) * T + t) * D);
          this.#write(pool, 'v', slot, Dv, v, ((b * Hkv + h) * T + t) * Dv);
        }
      }
    });
    return { kind: 'paged', pool, blockTables: seqs.map((s) => s.table), seqLens: seqs.map((s) => s.len), keyMask: r.keyMask };
  }

  /** Frees every sequence and returns the pools' storage now; views it returned must not be used after. */
  release(): void {
    for (const id of [...this.seqs.keys()]) this.free(id);
    const storage = kernelStorage();
    for (const p of this.pools) {
      for (const a of p ? [p.k, p.v, p.kScale, p.vScale] : []) {
        if (a instanceof Float32Array || a instanceof Uint16Array) storage.release(a);
        else if (a) storage.releaseMatrix?.(a);
      }
    }
    this.pools.fill(undefined);
  }

  bytes(): number {
    return this.pools.reduce((s, p) => s + (p ? p.k.byteLength + p.v.byteLength + (p.kScale?.byteLength ?? 0) + (p.vScale?.byteLength ?? 0) : 0), 0);
  }

  /** Bytes of the blocks in use, and of the slots that actually hold tokens (for waste figures). */
  usage(): { allocatedBytes: number; usedBytes: number } {
    const perSlot = this.pools.reduce((s, p) => s + (p ? p.Hkv * (p.D + p.Dv) * p.k.BYTES_PER_ELEMENT + (p.kScale ? 8 * p.Hkv : 0) : 0), 0);
    const usedTokens = [...this.seqs.values()].reduce((s, q) => s + q.len, 0);
    return { allocatedBytes: this.allocator.usedBlocks * this.blockSize * perSlot, usedBytes: usedTokens * perSlot };
  }
}
