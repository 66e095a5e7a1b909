// Paged KV cache (vLLM's PagedAttention): keys and values live in fixed-size blocks of one pool per layer; each
// sequence owns a block table. Blocks are allocated as a sequence grows, returned when it is freed, and shared
// between sequences by reference (fork: a common prompt, parallel sampling) with copy-on-write on the first write.
// Its view is the pool and the tables: paged attention reads the blocks through them (attention/paged.ts) — nothing is
// gathered. The same storage holds int8 keys/values with a scale per token and head (int8.ts); memory waste is at most
// one partial block per sequence.
import { QkvError } from '../errors.js';
import type { BlockPool } from '../kernels/contract.js';
import { quantizeRow } from '../tensor/quantize.js';
import { fmtShape } from '../tensor/shape.js';
import { BlockAllocator, OutOfBlocksError } from './block-allocator.js';
import type { KVCache, PagedView, StoreRequest } from './kv-cache.js';

export interface PagedOptions {
  /** Tokens per block (default 16). */
  blockSize?: number;
  /** Blocks to start with (default 64). */
  numBlocks?: number;
  /** Upper bound on blocks (default: unbounded growth). A fixed pool: maxBlocks = numBlocks. */
  maxBlocks?: number;
  /** Storage of keys and values (default float32). */
  dtype?: 'float32' | 'int8';
}

interface Sequence { table: number[]; len: number }

export class PagedKVCache implements KVCache {
  readonly kind: string;
  readonly view = 'paged';
  readonly blockSize: number;
  readonly dtype: 'float32' | 'int8';
  readonly allocator: BlockAllocator;
  private readonly pools: (BlockPool | undefined)[];
  private readonly seqs = new Map<number, Sequence>();
  /** Which sequence each batch row is (default: rows 0..B−1 are sequences 0..B−1). */
  batch: number[] | null = null;

  constructor(readonly numLayers: number, o: PagedOptions = {}) {
    this.blockSize = o.blockSize ?? 16;
    this.dtype = o.dtype ?? 'float32';
    this.kind = this.dtype === 'int8' ? 'int8' : 'paged';
    if (!Number.isInteger(this.blockSize) || this.blockSize < 1) throw new QkvError(`paged cache: blockSize must be a positive integer, got ${this.blockSize}`);
    const n = o.numBlocks ?? 64;
    this.allocator = new BlockAllocator(n, o.maxBlocks ?? Number.MAX_SAFE_INTEGER, (blocks) => this.growPools(blocks));
    this.pools = new Array(numLayers);
  }

  // ---- sequences --------------------------------------------------------------------------------------------

  private seq(id: number): Sequence {
    let s = this.seqs.get(id);
    if (!s) this.seqs.set(id, (s = { table: [], len: 0 }));
    return s;
  }

  /** Tokens stored for sequence `id`. */
  seqLength(id: number): number { return this.seqs.get(id)?.len ?? 0; }
  /** The block table of sequence `id` (a copy). */
  blockTable(id: number): number[] { return [...(this.seqs.get(id)?.table ?? [])]; }
  /** Ids of the sequences held. */
  sequences(): number[] { return [...this.seqs.keys()]; }

  /** Sequence `dst` starts as a copy of `src` sharing all its blocks (copy-on-write): prompt caching, parallel samples. */
  fork(src: number, dst: number): void {
    const s = this.seqs.get(src);
    if (!s) throw new QkvError(`paged cache: no sequence ${src} to fork`);
    if (this.seqs.has(dst)) throw new QkvError(`paged cache: sequence ${dst} already exists`);
    for (const b of s.table) this.allocator.retain(b);
    this.seqs.set(dst, { table: [...s.table], len: s.len });
  }

  /** Releases every block of sequence `id`. */
  free(id: number): void {
    const s = this.seqs.get(id);
    if (!s) return;
    for (const b of s.table) this.allocator.release(b);
    this.seqs.delete(id);
  }

