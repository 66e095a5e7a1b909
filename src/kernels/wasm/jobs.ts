// The argument list of every WebAssembly job, declared once (layout.ts): the host builds the words by field name, and
// a test checks that the AssemblyScript job reads each field at its index (`const q = ptr(job, 1)`). Word 0 is the
// job kind (asm/kernels.ts dispatches on it); pointers are byte offsets into the kernels' memory.
import { Layout } from '../layout.js';

/** Job kinds (asm/kernels.ts). */
export const JOB = {
  attention: 1, packK: 2, gemmF32: 3, gemmF16: 4, gemmBF16: 5, gemmI8: 6, decode: 7, gemmI4: 8, merge: 9, scaleF16: 10,
  rmsNorm: 11, add: 12, rope: 13,
} as const;

// jobs whose every unit of work is claimed, whatever their size
const CLAIMED: ReadonlySet<number> = new Set([JOB.attention, JOB.decode, JOB.merge, JOB.rmsNorm, JOB.add, JOB.rope]);

/**
 * Jobs made only of units the threads claim (claim(), asm/common.ts) — attention, decode attention and its merge, the
 * rows jobs, and the GEMM's outer-product path: each thread runs the job once, claiming units until none is left. The
 * others (PACK_K, SCALE_F16, the GEMM's column ranges: decode reads each thread's rows as four long streams) are cut
 * into fixed shares, thread t's part of T, which the threads take in turn (runtime.ts).
 */
export function claimsOnly(w: ArrayLike<number>): boolean {
  const kind = w[0];
  if (CLAIMED.has(kind)) return true;
  const gemm = kind === JOB.gemmF32 || kind === JOB.gemmF16 || kind === JOB.gemmBF16 || kind === JOB.gemmI8 || kind === JOB.gemmI4;
  return gemm && w[GEMM_JOB.index.outer] !== 0;
}

/** PACK_K (asm/attention.ts): k → panels of 8 keys for the attention job. */
export const PACK_K_JOB = new Layout('packK', [
  ['kind', 'u32'], ['k', 'u32'], ['kp', 'u32'], ['BHkv', 'u32'], ['S', 'u32'], ['D', 'u32'], ['Sp', 'u32'],
]);

/** ATTENTION (asm/attention.ts): FlashAttention forward over query tiles. */
export const ATTENTION_JOB = new Layout('attention', [
  ['kind', 'u32'], ['q', 'u32'], ['kp', 'u32'], ['v', 'u32'], ['out', 'u32'], ['ml', 'u32'], ['scratch', 'u32'], ['scratchStride', 'u32'],
  ['BH', 'u32'], ['Hq', 'u32'], ['Hkv', 'u32'], ['L', 'u32'], ['S', 'u32'], ['D', 'u32'], ['Dv', 'u32'],
  ['scale', 'f32'], ['causal', 'u32'], ['shift', 'i32'], ['Sp', 'u32'], ['window', 'i32'],
  ['softcap', 'f32'], ['keep', 'u32'], ['bias', 'u32'], ['biasB', 'u32'], ['biasH', 'u32'], ['biasI', 'u32'], ['alibi', 'u32'],
  ['posShift', 'i32'],
]);

/** DECODE (asm/decode.ts): split-K attention for a few query rows, over dense keys or a paged cache's blocks. */
export const DECODE_JOB = new Layout('decode', [
  ['kind', 'u32'], ['q', 'u32'], ['k', 'u32'], ['v', 'u32'], ['part', 'u32'], ['scratch', 'u32'], ['scratchStride', 'u32'],
  ['B', 'u32'], ['Hq', 'u32'], ['Hkv', 'u32'], ['L', 'u32'], ['S', 'u32'], ['D', 'u32'], ['Dv', 'u32'],
  ['scale', 'f32'], ['causal', 'u32'], ['shift', 'i32'], ['chunk', 'u32'], ['splits', 'u32'], ['kStride', 'u32'], ['vStride', 'u32'],
  ['paged', 'u32'], ['tables', 'u32'], ['lens', 'u32'], ['tableStride', 'u32'], ['kScales', 'u32'], ['vScales', 'u32'], ['f16', 'u32'],
  ['window', 'i32'], ['softcap', 'f32'], ['keep', 'u32'], ['bias', 'u32'], ['biasB', 'u32'], ['biasH', 'u32'], ['biasI', 'u32'],
  ['alibi', 'u32'], ['posShift', 'i32'],
]);

/** MERGE (asm/decode.ts): the DECODE job's chunks of each query row merged into out [B, Hq, L, Dv] and lse [B, Hq, L]. */
export const MERGE_JOB = new Layout('merge', [
  ['kind', 'u32'], ['part', 'u32'], ['out', 'u32'], ['lse', 'u32'], ['B', 'u32'], ['Hq', 'u32'], ['Hkv', 'u32'], ['L', 'u32'],
  ['Dv', 'u32'], ['splits', 'u32'],
]);

/** SCALE_F16 (asm/f16-scale.ts): n f16 (a multiple of 8) at h times 2^10 in place; out ← 1, or 0 when they do not fit. */
export const SCALE_F16_JOB = new Layout('scaleF16', [['kind', 'u32'], ['h', 'u32'], ['n', 'u32'], ['out', 'u32']]);

/** GEMM_* (asm/gemm.ts): c = a · bᵀ (× int8 scales), or the gated product act(a · bᵀ) ⊙ (a · b2ᵀ). */
export const GEMM_JOB = new Layout('gemm', [
  ['kind', 'u32'], ['a', 'u32'], ['b', 'u32'], ['c', 'u32'], ['M', 'u32'], ['K', 'u32'], ['N', 'u32'], ['scales', 'u32'],
  ['scratch', 'u32'], ['scratchStride', 'u32'], ['glu', 'u32'], ['b2', 'u32'], ['scales2', 'u32'], ['c2', 'u32'], ['f16Scale', 'f32'],
  ['f16Scale2', 'f32'], ['outer', 'u32'],
]);

/** RMSNORM (asm/rows.ts): y = x / √(mean(x²) + ε) · (offset + g) over `rows` rows of C floats. */
export const RMSNORM_JOB = new Layout('rmsNorm', [
  ['kind', 'u32'], ['x', 'u32'], ['g', 'u32'], ['y', 'u32'], ['rows', 'u32'], ['C', 'u32'], ['eps', 'f32'], ['offset', 'f32'],
]);

/** ADD (asm/rows.ts): y = a + b over n floats. */
export const ADD_JOB = new Layout('add', [['kind', 'u32'], ['a', 'u32'], ['b', 'u32'], ['y', 'u32'], ['n', 'u32']]);

/** ROPE (asm/rows.ts): RoPE on rows x[b, h, t] at strides sB, sH, sT into y [B, H, L, D], f64 cos and sin tables. */
export const ROPE_JOB = new Layout('rope', [
  ['kind', 'u32'], ['x', 'u32'], ['y', 'u32'], ['cos', 'u32'], ['sin', 'u32'], ['B', 'u32'], ['H', 'u32'], ['L', 'u32'],
  ['D', 'u32'], ['half', 'u32'], ['sB', 'u32'], ['sH', 'u32'], ['sT', 'u32'], ['perBatch', 'u32'],
]);
