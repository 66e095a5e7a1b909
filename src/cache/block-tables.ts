// The bookkeeping of a paged KV cache (vLLM's PagedAttention), whatever holds the blocks: each sequence owns a block
// table and a length; blocks come from one allocator, are shared between sequences by reference (fork: a common
// prompt, parallel samples) and copied on the first write into a shared one (copy-on-write). PagedKVCache (paged.ts)
// keeps the blocks in CPU memory, GpuPagedKVCache (webgpu-paged.ts) in GPU buffers; both only say how a block is copied
// and how the pools grow.
import { checkInt, QkvError } from '../errors.js';
import { BlockAllocator, OutOfBlocksError } from './block-allocator.js';

/** One sequence: its blocks in order, and the tokens stored. */
export interface Sequence { table: number[]; len: number }

export abstract class BlockTables {
  readonly blockSize: number;
  readonly allocator: BlockAllocator;
  protected readonly seqs = new Map<number, Sequence>();
  /** Which sequence each batch row is (default: rows 0..B−1 are sequences 0..B−1). */
  batch: number[] | null = null;

  /** `numBlocks` to start with, growing up to `maxBlocks` (a fixed pool: maxBlocks = numBlocks). */
  constructor(blockSize: number, numBlocks: number, maxBlocks: number) {
    if (!Number.isInteger(blockSize) || blockSize < 1) {
      throw new QkvError(`paged cache: blockSize must be a positive integer, got ${String(blockSize)}`);
    }
    this.blockSize = blockSize;
    this.allocator = new BlockAllocator(numBlocks, maxBlocks, (blocks) => this.growPools(blocks));
  }

  /** Copies block `from` into `to` in every layer (copy-on-write). */
  protected abstract copyBlock(from: number, to: number): void;
  /** The allocator grew to `blocks`: the pools follow. */
  protected abstract growPools(blocks: number): void;

  protected seq(id: number): Sequence {
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
  /** Blocks a sequence of `tokens` needs. */
  blocksFor(tokens: number): number { return Math.ceil(checkInt(tokens, 'paged cache: blocksFor tokens') / this.blockSize); }

  /** Sequence `dst` starts as a copy of `src` sharing all its blocks (copy-on-write): prompt caching, parallel samples. */
  fork(src: number, dst: number): void {
    const s = this.seqs.get(src);
    if (!s) throw new QkvError(`paged cache: no sequence ${String(src)} to fork`);
    if (this.seqs.has(dst)) throw new QkvError(`paged cache: sequence ${String(dst)} already exists`);
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
    if (!s) throw new QkvError(`paged cache: no sequence ${String(id)} to truncate`);
    if (!Number.isInteger(tokens) || tokens < 0 || tokens > s.len) {
      throw new QkvError(`paged cache: cannot keep ${String(tokens)} of sequence ${id}'s ${s.len} tokens`);
    }
    for (const b of s.table.splice(this.blocksFor(tokens))) this.allocator.release(b);
    s.len = tokens;
  }

  /** The longest of the call's sequences (every layer stores the same tokens). */
  length(_layer: number): number {
    return Math.max(0, ...this.#rows(this.batch?.length ?? Math.max(1, this.seqs.size)).map((id) => this.seqLength(id)));
  }

  /**
   * The sequences of a call's B rows and where their T new tokens go: layer 0 makes room for them (new blocks, a
   * private copy of a shared last block) and counts them; the other layers write into the same slots.
   */
  protected place(layer: number, B: number, T: number): { seqs: Sequence[]; first: number[] } {
    const seqs = this.#rows(B).map((id) => this.seq(id));
    if (layer === 0) for (const s of seqs) this.#reserve(s, T);
    const first = seqs.map((s) => (layer === 0 ? s.len : s.len - T));
    if (layer === 0) for (const s of seqs) s.len += T;
    return { seqs, first };
  }

  /** The pool slot of token j of sequence s in kv head h: (block · Hkv + h) · blockSize + j mod blockSize. */
  protected slot(s: Sequence, j: number, h: number, Hkv: number): number {
    return (s.table[Math.floor(j / this.blockSize)] * Hkv + h) * this.blockSize + (j % this.blockSize);
  }

  #rows(B: number): number[] {
    const ids = this.batch ?? Array.from({ length: B }, (_, b) => b);
    if (ids.length !== B) throw new QkvError(`paged cache: batch maps ${ids.length} sequences, but the call has B=${B} rows`);
    return ids;
  }

  // room for T more tokens in sequence s, all or nothing: a sequence never holds half of what a step needed
  #reserve(s: Sequence, T: number): void {
    const last = s.table.length - 1;
    const cow = s.len % this.blockSize !== 0 && last >= 0 && this.allocator.refCount(s.table[last]) > 1;
    const needed = Math.max(0, Math.ceil((s.len + T) / this.blockSize) - s.table.length) + (cow ? 1 : 0);
    if (needed > this.allocator.freeBlocks) {
      const counts = `${needed} more needed, ${this.allocator.freeBlocks} free`;
      throw new OutOfBlocksError(`paged cache: all ${this.allocator.numBlocks} blocks are in use (${counts})`);
    }
    if (cow) {
      const copy = this.allocator.allocate(); // copy-on-write: the shared block stays as it was for its other owners
      this.copyBlock(s.table[last], copy);
      this.allocator.release(s.table[last]);
      s.table[last] = copy;
    }
    while (s.table.length * this.blockSize < s.len + T) s.table.push(this.allocator.allocate());
  }
}
