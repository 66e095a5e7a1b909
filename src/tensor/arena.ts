// Where a forward pass's activations are written. By default each op's output is a fresh Float32Array, left to the
// garbage collector: a 512-token prefill of a 135M model makes ~0.5 GB of them, which V8 collects some 64 MB at a time.
// A decoder's CPU forward (models/ops.ts: CpuOps.scoped) instead opens an arena for each layer, in the kernels' memory
// (kernels/wasm/storage.ts): the ops it names (rmsNorm, add, RoPE, the matrix products) take their outputs from it, the
// matrix kernel reads and writes them in place (no copy in or out), and the arena is emptied when the next layer
// begins; the layer's result is copied first to a small arena of its own (two, taken in turn), so one layer's
// activations are held, not two — the GPU's per-layer arena (models/ops-webgpu.ts) on the CPU.
// Only an op that writes every element of its output takes an arena array (they are not zeroed), and only an op whose
// output dies with the layer (a cache, a weight or anything kept must never be allocated here).
import { Tensor } from './tensor.js';

/** Float32 arrays for one layer's activations, valid until the arena is reset. */
export interface FloatArena {
  /** n floats, not zeroed: the caller writes every one. */
  floats(n: number): Float32Array;
}

let current: FloatArena | null = null;

/** n floats for an op's output: from the open arena (not zeroed), else a new zeroed array. */
export function activationFloats(n: number): Float32Array {
  return current ? current.floats(n) : new Float32Array(n);
}

/** x laid out row-major: x itself when it already is (at any offset), else a copy — float32 into the open arena. */
export function activationContiguous(x: Tensor): Tensor {
  if (x.isContiguous()) return x;
  return x.dtype === 'float32' ? activationCopy(x) : x.contiguous();
}

/** A float32 x copied row-major into the open arena (a new array without one); other dtypes as they are. */
export function activationCopy(x: Tensor): Tensor {
  if (x.dtype !== 'float32') return x;
  const out = activationFloats(x.size);
  x.writeFloat32(out); // every element written
  return Tensor.from(out, [...x.shape]);
}

/** Runs `f` with `arena` open (null: none), then restores the one open before. */
export function withArena<T>(arena: FloatArena | null, f: () => T): T {
  const previous = current;
  current = arena;
  try {
    return f();
  } finally {
    current = previous;
  }
}
