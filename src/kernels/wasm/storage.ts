// Storage inside the kernels' WebAssembly memory, for data the kernels read whole again and again:
// - a KV cache (kernelFloats), which the host appends to a little at a time. The DECODE job then reads keys and values
//   where they are, instead of receiving a copy of the whole cache for every layer and token (at ~100 cached tokens of
//   SmolLM's shape that copy was ~5% of a decode step, and it grows with the context);
// - a checkpoint's weight matrices (kernelMatrix), which the loader reads from disk straight into this memory: the
//   matrix kernel finds them resident, so a model's weights are held once, not once in JavaScript and again here.
// Only with a shared memory (Node; cross-origin isolated pages): a private memory is replaced when it grows, which
// would detach every view of it. Elsewhere kernelFloats is a plain Float32Array.
// Blocks come from a first-fit free list over the region after the resident weights; a block goes back to the list
// when its view is garbage-collected, or at once with releaseFloats (whose caller promises not to use the view again).
// - a decoder layer's activations (KernelArena, tensor/arena.ts): one block per arena, handed out front to back and
//   emptied when the next layer begins (its result copied to a small arena of its own first), so the matrix kernel
//   reads and writes them where they lie.
import { QkvError } from '../../errors.js';
import type { FloatArena } from '../../tensor/arena.js';
import { SCALE_F16_JOB } from './jobs.js';
import {
  adoptResident, alignLine, canReserve, forgetResident, JOB, kernelRuntime, reserve, runAlone, type Runtime, scratch,
} from './runtime.js';

interface Block { at: number; bytes: number; reused?: boolean }

const free: Block[] = []; // sorted by offset, never two adjacent
const placed = new WeakMap<Float32Array | Uint16Array, Block>();
const placedMatrices = new WeakMap<ArrayBufferView, Block>();
const collected = new FinalizationRegistry<Block>((b) => giveBack(b));

/** n zeroed floats, in the kernels' memory when it is shared (else an ordinary array). */
export function kernelFloats(n: number): Float32Array {
  return place(n, 4, (buffer, at) => new Float32Array(buffer, at, n)) ?? new Float32Array(n);
}

/**
 * n zeroed f16 slots of an f16 KV cache (cache/contiguous.ts), in the kernels' memory when it is shared (else an
 * ordinary array). The decode job reads them in place as f16 and takes every value as finite: the cache stores no
 * other (a layer that meets ±∞, NaN or |x| ≥ 65520 goes back to f32).
 */
export function kernelHalves(n: number): Uint16Array {
  return place(n, 2, (buffer, at) => new Uint16Array(buffer, at, n)) ?? new Uint16Array(n);
}

// n elements of `size` bytes in a block of the shared memory (whole cache lines), or null
function place<A extends Float32Array | Uint16Array>(n: number, size: number, view: (b: ArrayBufferLike, at: number) => A): A | null {
  const r = kernelRuntime();
  // a count that is not one (NaN, negative: a caller's bad option) must never reach the free list or the memory's top
  if (!Number.isSafeInteger(n) || n < 0) throw new QkvError(`kernel storage: asked for ${String(n)} elements`);
  if (!r?.shared || n === 0) return null;
  const bytes = Math.ceil((size * n) / 64) * 64;
  const b = allocate(r, bytes);
  const a = view(r.memory.buffer, b.at);
  // a reused block holds old data, and scratch may have used memory past the top; memory never written is zero already
  // and left untouched, so a large KV pool costs resident memory only as it fills
  new Uint8Array(r.memory.buffer, b.at, size * n).fill(0, 0, b.reused ? size * n : Math.max(0, Math.min(size * n, r.written - b.at)));
  placed.set(a, b);
  collected.register(a, b, a);
  return a;
}

/** The element types of weight matrices the matrix kernel reads in place. */
export type MatrixDType = 'float32' | 'float16' | 'bfloat16' | 'int8' | 'int4';

/**
 * Room for a weight matrix of `n` elements (int4: `n` bytes, two weights each) in the kernels' memory, resident from
 * the start (the matrix kernel reads it in place); null where the memory is not shared or the weight would pass the
 * resident limit (the caller then keeps it in an ordinary array). The block goes back when the view is
 * garbage-collected (a model dropped, a weight widened).
 */
