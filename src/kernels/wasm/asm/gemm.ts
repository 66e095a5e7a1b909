// The GEMM jobs of asm/kernels.ts: the matrix products of linear layers with f32, f16, bf16, int8 or int4 weights.
import { gemvQ4, gemvQ4x8, gemvQ8, prepareQ8, prepareQ16, widenPanelQ4 } from './gemv-q';
import {
  GEMM_F32, GEMM_F16, GEMM_BF16, GEMM_I8, GEMM_I4, C_F16_MASK, C_F16_FULL, C_F16_BIG, C_ONE, C_NEG_LOG2E, C_GELU_A, C_GELU_2C, C_126,
  claim, cst, exp2v, madd, panelAt, ptr, word, store4, store4Scaled,
} from './common';

// GEMM_* (GEMM_JOB in jobs.ts): [kind, a, b, c, M, K, N, scales, scratch, scratchStride, glu, b2, scales2, c2, f16Scale,
//   f16Scale2, outer]
//   c_ij = Σ_k a_ik b_jk (× scale_j for int8; int4 b_jk = (q_jk − 8) · s_j,k/32, gemv-q.ts)
// glu ≠ 0 (the gated feed-forward of GLU variants, Shazeer 2020): c = act(a·bᵀ) ⊙ (a·b2ᵀ), with b the gate and b2 the
// up weight (same format and shape), c2 an [M, N] buffer for the up product, act SiLU (glu = 1) or GELU-tanh (glu = 2).
// Weights are row-major [N, K] in every format (as the checkpoint stores them, so a tensor can be read from disk straight
// into this memory). f16 bits widen times f16Scale = 2^(112 − shift): 2^112 for a checkpoint's own bits, 2^102 for an
// F16Matrix's (tensor/f16-matrix.ts: w · 2^10, so that no weight is a subnormal, which x86 multiplies slowly); b2's
// times f16Scale2 (x prepared again for it when the two differ).
// Columns of C (rows of B) are split into T contiguous ranges, multiples of 4 (outer = 0). B rows are widened to f32 four at a
// time: straight into registers when M = 1 (decode: the whole cost is reading B once), else into this thread's
// scratch panel, packed [K/4][4][4] (panelAt), which the 2×4 register tile then reuses for every row of A (f32 rows
// are copied into it from M = 16; below, the tile reads them in place). A tile's four rows are a quarter
// of the thread's range apart — rows j, j + Q, j + 2Q, j + 3Q for j = 0 … Q − 1 — so that B is read as four
// sequential streams, which the hardware prefetchers keep ahead of; four adjacent rows are one stream read at four
// places a row apart, and came from memory at half the speed (decode: 3.7–3.9 against 7.2–8.2 GB/s, f16, one thread).
// outer = 1 (the host sets it for M ≥ 32: prefill, a batch of sequences) takes most columns another way, the outer
// product of the Goto/BLIS micro-kernels: A is packed in threes of rows [⌈M/3⌉][K][3] once per job (packA), each 12
// adjacent rows of B widened straight into a [K][12] panel (widenColumns), and a 3 × 12 register tile sums
// c_{i..i+2, j..j+11} += a_ik · b_{j..j+11, k} with one splat of a_ik and three vectors of b a step: 9 accumulators, 6
// loads for 9 fused multiply-adds, no horizontal sums (the 2×4 tile: 8 accumulators, 6 loads for 8, a sum of 4 lanes
// per result). Alone in L1 it made 22.3 GMAC/s against 20.6 (the 2×4 tile over a packed panel; outer products 4×8, 5×8,
// 6×8 and an unrolled 3×12: 19.7, 14.9, 17.7, 13.3 — V8's register allocation spills past ~13 live vectors).
// A gated product needs no barrier: each thread forms the gate and up columns of its own range (outer: of each panel it
// claims, outerGemm), then h on them.
export function gemm(job: usize, kind: i32, t: i32, T: i32): void {
  const a = ptr(job, 1), b = ptr(job, 2), c = ptr(job, 3), scales = ptr(job, 7);
  const M = word(job, 4), K = word(job, 5), N = word(job, 6);
  const scratch = ptr(job, 8), scratchStride = <usize>word(job, 9);
  const panel = scratch + <usize>t * scratchStride;
  const outer = word(job, 16);
  if (outer != 0) { outerGemm(job, kind, panel, T); return; }
  const per = ((N + 3) / 4 + T - 1) / T * 4; // threads take columns in whole groups of four
  const n0 = t * per, n1 = min(N, n0 + per);
  // decode with f16 weights, or integer dot products with int8/int4 weights (gemv-q.ts): x prepared once per thread in
  // its panel scratch (else the widening path below)
  const wide = n1 - n0 >= 4 && M == 1;
  // (int4 with relaxed SIMD: x in 8 bits, for its 8-bit dot product)
  const f16Scale = reinterpret<f32>(word(job, 14));
  const f16Scales = f32x4.splat(f16Scale);
  const prepared = wide && ((kind == GEMM_F16 && prepareF16(a, panel, K, f16Scales)) ||
    (kind == GEMM_I4 && (ASC_FEATURE_RELAXED_SIMD ? prepareQ8(a, panel, K) : prepareQ16(a, panel, K))) ||
    (kind == GEMM_I8 && K % 32 == 0 && prepareQ16(a, panel, K)));
  product(a, b, c, scales, M, K, N, n0, n1, kind, panel, prepared, f16Scales, false);
  const glu = word(job, 10);
  if (glu == 0) return;
  const b2 = ptr(job, 11), scales2 = ptr(job, 12), c2 = ptr(job, 13), f16Scale2 = reinterpret<f32>(word(job, 15));
  const f16Scales2 = f32x4.splat(f16Scale2);
  // x scaled for b2's f16 bits (the same answer from prepareF16: it depends on x alone)
  if (prepared && kind == GEMM_F16 && f16Scale2 != f16Scale) prepareF16(a, panel, K, f16Scales2);
  product(a, b2, c2, scales2, M, K, N, n0, n1, kind, panel, prepared, f16Scales2, false);
  gate(c, c2, M, N, n0, n1, glu);
}

