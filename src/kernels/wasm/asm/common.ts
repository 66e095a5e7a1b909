// What every kernel of asm/kernels.ts shares: the job kinds and words, the table of vector constants, and small SIMD
// helpers (a vectorised 2^x, horizontal sums).
export const ATTENTION: i32 = 1;
export const PACK_K: i32 = 2;
export const GEMM_F32: i32 = 3;
export const GEMM_F16: i32 = 4;
export const GEMM_BF16: i32 = 5;
export const GEMM_I8: i32 = 6;
export const DECODE: i32 = 7;
export const GEMM_I4: i32 = 8;
export const MERGE: i32 = 9;
export const SCALE_F16: i32 = 10;
export const RMSNORM: i32 = 11;
export const ADD: i32 = 12;
export const ROPE: i32 = 13;

// Vector constants live in memory, not in the code: binaryen copies a v128.const into every use and V8 rebuilds each
// one with several instructions, inside the hot loops; a load from this table is one L1 read. The host calls init() once,
// when it creates the memory (workers share it), to write the table at CONSTS = 512, between the job (256) and the
// compiler's static data, which scripts/build-wasm.mjs starts at 4096 (--memoryBase): room for 224 constants
// (test/unit/kernels/layouts.test.ts checks that the last one ends before the first data segment).
export const CONSTS: usize = 512;
export const C_NEG_INF = 0, C_EXP2_LO = 1, C_EXP2_HI = 2, C_P0 = 6, C_ONE = 12, C_127 = 13;
export const LOG2E: f32 = 1.44269504088896341;
export const C_F16_MASK = 14, C_F16_FULL = 15, C_F16_BIG = 16;
export const C_NEG_LOG2E = 17, C_GELU_A = 18, C_GELU_2C = 19, C_126 = 20, C_M127 = 21, C_NIBBLE = 22, C_EIGHT = 23;
export const C_H_EXPONENT = 24, C_H_MANTISSA = 25, C_H_SIGN = 26, C_H_TEN = 27, C_H_TOO_BIG = 28, C_H_BIAS = 29, C_ROUND = 30;
export const C_F16_UNIT = 31, C_NEG_2LOG2E = 32, C_EIGHTH = 33, C_T3 = 34, C_T5 = 35, C_T7 = 36, C_SIGN = 37;
@inline export function cst(i: i32): v128 { return v128.load(CONSTS + (<usize>i << 4)); }

@inline function setF(i: i32, x: f32): void { v128.store(CONSTS + (<usize>i << 4), f32x4.splat(x)); }
@inline function setI(i: i32, x: i32): void { v128.store(CONSTS + (<usize>i << 4), i32x4.splat(x)); }
@inline function setB(i: i32, x: i8): void { v128.store(CONSTS + (<usize>i << 4), i8x16.splat(x)); }
@inline function setH(i: i32, x: i16): void { v128.store(CONSTS + (<usize>i << 4), i16x8.splat(x)); }

export function writeConstants(): void {
  setF(C_NEG_INF, -Infinity); setF(C_EXP2_LO, -126.0); setF(C_EXP2_HI, 127.49);
  // Cephes exp2f polynomial P, highest degree first: 2^f = 1 + f·P(f)
  setF(C_P0, 1.535336188319500e-4); setF(C_P0 + 1, 1.339887440266574e-3); setF(C_P0 + 2, 9.618437357674640e-3);
  setF(C_P0 + 3, 5.550332471162809e-2); setF(C_P0 + 4, 2.402264791363012e-1); setF(C_P0 + 5, 6.931472028550421e-1);
  setF(C_ONE, 1); setI(C_127, 127);
  setI(C_F16_MASK, 0x8fffe000); setI(C_F16_FULL, 0x8fffffff); setF(C_F16_BIG, 32768);
  setF(C_NEG_LOG2E, -LOG2E); setF(C_GELU_A, 0.044715); setF(C_GELU_2C, 1.5957691216057308 /* 2·√(2/π) */); setF(C_126, 126); setF(C_M127, -127);
  setB(C_NIBBLE, 0x0f); setB(C_EIGHT, 8);
  // f16 fields (f16-scale.ts): exponent, mantissa, sign, exponent + 10, exponent field 21 (|w| ≥ 64), 126 << 10 in i32 lanes
  setH(C_H_EXPONENT, 0x7c00); setH(C_H_MANTISSA, 0x03ff); setH(C_H_SIGN, <i16>0x8000); setH(C_H_TEN, 10 << 10);
  setH(C_H_TOO_BIG, 21 << 10); setI(C_H_BIAS, 126 << 10);
  setF(C_ROUND, 12582912 /* 1.5 · 2^23: adding it rounds to an integer (exp2v) */);
  setF(C_F16_UNIT, F16_UNIT);
  // soft-capping's tanh (softcapV): e^{−2|y|} = 2^{−2 log2 e · |y|}, its series' bound and coefficients, the sign bit
  setF(C_NEG_2LOG2E, -2 * LOG2E); setF(C_EIGHTH, 0.125);
  setF(C_T3, -1.0 / 3); setF(C_T5, 2.0 / 15); setF(C_T7, -17.0 / 315); setI(C_SIGN, <i32>0x80000000);
}

