// Decode (M = 1) with int8 or int4 weights as integer dot products, the way llama.cpp runs Q8_0 and Q4_0: the weights
// stay integers and x is rounded to integers once per call, so the inner loop is i32x4.dot_i16x8_s (eight products
// and four sums per instruction) instead of widening every weight to f32.
//
// x is rounded to 16 bits per block of 32 (prepareQ16):   dx_b = max_{k∈b} |x_k| / 32767,   xq_k = round(x_k / dx_b)
// which keeps x to within 2^−16 of each block's largest value (an f32 → int8 weight is already 2^−8 coarse; int4 in the
// relaxed-SIMD build rounds x to 8 bits instead, prepareQ8 below), then
//   int8 (a scale per row):               c_j = s_j · Σ_b dx_b · Σ_{k∈b} q_jk · xq_k
//   int4 (a scale per row and block):     c_j = Σ_b s_jb · dx_b · Σ_{k∈b} (q_jk − 8) · xq_k
// Int4 rows are blocks of 16 bytes holding 32 weights: byte i has weight i in its low nibble and weight i + 16 in its
// high nibble (Q4_0's order). The products fit in i32: 32 terms of at most 127 · 32767 per block.
import { C_NIBBLE, C_EIGHT, cst, madd, panelAt, store4, store4Scaled } from './common';

// the high nibble of each byte: a 16-bit shift and the nibble mask (x86 has no byte shift, and V8 rebuilds the mask of
// an i8x16.shr_u at every use, three instructions inside the hot loop; the table's mask is loaded once)
@inline function highNibbles(h: v128): v128 { return v128.and(i16x8.shr_u(h, 4), cst(C_NIBBLE)); }

// xq (i16) and dx (f32 per block) into `xs`: [K i16 | K/32 f32]; false (and nothing usable) when some x is ±∞ or NaN,
// or a block's largest |x| is below 2^−100 (where 32767 / max would overflow): the widening path takes those calls
export function prepareQ16(a: usize, xs: usize, K: i32): bool {
  const dxs = xs + (<usize>K << 1);
  for (let b = 0; b < K; b += 32) {
    const x = a + (<usize>b << 2);
    const amax = blockAbsMax(x);
    if (amax < 0) return false;
    store<f32>(dxs + (<usize>(b >> 5) << 2), amax / 32767);
    const inv = f32x4.splat(amax > 0 ? 32767 / amax : 0);
    for (let i: usize = 0; i < 128; i += 32) {
      // the narrowing saturates at ±32767 should x / dx round a hair past it
      v128.store(xs + (<usize>b << 1) + (i >> 1), i16x8.narrow_i32x4_s(roundQ(x + i, inv), roundQ(x + i + 16, inv)));
    }
  }
  return true;
}

// the largest |x| of the block of 32 floats at x, or −1 when the block cannot be rounded to integers: some x is ±∞ or
// NaN, or the largest |x| is below 2^−100 (where the scale's inverse would overflow)
@inline
function blockAbsMax(x: usize): f32 {
  let m = f32x4.abs(v128.load(x));
  for (let i = 16; i < 128; i += 16) m = f32x4.max(m, f32x4.abs(v128.load(x + <usize>i)));
  const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  return !isFinite(amax) || (amax != 0 && amax < 7.888609e-31) ? -1 : amax;
}

// four x at p scaled by inv, rounded to the nearest integer (ties to even)
@inline
function roundQ(p: usize, inv: v128): v128 {
  return i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p), inv)));
}

// Σ over one block of 32 of q · xq for 32 int8 weights at w (i32 lanes; their sum is the block's dot product)
@inline
function blockI8(w: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const h0 = v128.load(w), h1 = v128.load(w, 16);
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(h0), x0), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(h0), x1)),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(h1), x2), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(h1), x3)));
}

// the same for 32 int4 weights in 16 bytes at w: nibbles → q − 8 ∈ [−8, 7]
@inline
function blockI4(w: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const h = v128.load(w);
  const lo = i8x16.sub(v128.and(h, cst(C_NIBBLE)), cst(C_EIGHT)), hi = i8x16.sub(highNibbles(h), cst(C_EIGHT));
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(lo), x0), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(lo), x1)),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(hi), x2), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(hi), x3)));
}