// outer = 1 (M ≥ 32): the columns as units of one panel of 12 (the last unit the 1–11 columns left over, if any), which
// the threads claim in turn (claim(), common.ts): a thread whose core runs slower takes fewer, where fixed halves had the
// caller wait for it (a batch of 64 sequences on 2 threads: the worker ~8% slower at the median, the caller waiting
// ~14% of its time). Each unit is computed as with fixed ranges: the same answer whichever thread takes it. Gated: the
// unit's gate and up columns, then h on them.
function outerGemm(job: usize, kind: i32, panel: usize, T: i32): void {
  const a = ptr(job, 1), b = ptr(job, 2), c = ptr(job, 3), scales = ptr(job, 7);
  const M = word(job, 4), K = word(job, 5), N = word(job, 6), glu = word(job, 10);
  const b2 = ptr(job, 11), scales2 = ptr(job, 12), c2 = ptr(job, 13);
  const f16Scales = f32x4.splat(reinterpret<f32>(word(job, 14))), f16Scales2 = f32x4.splat(reinterpret<f32>(word(job, 15)));
  if (N >= 12) packA(a, packedA(panel, K), M, K); // every thread: any of them may claim a panel
  const units = (N + 11) / 12;
  for (let u = claim(-1, T); u < units; u = claim(u, T)) {
    const n0 = u * 12, n1 = min(N, n0 + 12);
    product(a, b, c, scales, M, K, N, n0, n1, kind, panel, false, f16Scales, true);
    if (glu == 0) continue;
    product(a, b2, c2, scales2, M, K, N, n0, n1, kind, panel, false, f16Scales2, true);
    gate(c, c2, M, N, n0, n1, glu);
  }
}

// bytes of one row of B (one weight row) in each format
@inline function rowBytes(kind: i32, K: i32): usize {
  return kind == GEMM_I4 ? <usize>(K >> 1) : <usize>K * (kind == GEMM_F32 ? 4 : kind == GEMM_I8 ? 1 : 2);
}

// columns n0..n1 − 1: whole panels of 12 by the outer-product tile when `outer`, the rest by `columns`
function product(a: usize, b: usize, c: usize, scales: usize, M: i32, K: i32, N: i32, n0: i32, n1: i32, kind: i32, panel: usize,
  prepared: bool, f16Scale: v128, outer: bool): void {
  const done = outer ? panels12(b, c, scales, M, K, N, n0, n1, kind, panel, f16Scale) : n0;
  if (done < n1) columns(a, b, c, scales, M, K, N, done, n1, kind, panel, prepared, f16Scale);
}

// the thread's scratch when `outer`: the 4-row panel (16·K bytes), the [K][12] panel (48·K), then packed A
@inline function panel12(panel: usize, K: i32): usize { return panel + (<usize>K << 4); }
@inline function packedA(panel: usize, K: i32): usize { return panel + (<usize>K << 6); }

