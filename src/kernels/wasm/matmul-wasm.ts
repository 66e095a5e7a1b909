// Host of the GEMM jobs of asm/kernels.ts for linear layers: C[M, N] = A[M, K] · B[N, K]ᵀ with B (the weight) in
// f32, f16, bf16 or int8 with a scale per row, widened to f32 inside the kernel. A weight is copied into the
// module's memory once and stays there, compact (keyed by its storage array), so each call copies only the
// activations in and the result out; the columns are shared among the runtime's threads.
// Returns null where the SIMD path does not apply (no WebAssembly SIMD, K not a multiple of the format's vector
// width, f16 weights holding ±∞/NaN), and the caller computes in TypeScript.
import { alignLine, JOB, kernelRuntime, put, resident, runJob, scratch, take } from './runtime.js';

/** A weight matrix [N, K] as stored: f32, 16-bit floats (raw bits), or int8 with one f32 scale per row. */
export type MatrixData =
  | { dtype: 'float32'; data: Float32Array }
  | { dtype: 'float16' | 'bfloat16'; data: Uint16Array }
  | { dtype: 'int8'; data: Int8Array; scales: Float32Array };

const KIND = { float32: JOB.gemmF32, float16: JOB.gemmF16, bfloat16: JOB.gemmBF16, int8: JOB.gemmI8 } as const;
const K_MULTIPLE = { float32: 4, float16: 8, bfloat16: 8, int8: 16 } as const;
const seen = new WeakSet<Float32Array>();
const finiteF16 = new WeakMap<Uint16Array, boolean>();

// an f16 weight with ±∞ or NaN (exponent all ones) cannot take the kernel's widening shortcut
function allFinite(h: Uint16Array): boolean {
  let ok = finiteF16.get(h);
  if (ok === undefined) {
    ok = true;
    for (let i = 0; i < h.length && ok; i++) if ((h[i] & 0x7c00) === 0x7c00) ok = false;
    finiteF16.set(h, ok);
  }
  return ok;
}

/** C = A · Bᵀ for a row-major A [M, K] and weight B [N, K]; null when the SIMD path does not apply. */
export function wasmMatmulTransB(a: Float32Array, b: MatrixData, M: number, K: number, N: number): Float32Array | null {
  const r = kernelRuntime();
  if (!r || K % K_MULTIPLE[b.dtype] !== 0 || b.data.length !== N * K) return null;
  if (b.dtype === 'float16' && !allFinite(b.data)) return null;
  // compact weights move in at once; an f32 matrix seen a second time is a weight too (a one-off is copied per call)
  let bAt = -1;
  if (b.dtype !== 'float32' || seen.has(b.data)) bAt = resident(r, b.data, b.dtype === 'float32' ? 0 : K);
  else seen.add(b.data);
  const sAt = b.dtype === 'int8' ? resident(r, b.scales) : 0;
  const panel = alignLine(16 * K); // per thread: four rows of B widened to f32, in whole cache lines
  const [aAt, cAt, panelAt, oneOff] = scratch(r, [4 * a.length, 4 * M * N, panel * r.threads, bAt < 0 ? 4 * N * K : 0]);
  put(r, aAt, a);
  if (bAt < 0) { put(r, oneOff, b.data as Float32Array); bAt = oneOff; }
  runJob(r, [KIND[b.dtype], aAt, bAt, cAt, M, K, N, sAt, panelAt, panel]);
  return take(r, cAt, M * N);
}