export function kernelMatrix(dtype: MatrixDType, n: number): Float32Array | Uint16Array | Int8Array | Uint8Array | null {
  const r = kernelRuntime();
  const size = dtype === 'float32' ? 4 : dtype === 'int8' || dtype === 'int4' ? 1 : 2;
  const bytes = Math.ceil((size * n) / 64) * 64;
  if (!r?.shared || n === 0 || !canReserve(r, bytes, free)) return null;
  const b = allocate(r, bytes);
  const view = dtype === 'float32' ? new Float32Array(r.memory.buffer, b.at, n)
    : dtype === 'int8' ? new Int8Array(r.memory.buffer, b.at, n)
    : dtype === 'int4' ? new Uint8Array(r.memory.buffer, b.at, n) : new Uint16Array(r.memory.buffer, b.at, n);
  adoptResident(view, b.at);
  placedMatrices.set(view, b);
  collected.register(view, b, view);
  return view;
}

/**
 * Returns a kernelMatrix block now (no-op for other arrays): a stored matrix read only to be quantized gives its room
 * back before the next one is read, instead of when the garbage collector gets to it. The view must not be used again.
 */
export function releaseMatrix(view: ArrayBufferView): void {
  const b = placedMatrices.get(view);
  if (!b) return;
  placedMatrices.delete(view);
  forgetResident(view);
  collected.unregister(view);
  giveBack(b);
}

/** Whether `view` is a kernelMatrix block (still held). */
export function holdsMatrix(view: ArrayBufferView): boolean {
  return placedMatrices.has(view);
}

/**
 * An f16 kernelMatrix times 2^10 in place by the SIMD job (F16Matrix's rule, tensor/f16-matrix.ts): true when done,
 * false when some |w| ≥ 64 would not fit (left untouched), null when the job does not take it (not a kernelMatrix, or
 * a length not a multiple of 8: the caller's loop then does it).
 */
export function scaleF16(view: Uint16Array): boolean | null {
  const r = kernelRuntime();
  const b = placedMatrices.get(view);
  if (!r || !b || view.length % 8 !== 0) return null;
  return scaleF16At(r, b.at, view.length);
}

/** The SCALE_F16 job over n f16 (a multiple of 8) at byte offset `at`: true when scaled, false when left as they were. */
export function scaleF16At(r: Runtime, at: number, n: number): boolean {
  const [out] = scratch(r, [4]);
  runAlone(r, SCALE_F16_JOB.words({ kind: JOB.scaleF16, h: at, n, out }));
  return new Int32Array(r.memory.buffer, out, 1)[0] === 1;
}

/** Byte offset of a kernelFloats, kernelHalves or arena array in the kernels' memory, or null for any other array. */
export function kernelOffset(data: unknown): number | null {
  if (data instanceof Uint16Array) return placed.get(data)?.at ?? null;
  return data instanceof Float32Array ? (placed.get(data)?.at ?? arenaAt.get(data) ?? null) : null;
}

const arenaAt = new WeakMap<Float32Array, number>();

let arenas: [KernelArena, KernelArena, KernelArena] | null = null;
let poison = false;

// The most bytes an arena hands out between resets: past it (a long prompt through a big model: a 1B model's layer at
// 1,024 tokens makes ~100 MB), arrays are ordinary ones again and the kernels copy them. Each arena takes this much of
// the kernels' address space at its first array, in one block; only the pages a layer writes become resident (memory
// never written costs nothing), so the work arena holds as much as the largest layer wrote, and never a hole.
// (Blocks grown layer by layer interleaved with the KV cache's: at a 512-token prefill of SmolLM-135M's shape they left
// 16.5 MiB of freed, resident holes.)
const ARENA_BYTES = 64 * 2 ** 20;
const MAX_VIEWS = 4096;

/** A decoder layer's activations in the kernels' memory (tensor/arena.ts): floats are handed out front to back from one
 *  block of ARENA_BYTES, and reset() empties it for the next layer. Past ARENA_BYTES between two resets, or where the
 *  memory has no room for the block, it gives ordinary arrays. */