// A [M, K] in threes of rows, [⌈M/3⌉][K][3] (rows past M are 0): three rows' k … k + 3 become three vectors
function packA(a: usize, out: usize, M: i32, K: i32): void {
  const rowA = <usize>K << 2;
  for (let i = 0; i < M; i += 3) {
    const x0 = a + <usize>i * rowA, x1 = x0 + rowA, x2 = x1 + rowA;
    const o = out + <usize>i * rowA; // block i/3 holds 3·K floats
    for (let k = 0; k < K; k += 4) {
      const off = <usize>k << 2;
      const r0 = v128.load(x0 + off);
      const r1 = i + 1 < M ? v128.load(x1 + off) : f32x4.splat(0), r2 = i + 2 < M ? v128.load(x2 + off) : f32x4.splat(0);
      const t = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7); // r0 r1 interleaved
      const d = o + <usize>k * 12;
      v128.store(d, v128.shuffle<f32>(t, r2, 0, 1, 4, 2)); // a0k a1k a2k a0k+1
      v128.store(d, v128.shuffle<f32>(v128.shuffle<f32>(t, r2, 3, 5, 3, 5), t2, 0, 1, 4, 5), 16); // a1k+1 a2k+1 a0k+2 a1k+2
      v128.store(d, v128.shuffle<f32>(r2, t2, 2, 6, 7, 3), 32); // a2k+2 a0k+3 a1k+3 a2k+3
    }
  }
}

// columns n0 … in panels of 12 rows of B (widened four at a time, transposed into [K][12]) against every three rows of
// packed A; returns the first column left over (fewer than 12)
function panels12(b: usize, c: usize, scales: usize, M: i32, K: i32, N: i32, n0: i32, n1: i32, kind: i32, panel: usize,
  f16Scale: v128): i32 {
  const rowB = rowBytes(kind, K);
  const p12 = panel12(panel, K), x = packedA(panel, K);
  let j = n0;
  for (; j + 12 <= n1; j += 12) {
    for (let g = 0; g < 3; g++) {
      const bg = b + <usize>(j + 4 * g) * rowB;
      if (kind != GEMM_I4) { widenColumns(bg, p12 + (<usize>g << 4), K, kind, rowB, f16Scale); continue; }
      widenPanelQ4(bg, panel, K, j + 4 * g, scales, 1);
      transposePanel(panel, p12 + (<usize>g << 4), K);
    }
    const sc = kind == GEMM_I8 ? scales + (<usize>j << 2) : 0;
    for (let i = 0; i < M; i += 3) outerTile(x + <usize>i * (<usize>K << 2), p12, c, M, K, N, i, j, sc);
  }
  return j;
}

// a packed panel's four rows (panelAt) as four columns of a [K][12] panel from `dst` (int4: widened into the packed panel
// first, widenPanelQ4)
function transposePanel(panel: usize, dst: usize, K: i32): void {
  for (let k = 0; k < K; k += 4) {
    const src = panelAt(panel, 0, k);
    storeTransposed(dst + <usize>k * 48, v128.load(src), v128.load(src, 16), v128.load(src, 32), v128.load(src, 48));
  }
}

// four rows of B from b0 (rowB bytes apart), widened to f32 straight into four columns of the [K][12] panel at dst — what
// widenPanel then transposePanel do, without writing and reading the packed panel between (f32, f16, bf16, int8)
function widenColumns(b0: usize, dst: usize, K: i32, kind: i32, rowB: usize, f16Scale: v128): void {
  const b1 = b0 + rowB, b2 = b1 + rowB, b3 = b2 + rowB;
  if (kind == GEMM_F32) {
    for (let k = 0; k < K; k += 4) {
      const o = <usize>k << 2;
      storeTransposed(dst + <usize>k * 48, v128.load(b0 + o), v128.load(b1 + o), v128.load(b2 + o), v128.load(b3 + o));
    }
  } else if (kind == GEMM_I8) {
    for (let k = 0; k < K; k += 16) {
      const h0 = v128.load(b0 + <usize>k), h1 = v128.load(b1 + <usize>k), h2 = v128.load(b2 + <usize>k), h3 = v128.load(b3 + <usize>k);
      const d = dst + <usize>k * 48; // elements k + 4q … k + 4q + 3 of the four rows at d + 192·q
      storeTransposed(d, quarterI8(h0, 0), quarterI8(h1, 0), quarterI8(h2, 0), quarterI8(h3, 0));
      storeTransposed(d + 192, quarterI8(h0, 1), quarterI8(h1, 1), quarterI8(h2, 1), quarterI8(h3, 1));
      storeTransposed(d + 384, quarterI8(h0, 2), quarterI8(h1, 2), quarterI8(h2, 2), quarterI8(h3, 2));
      storeTransposed(d + 576, quarterI8(h0, 3), quarterI8(h1, 3), quarterI8(h2, 3), quarterI8(h3, 3));
    }
  } else {
    for (let k = 0; k < K; k += 8) {
      const o = <usize>k << 1;
      const h0 = v128.load(b0 + o), h1 = v128.load(b1 + o), h2 = v128.load(b2 + o), h3 = v128.load(b3 + o);
      const d = dst + <usize>k * 48;
      if (kind == GEMM_BF16) {
        storeTransposed(d, lo16(h0), lo16(h1), lo16(h2), lo16(h3));
        storeTransposed(d + 192, hi16(h0), hi16(h1), hi16(h2), hi16(h3));
      } else {
        storeTransposed(d, widenF16(lo16(h0), f16Scale), widenF16(lo16(h1), f16Scale),
          widenF16(lo16(h2), f16Scale), widenF16(lo16(h3), f16Scale));
        storeTransposed(d + 192, widenF16(hi16(h0), f16Scale), widenF16(hi16(h1), f16Scale),
          widenF16(hi16(h2), f16Scale), widenF16(hi16(h3), f16Scale));
      }
    }
  }
}