// c_j, c_{j+gap}, c_{j+2gap}, c_{j+3gap} from int8 rows b0 + r·gap·K (scale s_j per row), x prepared in xs
export function gemvQ8(xs: usize, b0: usize, c: usize, K: i32, j: i32, scales: usize, gap: i32): void {
  const stride = <usize>gap * <usize>K, dxs = xs + (<usize>K << 1);
  const b1 = b0 + stride, b2 = b1 + stride, b3 = b2 + stride;
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  for (let k = 0; k < K; k += 32) {
    const x = xs + (<usize>k << 1);
    const x0 = v128.load(x), x1 = v128.load(x, 16), x2 = v128.load(x, 32), x3 = v128.load(x, 48);
    const dx = v128.load32_splat(dxs + (<usize>(k >> 5) << 2));
    const o = <usize>k;
    s0 = madd(f32x4.convert_i32x4_s(blockI8(b0 + o, x0, x1, x2, x3)), dx, s0);
    s1 = madd(f32x4.convert_i32x4_s(blockI8(b1 + o, x0, x1, x2, x3)), dx, s1);
    s2 = madd(f32x4.convert_i32x4_s(blockI8(b2 + o, x0, x1, x2, x3)), dx, s2);
    s3 = madd(f32x4.convert_i32x4_s(blockI8(b3 + o, x0, x1, x2, x3)), dx, s3);
  }
  store4Scaled(c, scales, <usize>j << 2, <usize>gap << 2, s0, s1, s2, s3);
}

// c_j, c_{j+gap}, … from int4 rows of K/2 bytes at b0 + r·gap·K/2 (scales [N, K/32]: one per row and block), x
// prepared in xs
export function gemvQ4(xs: usize, b0: usize, c: usize, K: i32, j: i32, scales: usize, gap: i32): void {
  const stride = <usize>gap * <usize>(K >> 1), dxs = xs + (<usize>K << 1), blocks = <usize>(K >> 5);
  const b1 = b0 + stride, b2 = b1 + stride, b3 = b2 + stride;
  const scStride = (<usize>gap * blocks) << 2;
  const sc0 = scales + ((<usize>j * blocks) << 2), sc1 = sc0 + scStride, sc2 = sc1 + scStride, sc3 = sc2 + scStride;
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  for (let k = 0; k < K; k += 32) {
    const x = xs + (<usize>k << 1);
    const x0 = v128.load(x), x1 = v128.load(x, 16), x2 = v128.load(x, 32), x3 = v128.load(x, 48);
    const bb = <usize>(k >> 5) << 2;
    const dx = load<f32>(dxs + bb);
    const o = <usize>(k >> 1);
    s0 = madd(f32x4.convert_i32x4_s(blockI4(b0 + o, x0, x1, x2, x3)), f32x4.splat(dx * load<f32>(sc0 + bb)), s0);
    s1 = madd(f32x4.convert_i32x4_s(blockI4(b1 + o, x0, x1, x2, x3)), f32x4.splat(dx * load<f32>(sc1 + bb)), s1);
    s2 = madd(f32x4.convert_i32x4_s(blockI4(b2 + o, x0, x1, x2, x3)), f32x4.splat(dx * load<f32>(sc2 + bb)), s2);
    s3 = madd(f32x4.convert_i32x4_s(blockI4(b3 + o, x0, x1, x2, x3)), f32x4.splat(dx * load<f32>(sc3 + bb)), s3);
  }
  store4(c + (<usize>j << 2), <usize>gap << 2, s0, s1, s2, s3);
}

// Relaxed SIMD only (int4): x rounded to 8 bits per block, as llama.cpp rounds x for Q4_0 (its Q8_0):
//   dx_b = max_{k∈b} |x_k| / 127,   xq_k = round(x_k / dx_b)
//   c_j = Σ_b s_jb · dx_b · (Σ_{k∈b} q_jk · xq_k − 8 · Σ_{k∈b} xq_k)
// so that i16x8.relaxed_dot_i8x16_i7x16_s takes the nibbles q ∈ [0, 15] as its 7-bit operand and xq as its signed 8-bit
// one (pmaddubsw on x86: a product pair per i16 lane, |2 · 15 · 127| far from saturating). Rounding x to 8 bits adds
// an error of at most 1/254 of a block's largest |x| per element, well under the int4 weights' own (up to 1/16 of a
// block's largest weight).

