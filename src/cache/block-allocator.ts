// Fixed-size blocks for paged KV caches: a free list and a reference count per block. A block referenced by several
// sequences (a shared prompt, parallel samples) is read-only; writing into it first copies it (copy-on-write).
import { checkInt, describeValue, QkvError } from '../errors.js';

/** Thrown when no block is free; schedulers catch it to preempt a sequence. */
export class OutOfBlocksError extends QkvError {
  constructor(message: string) { super(message); this.name = 'OutOfBlocksError'; }
}

/** The most blocks a pool may have: 2^24 (a refcount each: 64 MiB; 16 tokens a block: 268M tokens). */
export const MAX_BLOCKS = 2 ** 24;

export class BlockAllocator {
  private free: number[] = []; // blocks released, the most recent last
  private fresh = 0; // blocks [fresh, numBlocks) have never been handed out
  private refs: Int32Array;

  /** `numBlocks` to start with; `maxBlocks` caps growth (default: = numBlocks, a fixed pool). */
  constructor(numBlocks: number, readonly maxBlocks = numBlocks, private readonly onGrow?: (numBlocks: number) => void) {
    checkInt(numBlocks, 'paged cache: numBlocks', 1, MAX_BLOCKS);
    if (!Number.isInteger(maxBlocks) || maxBlocks < numBlocks || maxBlocks > MAX_BLOCKS) {
      const range = `[numBlocks (${numBlocks}), ${MAX_BLOCKS}]`;
      throw new QkvError(`paged cache: maxBlocks must be an integer in ${range}, got ${describeValue(maxBlocks)}`);
    }
    if (onGrow !== undefined && typeof onGrow !== 'function') {
      throw new QkvError(`BlockAllocator: onGrow must be a function, got ${describeValue(onGrow)}`);
    }
    this.refs = new Int32Array(numBlocks);
  }

  get numBlocks(): number { return this.refs.length; }
  get freeBlocks(): number { return this.free.length + (this.maxBlocks - this.fresh); }
  get usedBlocks(): number { return this.fresh - this.free.length; }

  refCount(block: number): number { return this.refs[this.#block(block, 'refCount')]; }

  /** A fresh block with refcount 1; grows the pool (doubling, up to maxBlocks) or throws OutOfBlocksError. */
  allocate(): number {
    // the block freed last (still warm in cache), else the next never used
    if (this.free.length === 0 && this.fresh === this.refs.length) this.#grow();
    const b = this.free.length > 0 ? this.free.pop()! : this.fresh++;
    this.refs[b] = 1;
    return b;
  }

  /** One more reference to `block` (it becomes shared). */
  retain(block: number): void {
    if (this.refs[this.#block(block, 'retain')] < 1) throw new QkvError(`paged cache: block ${block} is not allocated`);
    this.refs[block]++;
  }

  /** Drops one reference; the block returns to the free list when none is left. */
  release(block: number): void {
    if (this.refs[this.#block(block, 'release')] < 1) throw new QkvError(`paged cache: block ${block} released twice`);
    if (--this.refs[block] === 0) this.free.push(block);
  }

  // a block number of this pool (an index past it read undefined, and retain() or release() did nothing)
  #block(block: number, what: string): number {
    return checkInt(block, `BlockAllocator.${what}: block`, 0, this.refs.length - 1);
  }

  #grow(): void {
    const n = this.refs.length;
    const next = Math.min(this.maxBlocks, Math.max(n * 2, n + 1));
    if (next <= n) throw new OutOfBlocksError(`paged cache: all ${n} blocks are in use`);
    this.onGrow?.(next); // the pools first: when they cannot grow, the pool keeps its blocks (none past its storage)
    const refs = new Int32Array(next);
    refs.set(this.refs);
    this.refs = refs;
  }
}