// x0 … x3 (elements k … k + 3 of four rows) as four vectors 48 bytes apart from d: element k of the four rows, then k + 1 …
@inline
function storeTransposed(d: usize, x0: v128, x1: v128, x2: v128, x3: v128): void {
  const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
  const t2 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7), t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
  v128.store(d, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
  v128.store(d, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 48);
  v128.store(d, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 96);
  v128.store(d, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 144);
}

// int8 elements 4q … 4q + 3 of h as f32
@inline
function quarterI8(h: v128, q: i32): v128 {
  const half = q < 2 ? i16x8.extend_low_i8x16_s(h) : i16x8.extend_high_i8x16_s(h);
  return f32x4.convert_i32x4_s((q & 1) == 0 ? i32x4.extend_low_i16x8_s(half) : i32x4.extend_high_i16x8_s(half));
}

// C[i … i + 2, j … j + 11] = Σ_k a_{i+r,k} · b_{j..j+11,k}: x the three rows packed [K][3], w the [K][12] panel; rows past
// M are computed (from zeros) but not stored; int8: × the columns' scales (sc, else 0). The sum runs over blocks of KC
// values of k, each from zero, added to C in turn: one sum over all of K rounds each result about twice as far from
// the exact one as the 2×4 tile's four lanes do (qkv-tiny's logits: 1.1e-5 against 5.3e-6 at most), blocks of 64 less.
const KC: i32 = 64;
@inline
function outerTile(x: usize, w: usize, c: usize, M: i32, K: i32, N: i32, i: i32, j: i32, sc: usize): void {
  const rowC = <usize>N << 2;
  const o0 = c + ((<usize>i * <usize>N + <usize>j) << 2), o1 = o0 + rowC, o2 = o1 + rowC;
  const more1 = i + 1 < M, more2 = i + 2 < M;
  for (let k0 = 0; k0 < K; k0 += KC) {
    let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s02 = f32x4.splat(0), s10 = f32x4.splat(0), s11 = f32x4.splat(0);
    let s12 = f32x4.splat(0), s20 = f32x4.splat(0), s21 = f32x4.splat(0), s22 = f32x4.splat(0);
    const end = x + <usize>min(K, k0 + KC) * 12;
    for (let p = x + <usize>k0 * 12, q = w + <usize>k0 * 48; p < end; p += 12, q += 48) {
      const b0 = v128.load(q), b1 = v128.load(q, 16), b2 = v128.load(q, 32);
      let v = v128.load32_splat(p); s00 = madd(v, b0, s00); s01 = madd(v, b1, s01); s02 = madd(v, b2, s02);
      v = v128.load32_splat(p, 4); s10 = madd(v, b0, s10); s11 = madd(v, b1, s11); s12 = madd(v, b2, s12);
      v = v128.load32_splat(p, 8); s20 = madd(v, b0, s20); s21 = madd(v, b1, s21); s22 = madd(v, b2, s22);
    }
    if (k0 > 0) { // the blocks before, from C
      s00 = f32x4.add(v128.load(o0), s00); s01 = f32x4.add(v128.load(o0, 16), s01); s02 = f32x4.add(v128.load(o0, 32), s02);
      if (more1) { s10 = f32x4.add(v128.load(o1), s10); s11 = f32x4.add(v128.load(o1, 16), s11); s12 = f32x4.add(v128.load(o1, 32), s12); }
      if (more2) { s20 = f32x4.add(v128.load(o2), s20); s21 = f32x4.add(v128.load(o2, 16), s21); s22 = f32x4.add(v128.load(o2, 32), s22); }
    }
    if (sc && k0 + KC >= K) { // int8: the finished sums times the columns' scales
      const c0 = v128.load(sc), c1 = v128.load(sc, 16), c2 = v128.load(sc, 32);
      s00 = f32x4.mul(s00, c0); s01 = f32x4.mul(s01, c1); s02 = f32x4.mul(s02, c2);
      s10 = f32x4.mul(s10, c0); s11 = f32x4.mul(s11, c1); s12 = f32x4.mul(s12, c2);
      s20 = f32x4.mul(s20, c0); s21 = f32x4.mul(s21, c1); s22 = f32x4.mul(s22, c2);
    }
    v128.store(o0, s00); v128.store(o0, s01, 16); v128.store(o0, s02, 32);
    if (more1) { v128.store(o1, s10); v128.store(o1, s11, 16); v128.store(o1, s12, 32); }
    if (more2) { v128.store(o2, s20); v128.store(o2, s21, 16); v128.store(o2, s22, 32); }
  }
}

