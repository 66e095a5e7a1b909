// Fixed-size blocks for paged KV caches: a free list and a reference count per block. A block referenced by several
// sequences (a shared prompt, parallel samples) is read-only; writing into it first copies it (copy-on-write).
import { describeValue, QkvError } from '../errors.js';

/** Thrown when no block is free; schedulers catch it to preempt a sequence. */
export class OutOfBlocksError extends QkvError {
  constructor(message: string) { super(message); this.name = 'OutOfBlocksError'; }
}

export class BlockAllocator {
  private free: number[];
  private refs: Int32Array;

  /** `numBlocks` to start with; `maxBlocks` caps growth (default: = numBlocks, a fixed pool). */
  constructor(numBlocks: number, readonly maxBlocks = numBlocks, private readonly onGrow?: (numBlocks: number) => void) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) throw new QkvError(`paged cache: numBlocks must be a positive integer, got ${String(numBlocks)}`);
    if (!Number.isSafeInteger(maxBlocks) || maxBlocks < numBlocks) {
      throw new QkvError(`paged cache: maxBlocks must be an integer ≥ numBlocks (${numBlocks}), got ${String(maxBlocks)}`);
    }
    if (onGrow !== undefined && typeof onGrow !== 'function') {
      throw new QkvError(`BlockAllocator: onGrow must be a function, got ${describeValue(onGrow)}`);
    }
    this.refs = new Int32Array(numBlocks);
    // LIFO: the most recently freed block is reused first (still warm in cache)
    this.free = Array.from({ length: numBlocks }, (_, i) => numBlocks - 1 - i);
  }

  get numBlocks(): number { return this.refs.length; }
  get freeBlocks(): number { return this.free.length + (this.maxBlocks - this.refs.length); }
  get usedBlocks(): number { return this.refs.length - this.free.length; }

  refCount(block: number): number { return this.refs[block]; }

  /** A fresh block with refcount 1; grows the pool (doubling, up to maxBlocks) or throws OutOfBlocksError. */
  allocate(): number {
    if (this.free.length === 0) this.#grow();
    const b = this.free.pop()!;
    this.refs[b] = 1;
    return b;
  }

  /** One more reference to `block` (it becomes shared). */
  retain(block: number): void {
    if (this.refs[block] < 1) throw new QkvError(`paged cache: block ${block} is not allocated`);
    this.refs[block]++;
  }

  /** Drops one reference; the block returns to the free list when none is left. */
  release(block: number): void {
    if (this.refs[block] < 1) throw new QkvError(`paged cache: block ${block} released twice`);
    if (--this.refs[block] === 0) this.free.push(block);
  }

  #grow(): void {
    const n = this.refs.length;
    const next = Math.min(this.maxBlocks, Math.max(n * 2, n + 1));
    if (next <= n) throw new OutOfBlocksError(`paged cache: all ${n} blocks are in use`);
    const refs = new Int32Array(next);
    refs.set(this.refs);
    this.refs = refs;
    for (let b = next - 1; b >= n; b--) this.free.push(b);
    this.onGrow?.(next);
  }
}
