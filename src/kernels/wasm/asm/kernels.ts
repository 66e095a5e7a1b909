// qkv's WebAssembly SIMD kernels, in AssemblyScript (compiled by `npm run build`, twice: with a private memory and
// with a shared one for threads). One entry point, run(job, t, T): thread t of T does its share of the job described
// at `job` in linear memory — the host writes the job once and every thread (the caller and its workers) runs it.
//
//   ATTENTION   FlashAttention forward (online softmax), causal or not, GQA; 4 query rows × 8 keys per register tile
//   DECODE      split-K attention for a few query rows (FlashDecoding): units of (kv head, key chunk) over threads,
//               all the query heads of a GQA group together
//   MERGE       the DECODE job's chunks of each query row merged (its rows over threads), out and lse for the host
//   PACK_K      k [BHkv, S, D] → panels [BHkv, S/8, D, 8] so the score tile reads 8 keys per load, in order
//   SCALE_F16   an f16 weight matrix times 2^10 in place, at load (f16-scale.ts; one thread)
//   GEMM_*      C[M, N] = A[M, K] · B[N, K]ᵀ (torch's Linear layout) with B in f32, f16, bf16, int8 (+ a scale per
//               row of B) or int4 (+ a scale per row and block of 32), B widened to f32 inside the kernel so decode
//               reads 2, 1 or ½ bytes per weight (int8/int4 decode: integer dot products, gemv-q.ts)
//   RMSNORM     y = x / √(mean(x²) + ε) · (offset + g) over rows (rows.ts: a layer's arrays where they lie)
//   ADD         y = a + b (a residual connection)
//   ROPE        RoPE on q or k rows as the projection left them, into [B, H, T, D]
//
// Layout of a job (i32 words; floats stored as their bits): at the top of each job's function and in
// src/kernels/wasm/runtime.ts. The jobs live in attention.ts, decode.ts, gemm.ts and rows.ts; common.ts has what they share.

import { ADD, ATTENTION, DECODE, MERGE, PACK_K, RMSNORM, ROPE, SCALE_F16, word, writeConstants } from './common';

/** Writes the table of vector constants; the host calls it once per memory, before any job. */
export function init(): void { writeConstants(); }

import { attention, packK } from './attention';
import { decode, merge } from './decode';
import { gemm } from './gemm';
import { scaleF16 } from './f16-scale';
import { add, rmsNorm, rope } from './rows';
/** Thread t of T runs its share of the job at `job`. */
export function run(job: usize, t: i32, T: i32): void {
  const kind = word(job, 0);
  if (kind == ATTENTION) attention(job, t, T);
  else if (kind == DECODE) decode(job, t, T);
  else if (kind == PACK_K) packK(job, t, T);
  else if (kind == MERGE) merge(job, t, T);
  else if (kind == SCALE_F16) { if (t == 0) scaleF16(job); }
  else if (kind == RMSNORM) rmsNorm(job, t, T);
  else if (kind == ADD) add(job, t, T);
  else if (kind == ROPE) rope(job, t, T);
  else gemm(job, kind, t, T);
}
