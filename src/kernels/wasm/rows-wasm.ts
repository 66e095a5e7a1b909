// Host of the ROWS jobs (asm/rows.ts): RMSNorm and residual adds over a decoder layer's arrays where they lie in the
// kernels' memory (its arena, tensor/arena.ts) — no copy in or out, SIMD instead of a JavaScript loop (V8 takes ~2–4 ns
// an element over a Float32Array there: every load and store is a conversion between f32 and f64).
import type { RowKernels } from '../contract.js';
import { ADD_JOB, RMSNORM_JOB } from './jobs.js';
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
};