// xq (i8) and, per block, 8 · Σ xq (i32) and dx (f32) into `xs`: [K i8 | K/32 i32 | K/32 f32]; false as prepareQ16
export function prepareQ8(a: usize, xs: usize, K: i32): bool {
  const sums = xs + <usize>K, dxs = sums + (<usize>K >> 3);
  for (let b = 0; b < K; b += 32) {
    const x = a + (<usize>b << 2);
    const amax = blockAbsMax(x);
    if (amax < 0) return false;
    store<f32>(dxs + (<usize>(b >> 5) << 2), amax / 127);
    const inv = f32x4.splat(amax > 0 ? 127 / amax : 0);
    let sum = i32x4.splat(0);
    for (let i: usize = 0; i < 128; i += 64) {
      const q0 = i16x8.narrow_i32x4_s(roundQ(x + i, inv), roundQ(x + i + 16, inv));
      const q1 = i16x8.narrow_i32x4_s(roundQ(x + i + 32, inv), roundQ(x + i + 48, inv));
      sum = i32x4.add(sum, i32x4.add(i32x4.extadd_pairwise_i16x8_s(q0), i32x4.extadd_pairwise_i16x8_s(q1)));
      v128.store(xs + <usize>b + (i >> 2), i8x16.narrow_i16x8_s(q0, q1)); // |xq| ≤ 127: nothing saturates
    }
    const total = i32x4.extract_lane(sum, 0) + i32x4.extract_lane(sum, 1) + i32x4.extract_lane(sum, 2) + i32x4.extract_lane(sum, 3);
    store<i32>(sums + (<usize>(b >> 5) << 2), 8 * total);
  }
  return true;
}

// Σ q · xq over one block of 32 int4 weights at w, as i16 lanes (pairs of products; their sum is the block's dot product,
// before the −8): the nibbles q ∈ [0, 15] as the 7-bit operand. A lane holds at most 4 · 15 · 127 = 7,620.
@inline
function blockI4x8(w: usize, x0: v128, x1: v128): v128 {
  const h = v128.load(w);
  const lo = i16x8.relaxed_dot_i8x16_i7x16_s(x0, v128.and(h, cst(C_NIBBLE))); // weights 0–15 of the block
  return i16x8.add(lo, i16x8.relaxed_dot_i8x16_i7x16_s(x1, highNibbles(h))); // + weights 16–31
}

// the dot products of four consecutive blocks, one per i32 lane: [Σ p0, Σ p1, Σ p2, Σ p3] from their i16 lanes
// (halves added in i16 first: at most 2 · 7,620, then pairs widened to i32 and the last pairs added)
@inline
function reduce4(p0: v128, p1: v128, p2: v128, p3: v128): v128 {
  const t = i16x8.add(v128.shuffle<i64>(p0, p1, 0, 2), v128.shuffle<i64>(p0, p1, 1, 3)); // [p0 · 4 lanes | p1 · 4 lanes]
  const u = i16x8.add(v128.shuffle<i64>(p2, p3, 0, 2), v128.shuffle<i64>(p2, p3, 1, 3));
  const et = i32x4.extadd_pairwise_i16x8_s(t), eu = i32x4.extadd_pairwise_i16x8_s(u); // [p0 p0 p1 p1], [p2 p2 p3 p3]
  return i32x4.add(v128.shuffle<i32>(et, eu, 0, 2, 4, 6), v128.shuffle<i32>(et, eu, 1, 3, 5, 7));
}

