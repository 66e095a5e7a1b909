// Host of the ROWS jobs (asm/rows.ts): RMSNorm, residual adds and RoPE over a decoder layer's arrays where they lie in the
// kernels' memory (its arena, tensor/arena.ts) — no copy in or out, SIMD instead of a JavaScript loop (V8 takes ~2–4 ns
// an element over a Float32Array there: every load and store is a conversion between f32 and f64).
import type { RowKernels } from '../contract.js';
import { ADD_JOB, RMSNORM_JOB, ROPE_JOB } from './jobs.js';
import { JOB, kernelRuntime, put, runJob, scratch } from './runtime.js';
import { kernelOffset } from './storage.js';

export const rowsWasm: RowKernels = {
  name: 'rows-wasm',
  rmsNorm(x, g, y, C, eps, offset) {
    const r = kernelRuntime();
    const [xAt, yAt] = [kernelOffset(x), kernelOffset(y)];
    if (!r || xAt === null || yAt === null || x.length !== y.length || g.length !== C || x.length % C !== 0) return false;
    const [gAt] = scratch(r, [4 * C]); // the weight: a few KiB a call
    put(r, gAt, g);
    runJob(r, RMSNORM_JOB.words({ kind: JOB.rmsNorm, x: xAt, g: gAt, y: yAt, rows: x.length / C, C, eps, offset }));
    return true;
  },
  add(a, b, y) {
    const r = kernelRuntime();
    const [aAt, bAt, yAt] = [kernelOffset(a), kernelOffset(b), kernelOffset(y)];
    if (!r || aAt === null || bAt === null || yAt === null || a.length !== y.length || b.length !== y.length) return false;
    runJob(r, ADD_JOB.words({ kind: JOB.add, a: aAt, b: bAt, y: yAt, n: y.length }));
    return true;
  },
  // a projection's q or k viewed as heads ([B, T, H, D] as it lies, transposed) or already [B, H, T, D]: permuted and
  // rotated in one pass, the tables copied in (T · half f64 each)
  rope(x, y, cos, sin, half, perBatch) {
    const r = kernelRuntime();
    const [xAt, yAt] = [x.dtype === 'float32' ? kernelOffset(x.data) : null, kernelOffset(y)];
    const [B, H, T, D] = x.shape;
    if (!r || xAt === null || yAt === null || x.rank !== 4 || x.strides[3] !== 1 || y.length !== x.size) return false;
    if (half % 4 !== 0 || (D - 2 * half) % 4 !== 0) return false; // (the kernel's steps)
    if (cos.length !== (perBatch ? B * T : T) * half || sin.length !== cos.length) return false;
    const [cosAt, sinAt] = scratch(r, [cos.byteLength, sin.byteLength]);
    put(r, cosAt, new Uint8Array(cos.buffer, cos.byteOffset, cos.byteLength));
    put(r, sinAt, new Uint8Array(sin.buffer, sin.byteOffset, sin.byteLength));
    const [sB, sH, sT] = x.strides;
    runJob(r, ROPE_JOB.words({
      kind: JOB.rope, x: xAt + 4 * x.offset, y: yAt, cos: cosAt, sin: sinAt, B, H, L: T, D, half, sB, sH, sT, perBatch: perBatch ? 1 : 0,
    }));
    return true;
  },
};