export class KernelArena implements FloatArena {
  #block: Block | null = null;
  #used = 0; // bytes handed out since the last reset
  #written = 0; // the most bytes handed out between two resets: the block's resident part
  // the views handed out, by offset in the block: each layer of a forward asks for the same sizes in the same order, so
  // after a reset the same view serves again (its last user is dead) — 0.5–0.8 µs a call saved, ~450 calls a token of
  // SmolLM-135M
  #views = new Map<number, Float32Array>();

  floats(n: number): Float32Array {
    const r = kernelRuntime();
    if (!r?.shared || n === 0) return new Float32Array(n);
    const bytes = alignLine(4 * n);
    if (this.#used + bytes > ARENA_BYTES) return new Float32Array(n);
    if (!this.#block) {
      if (!canReserve(r, ARENA_BYTES, free)) return new Float32Array(n);
      this.#block = allocate(r, ARENA_BYTES);
    }
    const from = this.#used, at = this.#block.at + from;
    this.#used += bytes;
    this.#written = Math.max(this.#written, this.#used);
    const known = this.#views.get(from);
    if (known?.length === n) return known;
    if (this.#views.size >= MAX_VIEWS) this.#views.clear(); // (shapes that keep changing: a server's batch sizes)
    const view = new Float32Array(r.memory.buffer, at, n);
    arenaAt.set(view, at);
    this.#views.set(from, view);
    return view;
  }

  /** Empties the arena: every array it gave is dead (overwritten by the next layer's; NaN with setArenaPoison). */
  reset(): void {
    const r = kernelRuntime();
    if (poison && r && this.#block) new Float32Array(r.memory.buffer, this.#block.at, this.#written / 4).fill(NaN);
    this.#used = 0;
  }

  /** Bytes of the kernels' memory the arena has written: its resident part. */
  get bytes(): number { return this.#written; }

  /** Gives the arena's memory back. */
  release(): void {
    if (this.#block) giveBack(this.#block);
    this.#block = null;
    this.#views.clear();
    this.#used = this.#written = 0;
  }
}

/** The arenas of decoder layers (a layer's work, then two for its result, taken in turn: layer l's result is read while
 *  layer l + 1's goes to the other), or null where the memory is not shared (a private memory is replaced when it
 *  grows, which would detach the arrays). */
export function kernelArenas(): readonly [KernelArena, KernelArena, KernelArena] | null {
  if (!kernelRuntime()?.shared) return null;
  return (arenas ??= [new KernelArena(), new KernelArena(), new KernelArena()]);
}

/** Tests: fill an arena's memory with NaN when it is reset, so that an array used after its layer shows at once. */
export function setArenaPoison(on: boolean): void {
  poison = on;
}

/** Returns a kernelFloats or kernelHalves block now (no-op for other arrays). The view and its tensors must not be used after. */
export function releaseFloats(view: Float32Array | Uint16Array): void {
  const b = placed.get(view);
  if (!b) return;
  placed.delete(view);
  collected.unregister(view);
  giveBack(b);
}

/** Bytes in free blocks (for tests). */
export function kernelFreeBytes(): number {
  return free.reduce((s, b) => s + b.bytes, 0);
}

// first fit from the free list (the rest of the block stays free), else a new block after the resident data
function allocate(r: Runtime, bytes: number): Block {
  const i = free.findIndex((b) => b.bytes >= bytes);
  if (i < 0) return { at: reserve(r, bytes), bytes };
  const b = free[i];
  if (b.bytes === bytes) free.splice(i, 1);
  else free[i] = { at: b.at + bytes, bytes: b.bytes - bytes };
  return { at: b.at, bytes, reused: true };
}

// back into the sorted list, merged with free neighbours
function giveBack(b: Block): void {
  let i = free.findIndex((f) => f.at > b.at);
  if (i < 0) i = free.length;
  free.splice(i, 0, { ...b });
  if (i + 1 < free.length && free[i].at + free[i].bytes === free[i + 1].at) {
    free[i].bytes += free[i + 1].bytes;
    free.splice(i + 1, 1);
  }
  if (i > 0 && free[i - 1].at + free[i - 1].bytes === free[i].at) {
    free[i - 1].bytes += free[i].bytes;
    free.splice(i, 1);
  }
}