// c_j, c_{j+gap}, … from int4 rows as gemvQ4, x prepared by prepareQ8 (relaxed SIMD builds only). Four blocks at a time:
// their dot products reduced into one vector, one lane per block, so that the −8 · Σ xq, the block scales s_jb · dx_b
// (four consecutive floats of each) and the multiply-add are one vector operation per four blocks, not one per block
export function gemvQ4x8(xs: usize, b0: usize, c: usize, K: i32, j: i32, scales: usize, gap: i32): void {
  const stride = <usize>gap * <usize>(K >> 1), sums = xs + <usize>K, dxs = sums + (<usize>K >> 3), blocks = <usize>(K >> 5);
  const b1 = b0 + stride, b2 = b1 + stride, b3 = b2 + stride;
  const scStride = (<usize>gap * blocks) << 2;
  const sc0 = scales + ((<usize>j * blocks) << 2), sc1 = sc0 + scStride, sc2 = sc1 + scStride, sc3 = sc2 + scStride;
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  let k = 0;
  for (; k + 128 <= K; k += 128) {
    const x = xs + <usize>k, o = <usize>(k >> 1), bb = <usize>(k >> 5) << 2;
    const xa = v128.load(x), xb = v128.load(x, 16), xc = v128.load(x, 32), xd = v128.load(x, 48);
    const xe = v128.load(x, 64), xf = v128.load(x, 80), xg = v128.load(x, 96), xh = v128.load(x, 112);
    const sum8 = v128.load(sums + bb), dx = v128.load(dxs + bb);
    s0 = madd(f32x4.convert_i32x4_s(i32x4.sub(reduce4(blockI4x8(b0 + o, xa, xb), blockI4x8(b0 + o + 16, xc, xd),
      blockI4x8(b0 + o + 32, xe, xf), blockI4x8(b0 + o + 48, xg, xh)), sum8)), f32x4.mul(v128.load(sc0 + bb), dx), s0);
    s1 = madd(f32x4.convert_i32x4_s(i32x4.sub(reduce4(blockI4x8(b1 + o, xa, xb), blockI4x8(b1 + o + 16, xc, xd),
      blockI4x8(b1 + o + 32, xe, xf), blockI4x8(b1 + o + 48, xg, xh)), sum8)), f32x4.mul(v128.load(sc1 + bb), dx), s1);
    s2 = madd(f32x4.convert_i32x4_s(i32x4.sub(reduce4(blockI4x8(b2 + o, xa, xb), blockI4x8(b2 + o + 16, xc, xd),
      blockI4x8(b2 + o + 32, xe, xf), blockI4x8(b2 + o + 48, xg, xh)), sum8)), f32x4.mul(v128.load(sc2 + bb), dx), s2);
    s3 = madd(f32x4.convert_i32x4_s(i32x4.sub(reduce4(blockI4x8(b3 + o, xa, xb), blockI4x8(b3 + o + 16, xc, xd),
      blockI4x8(b3 + o + 32, xe, xf), blockI4x8(b3 + o + 48, xg, xh)), sum8)), f32x4.mul(v128.load(sc3 + bb), dx), s3);
  }
  for (; k < K; k += 32) { // the last 1–3 blocks one at a time (the block's −8 · Σ xq in lane 0)
    const x0 = v128.load(xs + <usize>k), x1 = v128.load(xs + <usize>k, 16);
    const bb = <usize>(k >> 5) << 2, o = <usize>(k >> 1);
    const sum8 = v128.load32_zero(sums + bb), dx = load<f32>(dxs + bb);
    s0 = madd(blockTail(b0 + o, x0, x1, sum8), f32x4.splat(dx * load<f32>(sc0 + bb)), s0);
    s1 = madd(blockTail(b1 + o, x0, x1, sum8), f32x4.splat(dx * load<f32>(sc1 + bb)), s1);
    s2 = madd(blockTail(b2 + o, x0, x1, sum8), f32x4.splat(dx * load<f32>(sc2 + bb)), s2);
    s3 = madd(blockTail(b3 + o, x0, x1, sum8), f32x4.splat(dx * load<f32>(sc3 + bb)), s3);
  }
  store4(c + (<usize>j << 2), <usize>gap << 2, s0, s1, s2, s3);
}

// one block's Σ q · xq − 8 Σ xq as f32 lanes (their sum is the block's dot product)
@inline
function blockTail(w: usize, x0: v128, x1: v128, sum8: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.sub(i32x4.extadd_pairwise_i16x8_s(blockI4x8(w, x0, x1)), sum8));
}

// four int4 rows (j + r·gap) widened to the packed f32 panel (panelAt): (q − 8) · s_jb (prefill, M > 1)
export function widenPanelQ4(b0: usize, panel: usize, K: i32, j: i32, scales: usize, gap: i32): void {
  const rowB = <usize>(K >> 1), blocks = <usize>(K >> 5);
  for (let r = 0; r < 4; r++) { // rows j + r·gap
    const src = b0 + <usize>(r * gap) * rowB, sc = scales + ((<usize>(j + r * gap) * blocks) << 2);
    for (let k = 0; k < K; k += 32) {
      const h = v128.load(src + <usize>(k >> 1));
      const s = v128.load32_splat(sc + (<usize>(k >> 5) << 2));
      const lo = i8x16.sub(v128.and(h, cst(C_NIBBLE)), cst(C_EIGHT)), hi = i8x16.sub(highNibbles(h), cst(C_EIGHT));
      const o = panelAt(panel, r, k);
      storeScaled16(o, lo, s); // weights 0–15 of the block
      storeScaled16(o + 256, hi, s); // weights 16–31
    }
  }
}

// 16 signed bytes widened to f32 and multiplied by s: four steps of a packed panel's row, 64 bytes apart from o
@inline
function storeScaled16(o: usize, b: v128, s: v128): void {
  const l = i16x8.extend_low_i8x16_s(b), h = i16x8.extend_high_i8x16_s(b);
  v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(l)), s));
  v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(l)), s), 64);
  v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(h)), s), 128);
  v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(h)), s), 192);
}
