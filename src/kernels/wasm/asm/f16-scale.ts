// SCALE_F16 (SCALE_F16_JOB in jobs.ts): [kind, h, n, out] — an f16 weight matrix's n values (n a multiple of 8) times
// 2^10 in place, the F16Matrix of tensor/f16-matrix.ts (why: there). out ← 1 when done; 0, and h untouched, when some
// |w| ≥ 64 (or ±∞, NaN) would not fit. Run on one thread, at load: a pass to check, a pass to scale, eight at a time.
//   normal w (exponent field e ≥ 1):  e + 10
//   subnormal w = m · 2^−24 (e = 0):   m · 2^−14 normalised — the f32 bits of m (m ≥ 1: exact) shifted right by 13 are
//                                      (127 + p) << 10 | the 10 bits below m's leading one 2^p; less 126 << 10 that is
//                                      f16's exponent field p + 1 and the same mantissa. m = 0 gives a negative i32,
//                                      which the unsigned narrowing saturates to 0 (zero stays zero); the sign is kept.
import { C_H_BIAS, C_H_EXPONENT, C_H_MANTISSA, C_H_SIGN, C_H_TEN, C_H_TOO_BIG, cst, ptr, word } from './common';

export function scaleF16(job: usize): void {
  const h = ptr(job, 1), n = word(job, 2), out = ptr(job, 3);
  // the largest exponent field of all: ≥ 21 means |w| ≥ 64
  let top = i16x8.splat(0);
  for (let i = 0; i < n; i += 8) top = i16x8.max_u(top, v128.and(v128.load(h + (<usize>i << 1)), cst(C_H_EXPONENT)));
  if (v128.any_true(i16x8.ge_u(top, cst(C_H_TOO_BIG)))) { store<i32>(out, 0); return; }
  for (let i = 0; i < n; i += 8) {
    const at = h + (<usize>i << 1);
    const v = v128.load(at);
    const normal = v128.and(v, cst(C_H_EXPONENT)); // nonzero lanes: normal (bitselect needs all ones: the compare below)
    // all eight normal (but in a few vectors of a hundred): the exponent fields + 10
    if (i16x8.all_true(normal)) { v128.store(at, i16x8.add(v, cst(C_H_TEN))); continue; }
    const m = v128.and(v, cst(C_H_MANTISSA)); // < 1024: the signed conversion is exact (the unsigned one is dearer on x86)
    const lo = i32x4.sub(i32x4.shr_u(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_u(m)), 13), cst(C_H_BIAS));
    const hi = i32x4.sub(i32x4.shr_u(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_u(m)), 13), cst(C_H_BIAS));
    const subnormal = v128.or(i16x8.narrow_i32x4_u(lo, hi), v128.and(v, cst(C_H_SIGN)));
    v128.store(at, v128.bitselect(i16x8.add(v, cst(C_H_TEN)), subnormal, i16x8.gt_u(normal, i16x8.splat(0))));
  }
  store<i32>(out, 1);
}