// columns n0..n1 − 1 of C = A · Bᵀ (int4: N a multiple of 4, which the host checks: the column tail has no int4 case)
function columns(a: usize, b: usize, c: usize, scales: usize, M: i32, K: i32, N: i32, n0: i32, n1: i32, kind: i32, panel: usize, prepared: bool,
  f16Scale: v128): void {
  const rowB = rowBytes(kind, K);
  // a tile's four rows are `gap` apart (there are `gap` tiles): rows j, j + gap, j + 2·gap, j + 3·gap, j = n0 … n0 + gap − 1
  const gap = (n1 - n0) >> 2, stride = <usize>gap * rowB;
  for (let j = n0; j < n0 + gap; j++) {
    const b0 = b + <usize>j * rowB;
    if (kind == GEMM_F32 && M < 16) { // few rows of A: B read in place (packing costs about what it saves up to M 8)
      gemmTile(a, b0, c, M, K, N, j, gap, stride, 16);
    } else if (prepared) {
      if (kind == GEMM_F16) gemvF16(panel, b0, stride, c, K, j, gap);
      else if (kind == GEMM_I8) gemvQ8(panel, b0, c, K, j, scales, gap);
      else if (ASC_FEATURE_RELAXED_SIMD) gemvQ4x8(panel, b0, c, K, j, scales, gap);
      else gemvQ4(panel, b0, c, K, j, scales, gap);
    } else if (M == 1 && kind == GEMM_BF16) {
      gemvBF16(a, b0, stride, c, K, j, gap);
    } else if (M == 1 && kind == GEMM_I8) {
      gemvI8(a, b0, stride, c, K, j, scales, gap);
    } else { // M > 1, or decode whose x the fast paths cannot take (f16: |x| ≥ 2^15; int: ±∞, NaN): widened into the panel
      if (kind == GEMM_I4) widenPanelQ4(b0, panel, K, j, scales, gap);
      else widenPanel(b0, panel, K, kind, stride, f16Scale);
      gemmTile(a, panel, c, M, K, N, j, gap, 16, 64);
      if (kind == GEMM_I8) scaleColumns(c, M, N, j, gap, scales);
    }
  }
  // the last 1–3 columns, one at a time
  for (let j = n0 + 4 * gap; j < n1; j++) {
    const bj = b + <usize>j * rowB;
    for (let i = 0; i < M; i++) {
      const ai = a + (<usize>i * <usize>K << 2);
      let s: f32 = 0;
      for (let k = 0; k < K; k++) s += load<f32>(ai + (<usize>k << 2)) * element(bj, k, kind, f16Scale);
      store<f32>(c + ((<usize>i * <usize>N + <usize>j) << 2), kind == GEMM_I8 ? s * load<f32>(scales + (<usize>j << 2)) : s);
    }
  }
}

// h = act(g) ⊙ u on columns n0..n1 − 1 of every row, in place of g. Both activations are x·σ(y) = x / (1 + 2^(−y·log2 e)):
//   SiLU:       y = x                                       (glu = 1)
//   GELU-tanh:  y = 2·√(2/π)·(x + 0.044715·x³)              (glu = 2; ½(1 + tanh z) = σ(2z))
function gate(g: usize, u: usize, M: i32, N: i32, n0: i32, n1: i32, glu: i32): void {
  for (let i = 0; i < M; i++) {
    const row = <usize>i * <usize>N;
    let j = n0;
    for (; j + 4 <= n1; j += 4) {
      const at = (row + <usize>j) << 2;
      v128.store(g + at, f32x4.mul(gated(v128.load(g + at), glu), v128.load(u + at)));
    }
    for (; j < n1; j++) { // the last 1–3 columns, through lane 0
      const at = (row + <usize>j) << 2;
      store<f32>(g + at, f32x4.extract_lane(gated(f32x4.splat(load<f32>(g + at)), glu), 0) * load<f32>(u + at));
    }
  }
}