// a·b + c on four lanes: one fused multiply-add where the engine has relaxed SIMD (this module built with
// --enable relaxed-simd: f32x4.relaxed_madd, fused or not as the hardware does it), else a multiply and an add
@inline
export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

// Soft-capping (Gemma 2) of scores in base 2, s = scale · log2 e · q·k: s ← cb · tanh(s / cb) with cb = softcap · log2 e,
// which is softcap · tanh(x / softcap) of the natural-units score x, in base 2 (`inv` = 1 / cb). tanh(y) =
// sign(y) · (1 − z) / (1 + z) with z = e^{−2|y|} (its error ~1e−7, the exponential's), and where 1 − z would cancel
// (|y| < 1/8) the series y − y³/3 + 2y⁵/15 − 17y⁷/315 (the next term is under 2e−9 · |y| there). A masked key's −∞ stays
// −∞; +∞ caps to cb (tanh ∞ = 1) and NaN stays NaN, as the TypeScript kernels' Math.tanh give.
@inline
export function softcapV(s: v128, cb: v128, inv: v128): v128 {
  const y = f32x4.mul(s, inv), a = f32x4.abs(y);
  const z = exp2neg(f32x4.mul(a, cst(C_NEG_2LOG2E)));
  const far = v128.or(f32x4.div(f32x4.sub(cst(C_ONE), z), f32x4.add(cst(C_ONE), z)), v128.and(y, cst(C_SIGN)));
  const y2 = f32x4.mul(y, y);
  const near = f32x4.mul(y, madd(y2, madd(y2, madd(y2, cst(C_T7), cst(C_T5)), cst(C_T3)), cst(C_ONE)));
  const t = v128.bitselect(near, far, f32x4.lt(a, cst(C_EIGHTH)));
  return v128.bitselect(s, f32x4.mul(cb, t), f32x4.eq(s, cst(C_NEG_INF)));
}

// the first `cols` scores (a multiple of 4) of `rows` score rows from sT (BN = 64 apart) soft-capped in place (softcapV)
@inline
export function softcapRows(sT: usize, rows: i32, cols: i32, softcap: f32): void {
  const cb = f32x4.splat(softcap * LOG2E), inv = f32x4.splat(1 / (softcap * LOG2E));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c += 4) {
      const at = sT + (<usize>(r * 64 + c) << 2);
      v128.store(at, softcapV(v128.load(at), cb, inv));
    }
  }
}

// An additive bias (T5's relative positions, an additive mask) and ALiBi (Press et al. 2022) on the score row at s, in
// base 2 like the scores (s = scale · log2 e · q·k, so both terms times log2 e), after soft-capping:
//   s_c ← s_c + log2 e · bias_c                for the n keys that exist (c < n; bias = the row's bias at key j0, or 0)
//   s_c ← s_c − log2 e · slope · |pos − j|     for j = j0 + c, c < cols (a multiple of 4; slope 0: no ALiBi)
// A masked key's −∞ stays −∞. Distances are exact in f32 below 2^24 keys.
@inline
export function biasRow(s: usize, bias: usize, n: i32, slope: f32, pos: i32, j0: i32, cols: i32): void {
  if (bias != 0) {
    const l2e = f32x4.splat(LOG2E);
    let c = 0;
    for (; c + 4 <= n; c += 4) {
      const at = s + (<usize>c << 2);
      v128.store(at, madd(v128.load(bias + (<usize>c << 2)), l2e, v128.load(at)));
    }
    for (; c < n; c++) store<f32>(s + (<usize>c << 2), load<f32>(s + (<usize>c << 2)) + LOG2E * load<f32>(bias + (<usize>c << 2)));
  }
  if (slope == 0) return;
  const k = f32x4.splat(-slope * LOG2E);
  let d = i32x4.add(i32x4.splat(j0 - pos), i32x4(0, 1, 2, 3)); // j − pos for four keys
  for (let c = 0; c < cols; c += 4) {
    const at = s + (<usize>c << 2);
    v128.store(at, madd(f32x4.abs(f32x4.convert_i32x4_s(d)), k, v128.load(at)));
    d = i32x4.add(d, i32x4.splat(4));
  }
}

// The unit a thread takes after unit u (−1: its first) of a job of T threads. On threads, the next unclaimed one (control
// word 5 at byte 20; the host sets it to 0 before each job that runs on threads): threads that take units in turn
// finish together even when one of them runs slower. Alone, every unit in order.
const NEXT_AT: usize = 20;
@inline export function claim(u: i32, T: i32): i32 {
  if (T == 1) return u + 1;
  if (ASC_FEATURE_THREADS) return atomic.add<i32>(NEXT_AT, 1);
  return unreachable(); // (a private memory runs one thread)
}