  /** Keeps only the first `tokens` of sequence `id`, releasing the blocks past them (a cached prompt prefix). */
  truncate(id: number, tokens: number): void {
    const s = this.seqs.get(id);
    if (!s) throw new QkvError(`paged cache: no sequence ${id} to truncate`);
    if (!Number.isInteger(tokens) || tokens < 0 || tokens > s.len) {
      throw new QkvError(`paged cache: cannot keep ${tokens} of sequence ${id}'s ${s.len} tokens`);
    }
    for (const b of s.table.splice(this.blocksFor(tokens))) this.allocator.release(b);
    s.len = tokens;
  }

  /** Blocks a sequence of `tokens` needs. */
  blocksFor(tokens: number): number { return Math.ceil(tokens / this.blockSize); }

  // ---- storage ----------------------------------------------------------------------------------------------

  private pool(layer: number, Hkv: number, D: number, Dv: number): BlockPool {
    let p = this.pools[layer];
    if (!p) {
      const n = this.allocator.numBlocks * Hkv * this.blockSize;
      const int8 = this.dtype === 'int8';
      p = this.pools[layer] = {
        blockSize: this.blockSize, Hkv, D, Dv,
        k: int8 ? new Int8Array(n * D) : new Float32Array(n * D), v: int8 ? new Int8Array(n * Dv) : new Float32Array(n * Dv),
        kScale: int8 ? new Float32Array(n) : undefined, vScale: int8 ? new Float32Array(n) : undefined,
      };
    }
    if (p.Hkv !== Hkv || p.D !== D || p.Dv !== Dv) throw new QkvError(`paged cache: layer ${layer} holds Hkv=${p.Hkv}, D=${p.D}; got Hkv=${Hkv}, D=${D}`);
    return p;
  }

  private growPools(blocks: number): void {
    for (const p of this.pools) {
      if (!p) continue;
      const n = blocks * p.Hkv * this.blockSize;
      const grow = <A extends Float32Array | Int8Array>(a: A, per: number): A => {
        const b = new (a.constructor as new (n: number) => A)(n * per);
        b.set(a);
        return b;
      };
      p.k = grow(p.k, p.D);
      p.v = grow(p.v, p.Dv);
      if (p.kScale) p.kScale = grow(p.kScale, 1);
      if (p.vScale) p.vScale = grow(p.vScale, 1);
    }
  }

  /** Copies block `from` into `to` in every layer (copy-on-write). */
  private copyBlock(from: number, to: number): void {
    for (const p of this.pools) {
      if (!p) continue;
      const slots = p.Hkv * this.blockSize;
      p.k.copyWithin(to * slots * p.D, from * slots * p.D, (from + 1) * slots * p.D);
      p.v.copyWithin(to * slots * p.Dv, from * slots * p.Dv, (from + 1) * slots * p.Dv);
      p.kScale?.copyWithin(to * slots, from * slots, (from + 1) * slots);
      p.vScale?.copyWithin(to * slots, from * slots, (from + 1) * slots);
    }
  }

  /** Makes room for T more tokens in sequence s: new blocks, and a private copy of a shared last block. */
  private reserve(s: Sequence, T: number): void {
    const last = s.table.length - 1;
    const cow = s.len % this.blockSize !== 0 && last >= 0 && this.allocator.refCount(s.table[last]) > 1;
    const needed = Math.max(0, Math.ceil((s.len + T) / this.blockSize) - s.table.length) + (cow ? 1 : 0);
    // all or nothing: a sequence never holds half of what a step needed
    if (needed > this.allocator.freeBlocks) {
      throw new OutOfBlocksError(`paged cache: all ${this.allocator.numBlocks} blocks are in use (${needed} more needed, ${this.allocator.freeBlocks} free)`);
    }
    if (cow) {
      const copy = this.allocator.allocate(); // copy-on-write: the shared block stays as it was for its other owners
      this.copyBlock(s.table[last], copy);
      this.allocator.release(s.table[last]);
      s.table[last] = copy;
    }
    while (s.table.length * this.blockSize < s.len + T) s.table.push(this.allocator.allocate());
  }