@inline
function gated(x: v128, glu: i32): v128 {
  let y = x;
  if (glu == 2) y = f32x4.mul(madd(cst(C_GELU_A), f32x4.mul(x, f32x4.mul(x, x)), x), cst(C_GELU_2C));
  const e = f32x4.mul(y, cst(C_NEG_LOG2E));
  // past 2^126 the denominator would be clamped (exp2v's range), not infinite: those lanes are 0 (|x σ(y)| < |x| e^−87)
  return v128.andnot(f32x4.div(x, f32x4.add(cst(C_ONE), exp2v(e))), f32x4.gt(e, cst(C_126)));
}

// one element of a B row in any of the four formats, widened (only the column tail uses it)
@inline
function element(row: usize, k: i32, kind: i32, f16Scale: v128): f32 {
  if (kind == GEMM_F32) return load<f32>(row + (<usize>k << 2));
  if (kind == GEMM_I8) return <f32>load<i8>(row + <usize>k);
  const h = <u32>load<u16>(row + (<usize>k << 1));
  if (kind == GEMM_BF16) return reinterpret<f32>(h << 16);
  return f32x4.extract_lane(widenF16(i32x4.splat(h << 16), f16Scale), 0);
}

// f16 bits in the top half of each i32 lane → f32: shift the exponent and mantissa into place (the arithmetic shift
// copies the sign into bits 30–28, which the mask clears), then f16Scale = 2^(112 − shift) rebiases the exponent
// (15 → 127) and undoes an F16Matrix's 2^shift; subnormals come out right because the multiply normalises them (slowly:
// the reason for F16Matrix). Infinities and NaNs are not expected (the host checks).
@inline
function widenF16(hi: v128, f16Scale: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shr_s(hi, 3), cst(C_F16_FULL)), f16Scale);
}
// the low / high four 16-bit values of h, each in the top half of an i32 lane
@inline function lo16(h: v128): v128 { return i16x8.shuffle(i16x8.splat(0), h, 0, 8, 1, 9, 2, 10, 3, 11); }
@inline function hi16(h: v128): v128 { return i16x8.shuffle(i16x8.splat(0), h, 4, 12, 5, 13, 6, 14, 7, 15); }

// C[i, j + r·gap] (r = 0…3) for all i: 2 rows of A × 4 rows of B per register tile (8 accumulators), K a multiple of 4.
// B row r's elements k … k + 3 sit at b + r·rStep + (k/4)·kStep: rows in place (rStep their bytes, kStep 16) or a
// packed panel (panelAt: 16 and 64). The packed steps are constants, which V8 folds into its addressing; a run-time
// step costs it an instruction a load (x64 addresses the memory base plus one register): the tile alone, in L1, made
// 12.4 GMAC/s from rows in place against 14.2 from the panel (one thread; the fused multiply-add's ceiling 23).
@inline
function gemmTile(a: usize, b: usize, c: usize, M: i32, K: i32, N: i32, j: i32, gap: i32, rStep: usize, kStep: usize): void {
  const rowA = <usize>K << 2;
  let i = 0;
  for (; i + 2 <= M; i += 2) {
    const x = a + <usize>i * rowA, end = x + rowA;
    let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s02 = f32x4.splat(0), s03 = f32x4.splat(0);
    let s10 = f32x4.splat(0), s11 = f32x4.splat(0), s12 = f32x4.splat(0), s13 = f32x4.splat(0);
    for (let p = x, w = b; p < end; p += 16, w += kStep) {
      const xa = v128.load(p), ya = v128.load(p + rowA);
      let v = v128.load(w); s00 = madd(xa, v, s00); s10 = madd(ya, v, s10);
      v = v128.load(w + rStep); s01 = madd(xa, v, s01); s11 = madd(ya, v, s11);
      v = v128.load(w + 2 * rStep); s02 = madd(xa, v, s02); s12 = madd(ya, v, s12);
      v = v128.load(w + 3 * rStep); s03 = madd(xa, v, s03); s13 = madd(ya, v, s13);
    }
    store4(c + ((<usize>i * <usize>N + <usize>j) << 2), <usize>gap << 2, s00, s01, s02, s03);
    store4(c + ((<usize>(i + 1) * <usize>N + <usize>j) << 2), <usize>gap << 2, s10, s11, s12, s13);
  }
  if (i < M) {
    const x = a + <usize>i * rowA, end = x + rowA;
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
    for (let p = x, w = b; p < end; p += 16, w += kStep) {
      const xa = v128.load(p);
      s0 = madd(xa, v128.load(w), s0); s1 = madd(xa, v128.load(w + rStep), s1);
      s2 = madd(xa, v128.load(w + 2 * rStep), s2); s3 = madd(xa, v128.load(w + 3 * rStep), s3);
    }
    store4(c + ((<usize>i * <usize>N + <usize>j) << 2), <usize>gap << 2, s0, s1, s2, s3);
  }
}

