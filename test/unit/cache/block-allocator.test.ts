// The paged caches' block allocator: blocks handed out in order, the last freed reused first (still warm in cache),
// the pool grown by doubling up to maxBlocks and then OutOfBlocksError; sizes past 2^24 blocks and block numbers outside
// the pool are refused by name (a pool of 10⁹ blocks had built a free list of 10⁹ numbers and ended the process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockAllocator, MAX_BLOCKS, OutOfBlocksError } from '../../../src/cache/block-allocator.js';

test('blocks in order, the last freed first, growth by doubling to maxBlocks, then OutOfBlocksError', () => {
  const grown: number[] = [];
  const a = new BlockAllocator(2, 5, (n) => grown.push(n));
  assert.deepEqual([a.numBlocks, a.freeBlocks, a.usedBlocks], [2, 5, 0]);
  assert.deepEqual([a.allocate(), a.allocate()], [0, 1]);
  assert.deepEqual([a.allocate(), a.allocate()], [2, 3]); // grown to 4
  assert.deepEqual(grown, [4]);
  a.release(1);
  a.release(3);
  assert.deepEqual([a.allocate(), a.allocate()], [3, 1], 'the last freed first');
  a.retain(0);
  assert.equal(a.refCount(0), 2);
  a.release(0);
  assert.equal(a.refCount(0), 1, 'still held once: not free');
  assert.deepEqual([a.allocate(), a.usedBlocks, a.freeBlocks], [4, 5, 0]); // grown to 5, the cap
  assert.deepEqual(grown, [4, 5]);
  assert.throws(() => a.allocate(), (e: unknown) => e instanceof OutOfBlocksError && /all 5 blocks are in use/.test((e as Error).message));
  a.release(2);
  assert.throws(() => a.release(2), /paged cache: block 2 released twice/);
});

test('storage that cannot grow leaves the pool as it was: no block is handed out past its storage', () => {
  let room = 2;
  const a = new BlockAllocator(2, 8, (n) => { if (n > room) throw new Error(`no room for ${n} blocks`); });
  assert.deepEqual([a.allocate(), a.allocate()], [0, 1]);
  assert.throws(() => a.allocate(), /no room for 4 blocks/);
  assert.deepEqual([a.numBlocks, a.usedBlocks], [2, 2]);
  room = 4;
  assert.equal(a.allocate(), 2, 'grown once the storage could');
  assert.equal(a.numBlocks, 4);
});

test('a pool of up to 2^24 blocks, nothing allocated per block but its count; sizes and block numbers out of range refused', () => {
  const big = new BlockAllocator(MAX_BLOCKS);
  assert.equal(big.freeBlocks, MAX_BLOCKS);
  assert.equal(big.allocate(), 0);
  for (const n of [0, 1.5, MAX_BLOCKS + 1, 1e9, NaN, '4']) {
    assert.throws(() => new BlockAllocator(n as number), /paged cache: numBlocks must be an integer in \[1, 16777216\]/);
  }
  assert.throws(() => new BlockAllocator(4, 1e9), /maxBlocks must be an integer in \[numBlocks \(4\), 16777216\], got 1000000000/);
  assert.throws(() => new BlockAllocator(4, 2), /maxBlocks must be an integer in \[numBlocks \(4\), 16777216\], got 2/);
  const a = new BlockAllocator(4);
  for (const [f, what] of [[() => a.refCount(4), 'refCount'], [() => a.retain(-1), 'retain'], [() => a.release(1.5), 'release']] as const) {
    assert.throws(f, new RegExp(`BlockAllocator\\.${what}: block must be an integer in \\[0, 3\\]`));
  }
  assert.throws(() => a.retain(2), /block 2 is not allocated/);
});