// Four stored elements at p as an f32x4 (the decode job's KV cache): f32 as they are (E = f32), or f16 bits (E = u16)
// as f32 bit patterns worth x · 2^−112 — the load sign-extends each 16-bit value into an i32 lane, the shift moves the
// exponent and mantissa into f32's places (copies of the sign into bits 31–28) and f16Mask (C_F16_MASK) keeps those and
// the sign. Exact for every finite f16, subnormals included; ±∞ and NaN are not (the cache never stores them). The
// other factor of each product carries F16_UNIT = 2^112, so q·k and p·v come out at their true size.
export const F16_UNIT: f32 = 5.192296858534828e33;
@inline export function load4<E>(p: usize, f16Mask: v128): v128 {
  if (sizeof<E>() == 2) return v128.and(i32x4.shl(v128.load16x4_s(p), 13), f16Mask);
  return v128.load(p);
}

@inline export function word(job: usize, i: i32): i32 { return load<i32>(job + (<usize>i << 2)); }
@inline export function ptr(job: usize, i: i32): usize { return <usize>load<u32>(job + (<usize>i << 2)); }

// 2^x on four lanes (Cephes exp2f): 2^x = 2^n · 2^f, n = round(x), f = x − n ∈ [−½, ½], 2^f = 1 + f·P(f) with P of
// degree 5; 2^n built in the exponent bits. The attention kernels work in base 2 — scores are scaled by log2 e once,
// in the q·k tile — so the exponential needs no range reduction by ln 2. −∞ lanes give exactly 0. Horner's steps are
// fused multiply-adds where the engine has them (madd: 1.02–1.04× the attention job, 6 operations fewer per 4 lanes).
// n comes from adding 1.5 · 2^23 (ROUND): the sum's low mantissa bits are round(x), ties to even as f32x4.nearest, and
// its bits + 127, shifted left by 23, are 2^n's (ROUND's own bits vanish in the shift) — two operations where nearest
// and a saturating conversion took seven on x64. The clamps are pmax/pmin (one maxps/minps each; f32x4.max is eight, for
// NaN and ±0 rules these do not need): written pmax(x, c), a NaN x stays NaN, and NaN reaches the result.
@inline
export function exp2v(x: v128): v128 {
  const isNegInf = f32x4.eq(x, cst(C_NEG_INF));
  return v128.andnot(exp2Clamped(f32x4.pmin(f32x4.pmax(x, cst(C_EXP2_LO)), cst(C_EXP2_HI))), isNegInf);
}

// 2^x for x ≤ 0 or −∞ (the softmax's s − m): the same polynomial with one clamp. x ≤ −127 (−∞ included) becomes
// n = −127, whose 2^n has a zero exponent field, i.e. exactly 0 — three operations fewer than exp2v per four lanes.
// Lanes in (−127, −126.5) also give 0 instead of ~1e−38, nothing next to a row sum of at least 1.
@inline
export function exp2neg(x: v128): v128 {
  return exp2Clamped(f32x4.pmax(x, cst(C_M127)));
}

// 2^x for x already within [−127, 127.49] (or NaN): 2^n · (1 + f·P(f)), n and f by adding ROUND
@inline
function exp2Clamped(xc: v128): v128 {
  const t = f32x4.add(xc, cst(C_ROUND));
  const f = f32x4.sub(xc, f32x4.sub(t, cst(C_ROUND)));
  // Horner's steps written out: as a loop, binaryen kept it and V8 ran a loop check between every two of them
  let y = madd(cst(C_P0), f, cst(C_P0 + 1));
  y = madd(y, f, cst(C_P0 + 2)); y = madd(y, f, cst(C_P0 + 3)); y = madd(y, f, cst(C_P0 + 4)); y = madd(y, f, cst(C_P0 + 5));
  y = madd(y, f, cst(C_ONE));
  return f32x4.mul(y, i32x4.shl(i32x4.add(t, cst(C_127)), 23));
}

@inline export function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}
// the horizontal sums of four accumulators, stored `step` bytes apart from `at`
@inline export function store4(at: usize, step: usize, s0: v128, s1: v128, s2: v128, s3: v128): void {
  store<f32>(at, hsum(s0)); store<f32>(at + step, hsum(s1)); store<f32>(at + 2 * step, hsum(s2)); store<f32>(at + 3 * step, hsum(s3));
}
// the same, each sum times its row's scale (int8 rows: the scales sit at the results' own offsets from `scales`)
@inline export function store4Scaled(c: usize, scales: usize, at: usize, step: usize, s0: v128, s1: v128, s2: v128, s3: v128): void {
  store<f32>(c + at, hsum(s0) * load<f32>(scales + at));
  store<f32>(c + at + step, hsum(s1) * load<f32>(scales + at + step));
  store<f32>(c + at + 2 * step, hsum(s2) * load<f32>(scales + at + 2 * step));
  store<f32>(c + at + 3 * step, hsum(s3) * load<f32>(scales + at + 3 * step));
}
@inline export function hmax(v: v128): f32 {
  return max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

// Where elements k … k + 3 (k a multiple of 4) of row r of a GEMM's packed panel sit (gemm.ts: [K/4][4 rows][4] floats)
@inline export function panelAt(panel: usize, r: i32, k: i32): usize {
  return panel + ((<usize>(k >> 2) << 6) | (<usize>r << 4));
}