// four rows of B widened (or, f32, copied) into the packed f32 panel (panelAt)
function widenPanel(b0: usize, panel: usize, K: i32, kind: i32, rowB: usize, f16Scale: v128): void {
  for (let r = 0; r < 4; r++) {
    const src = b0 + <usize>r * rowB;
    if (kind == GEMM_F32) {
      for (let k = 0; k < K; k += 4) v128.store(panelAt(panel, r, k), v128.load(src + (<usize>k << 2)));
    } else if (kind == GEMM_I8) {
      for (let k = 0; k < K; k += 16) {
        const h = v128.load(src + <usize>k);
        const o = panelAt(panel, r, k); // elements k … k + 15: four steps, 64 bytes apart
        v128.store(o, quarterI8(h, 0));
        v128.store(o, quarterI8(h, 1), 64);
        v128.store(o, quarterI8(h, 2), 128);
        v128.store(o, quarterI8(h, 3), 192);
      }
    } else {
      for (let k = 0; k < K; k += 8) {
        const h = v128.load(src + (<usize>k << 1));
        const o = panelAt(panel, r, k);
        if (kind == GEMM_BF16) { v128.store(o, lo16(h)); v128.store(o, hi16(h), 64); }
        else { v128.store(o, widenF16(lo16(h), f16Scale)); v128.store(o, widenF16(hi16(h), f16Scale), 64); }
      }
    }
  }
}

// columns j + r·gap (r = 0…3) of C times their int8 scales
function scaleColumns(c: usize, M: i32, N: i32, j: i32, gap: i32, scales: usize): void {
  for (let i = 0; i < M; i++) {
    for (let r = 0; r < 4; r++) {
      const col = j + r * gap;
      const at = c + ((<usize>i * <usize>N + <usize>col) << 2);
      store<f32>(at, load<f32>(at) * load<f32>(scales + (<usize>col << 2)));
    }
  }
}

// decode, f16 weights, with x prepared by prepareF16 (K a multiple of 8). Eight f16 of a row are one v128 of four
// i32 lanes, each (odd << 16 | even). Shifting right by 3 (arithmetic) and masking with 0x8fffe000 turns the odd
// halves into f32 bit patterns worth w·2^(shift − 112) (sign kept at bit 31, exponent and mantissa moved into place, the
// sign copies and the even half cleared); the even halves, moved up first, the same way. x was scaled by f16Scale =
// 2^(112 − shift), so every product x·w is the same correctly rounded f32 as with widened weights — with 5 integer ops
// per 8 weights. (A pattern worth below 2^−126 — an unscaled subnormal — is an f32 subnormal: see F16Matrix.)
// Rows b0 + r·stride, results to c_{j + r·gap}.
function gemvF16(xs: usize, b0: usize, stride: usize, c: usize, K: i32, j: i32, gap: i32): void {
  const mask = cst(C_F16_MASK);
  const b1 = b0 + stride, b2 = b1 + stride, b3 = b2 + stride;
  // two accumulators a row (even and odd elements): with fused multiply-add, no chain of two in one iteration
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  let t0 = f32x4.splat(0), t1 = f32x4.splat(0), t2 = f32x4.splat(0), t3 = f32x4.splat(0);
  for (let k = 0; k < K; k += 8) {
    const xe = v128.load(xs + (<usize>k << 2)), xo = v128.load(xs + (<usize>k << 2), 16);
    const o = <usize>k << 1; // 8 weights of each of the 4 rows
    const h0 = v128.load(b0 + o), h1 = v128.load(b1 + o), h2 = v128.load(b2 + o), h3 = v128.load(b3 + o);
    s0 = madd(xe, f16Even(h0, mask), s0); t0 = madd(xo, f16Odd(h0, mask), t0);
    s1 = madd(xe, f16Even(h1, mask), s1); t1 = madd(xo, f16Odd(h1, mask), t1);
    s2 = madd(xe, f16Even(h2, mask), s2); t2 = madd(xo, f16Odd(h2, mask), t2);
    s3 = madd(xe, f16Even(h3, mask), s3); t3 = madd(xo, f16Odd(h3, mask), t3);
  }
  store4(c + (<usize>j << 2), <usize>gap << 2, f32x4.add(s0, t0), f32x4.add(s1, t1), f32x4.add(s2, t2), f32x4.add(s3, t3));
}
// the even / odd f16 of each i32 lane of h as f32 bit patterns worth w · 2^(shift − 112)
@inline function f16Even(h: v128, mask: v128): v128 { return v128.and(i32x4.shr_s(i32x4.shl(h, 16), 3), mask); }
@inline function f16Odd(h: v128, mask: v128): v128 { return v128.and(i32x4.shr_s(h, 3), mask); }