  /** Writes one token's key or value row (quantizing to int8 with a per-row scale when the pool is int8). */
  private write(data: Float32Array | Int8Array, scales: Float32Array | undefined, slot: number, width: number, src: Float32Array, at: number): void {
    if (!scales) { (data as Float32Array).set(src.subarray(at, at + width), slot * width); return; }
    // symmetric int8, the one rule of tensor/quantize.ts: scale = max|x| / 127, x8 = round(x / scale)
    scales[slot] = quantizeRow(src, at, width, data as Int8Array, slot * width);
  }

  // ---- the KVCache interface --------------------------------------------------------------------------------

  private rows(B: number): number[] {
    const ids = this.batch ?? Array.from({ length: B }, (_, b) => b);
    if (ids.length !== B) throw new QkvError(`paged cache: batch maps ${ids.length} sequences, but the call has B=${B} rows`);
    return ids;
  }

  length(_layer: number): number {
    return Math.max(0, ...this.rows(this.batch?.length ?? Math.max(1, this.seqs.size)).map((id) => this.seqLength(id)));
  }

  store(layer: number, r: StoreRequest): PagedView {
    const [B, Hkv, T, D] = r.k.shape;
    const Dv = r.v.shape[3];
    if (r.v.shape[0] !== B || r.v.shape[1] !== Hkv || r.v.shape[2] !== T) {
      throw new QkvError(`paged cache: v ${fmtShape(r.v.shape)} does not match k ${fmtShape(r.k.shape)}`);
    }
    const ids = this.rows(B);
    const pool = this.pool(layer, Hkv, D, Dv);
    const seqs = ids.map((id) => this.seq(id));
    // layer 0 allocates the slots for the new tokens; the other layers write into the same slots
    if (layer === 0) for (const s of seqs) this.reserve(s, T);
    const first = seqs.map((s) => (layer === 0 ? s.len : s.len - T));
    const k = r.k.toFloat32();
    const v = r.v.toFloat32();
    seqs.forEach((s, b) => {
      for (let t = 0; t < T; t++) {
        const j = first[b] + t;
        const blk = s.table[Math.floor(j / this.blockSize)];
        for (let h = 0; h < Hkv; h++) {
          const slot = (blk * Hkv + h) * this.blockSize + (j % this.blockSize);
          this.write(pool.k, pool.kScale, slot, D, k, ((b * Hkv + h) * T + t) * D);
          this.write(pool.v, pool.vScale, slot, Dv, v, ((b * Hkv + h) * T + t) * Dv);
        }
      }
    });
    if (layer === 0) seqs.forEach((s) => { s.len += T; });
    return { kind: 'paged', pool, blockTables: seqs.map((s) => s.table), seqLens: seqs.map((s) => s.len), keyMask: r.keyMask };
  }

  bytes(): number {
    return this.pools.reduce((s, p) => s + (p ? p.k.byteLength + p.v.byteLength + (p.kScale?.byteLength ?? 0) + (p.vScale?.byteLength ?? 0) : 0), 0);
  }

  /** Bytes of the blocks in use, and of the slots that actually hold tokens (for waste figures). */
  usage(): { allocatedBytes: number; usedBytes: number } {
    const perSlot = this.pools.reduce((s, p) => s + (p ? p.Hkv * (p.D + p.Dv) * (this.dtype === 'int8' ? 1 : 4) + (p.kScale ? 8 * p.Hkv : 0) : 0), 0);
    const usedTokens = [...this.seqs.values()].reduce((s, q) => s + q.len, 0);
    return { allocatedBytes: this.allocator.usedBlocks * this.blockSize * perSlot, usedBytes: usedTokens * perSlot };
  }
}
