// IEEE 754 half precision (float16) and bfloat16 <-> float32, bit-exact, round-to-nearest-even.
// bfloat16 is the top 16 bits of a float32; float16 has 5 exponent bits and 10 mantissa bits.
import { notANumber } from '../errors.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 value -> bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN. */
export function f32ToBf16(x: number): number {
  if (typeof x !== 'number') notANumber('f32ToBf16', x);
  f32[0] = x;
  const bits = u32[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff; // NaN: keep it quiet
  // add 0x7fff + lsb of the kept part: ties go to the even neighbour
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** bfloat16 bits -> float32 value (exact). */
export function bf16ToF32(h: number): number {
  if (typeof h !== 'number') notANumber('bf16ToF32', h);
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** float32 value -> float16 bits, round to nearest even, overflow to ±Inf, subnormals kept. */
export function f32ToF16(x: number): number {
  if (typeof x !== 'number') notANumber('f32ToF16', x);
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf or NaN
  // unbiased exponent, rebiased for half (bias 15)
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // too large: Inf
  if (e <= 0) {
    // subnormal half (or zero): shift the implicit 1 into the mantissa, then round
    if (e < -10) return sign; // below half the smallest subnormal: ±0
    mant |= 0x800000;
    const shift = 14 - e; // 24-bit significand -> 10-bit field at this exponent
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1))) m += 1;
    return sign | m; // a carry into bit 10 correctly yields the smallest normal
  }
  // normal: keep 10 of 23 mantissa bits, round to nearest even on the 13 dropped bits
  const rest = mant & 0x1fff;
  let m = mant >>> 13;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1))) {
    m += 1;
    if (m === 0x400) { m = 0; e += 1; if (e >= 0x1f) return sign | 0x7c00; }
  }
  return sign | (e << 10) | m;
}

/** float16 bits -> float32 value (exact). */
export function f16ToF32(h: number): number {
  if (typeof h !== 'number') notANumber('f16ToF32', h);
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero or subnormal
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

let f16Table: Float32Array | null = null;

/**
 * dst[i] = the float32 value of 16-bit float bits src[i] (float16 or bfloat16) — the bulk form of f16ToF32/bf16ToF32
 * for whole tensors: float16 through a table of all 65,536 values (built on first use, 256 KiB), bfloat16 by moving
 * the bits into the top half of each float32.
 */
export function widen16(src: Uint16Array, dst: Float32Array, dtype: 'float16' | 'bfloat16'): void {
  if (dtype === 'bfloat16') {
    const bits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
    for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
    return;
  }
  const table = (f16Table ??= Float32Array.from({ length: 65536 }, (_, h) => f16ToF32(h)));
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]];
}

/**
 * dst[at + i] = the float16 bits of src[i], rounded to nearest even (f32ToF16's answer) — the bulk form for an f16 KV
 * cache. Returns false, with dst's slots from `at` on unspecified, when some value is not a finite f16 (±∞, NaN, or
 * |x| ≥ 65520, which rounds to ∞): the caller keeps such values in f32.
 */
export function narrow16(src: Float32Array, dst: Uint16Array, at = 0): boolean {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i], a = x & 0x7fffffff;
    if (a >= 0x477ff000) return false; // rounds to ±∞, or is ±∞ or NaN
    if (a < 0x38800000) { dst[at + i] = f32ToF16(src[i]); continue; } // below 2^−14: a subnormal f16 (or zero)
    // normal: rebias the exponent (127 → 15) and round the 13 dropped mantissa bits to nearest even; a carry out of
    // the mantissa moves into the exponent as it should
    dst[at + i] = ((x >>> 16) & 0x8000) | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13);
  }
  return true;
}