// xs = x · f16Scale with each group of 8 split into its even and odd elements, [x0 x2 x4 x6 | x1 x3 x5 x7]; false (and
// nothing usable) when some |x| ≥ 2^15, where x · 2^112 could overflow
function prepareF16(a: usize, xs: usize, K: i32, scale: v128): bool {
  const big = cst(C_F16_BIG);
  for (let k = 0; k < K; k += 8) {
    const x0 = v128.load(a + (<usize>k << 2)), x1 = v128.load(a + (<usize>k << 2), 16);
    if (v128.any_true(v128.or(f32x4.ge(f32x4.abs(x0), big), f32x4.ge(f32x4.abs(x1), big)))) return false;
    if (v128.any_true(v128.or(f32x4.ne(x0, x0), f32x4.ne(x1, x1)))) return false; // NaN: the widening path says so
    v128.store(xs + (<usize>k << 2), f32x4.mul(v128.shuffle<f32>(x0, x1, 0, 2, 4, 6), scale));
    v128.store(xs + (<usize>k << 2), f32x4.mul(v128.shuffle<f32>(x0, x1, 1, 3, 5, 7), scale), 16);
  }
  return true;
}

// decode, bf16 weights: a bf16 is the top half of an f32, so widening is one shuffle (rows and results as gemvF16)
function gemvBF16(a: usize, b0: usize, stride: usize, c: usize, K: i32, j: i32, gap: i32): void {
  const b1 = b0 + stride, b2 = b1 + stride, b3 = b2 + stride;
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  let t0 = f32x4.splat(0), t1 = f32x4.splat(0), t2 = f32x4.splat(0), t3 = f32x4.splat(0); // as gemvF16
  for (let k = 0; k < K; k += 8) {
    const xa = v128.load(a + (<usize>k << 2)), xb = v128.load(a + (<usize>k << 2), 16);
    const o = <usize>k << 1;
    const h0 = v128.load(b0 + o), h1 = v128.load(b1 + o), h2 = v128.load(b2 + o), h3 = v128.load(b3 + o);
    s0 = madd(xa, lo16(h0), s0); t0 = madd(xb, hi16(h0), t0);
    s1 = madd(xa, lo16(h1), s1); t1 = madd(xb, hi16(h1), t1);
    s2 = madd(xa, lo16(h2), s2); t2 = madd(xb, hi16(h2), t2);
    s3 = madd(xa, lo16(h3), s3); t3 = madd(xb, hi16(h3), t3);
  }
  store4(c + (<usize>j << 2), <usize>gap << 2, f32x4.add(s0, t0), f32x4.add(s1, t1), f32x4.add(s2, t2), f32x4.add(s3, t3));
}

// decode, int8 weights with a scale per row (rows and results as gemvF16):
// c_j = scale_j · Σ_k a_k q_jk, 16 weights of each of 4 rows per step (K a multiple of 16)
function gemvI8(a: usize, b0: usize, stride: usize, c: usize, K: i32, j: i32, scales: usize, gap: i32): void {
  const b1 = b0 + stride, b2 = b1 + stride, b3 = b2 + stride;
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  for (let k = 0; k < K; k += 16) {
    const x = a + (<usize>k << 2);
    const x0 = v128.load(x), x1 = v128.load(x, 16), x2 = v128.load(x, 32), x3 = v128.load(x, 48);
    const o = <usize>k; // 16 weights of each of the 4 rows
    s0 = f32x4.add(s0, dotI8(v128.load(b0 + o), x0, x1, x2, x3));
    s1 = f32x4.add(s1, dotI8(v128.load(b1 + o), x0, x1, x2, x3));
    s2 = f32x4.add(s2, dotI8(v128.load(b2 + o), x0, x1, x2, x3));
    s3 = f32x4.add(s3, dotI8(v128.load(b3 + o), x0, x1, x2, x3));
  }
  store4Scaled(c, scales, <usize>j << 2, <usize>gap << 2, s0, s1, s2, s3);
}

// four lanes of Σ x·q over 16 int8 q widened to f32
@inline
function dotI8(h: v128, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const lo = i16x8.extend_low_i8x16_s(h), hi = i16x8.extend_high_i8x16_s(h);
  return f32x4.add(
    f32x4.add(f32x4.mul(x0, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo))), f32x4.mul(x1, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)))),
    f32x4.add(f32x4.mul(x2, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi))), f32x4.mul(x3, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)))));
}
