// The ATTENTION and PACK_K jobs of asm/kernels.ts: FlashAttention forward with an online softmax, in f32x4.
import { biasRow, claim, cst, C_NEG_INF, load4, madd, ptr, word, exp2neg, hsum, hmax, LOG2E, softcapRows } from './common';

export const BN: i32 = 64; // keys per tile of the attention kernel
export const BM: i32 = 4; // query rows per tile

// PACK_K: [kind, k, kp, BHkv, S, D, Sp] (PACK_K_JOB in jobs.ts) — kp[h][p][d][c] = k[h][8p + c][d] (0 past S); kv heads
// dealt to threads.
export function packK(job: usize, t: i32, T: i32): void {
  const k = ptr(job, 1), kp = ptr(job, 2);
  const BHkv = word(job, 3), S = word(job, 4), D = word(job, 5), Sp = word(job, 6);
  for (let h = t; h < BHkv; h += T) {
    const src = k + (<usize>h * <usize>S * <usize>D << 2);
    const dst = kp + (<usize>h * <usize>Sp * <usize>D << 2);
    for (let s = 0; s < Sp; s++) {
      const panel = dst + (<usize>(s >> 3) * <usize>D * 8 << 2) + (<usize>(s & 7) << 2);
      if (s < S) {
        const row = src + (<usize>s * <usize>D << 2);
        for (let d = 0; d < D; d++) store<f32>(panel + (<usize>d << 5), load<f32>(row + (<usize>d << 2)));
      } else {
        for (let d = 0; d < D; d++) store<f32>(panel + (<usize>d << 5), 0);
      }
    }
  }
}

// ATTENTION: [kind, q, kp, v, out, ml, scratch, scratchStride, BH, Hq, Hkv, L, S, D, Dv, scale, causal, shift, Sp, window,
//   softcap, keep, bias, biasB, biasH, biasI, alibi, posShift]
// (ATTENTION_JOB in jobs.ts: the host writes these words by name, and a test checks the indices read here)
// q/out [BH, L, ·], kp packed by PACK_K, v [BHkv, S, Dv], ml [2][BH, L] = each row's m and l, m in base 2 (the host
// forms lse = m · ln 2 + log l: the module keeps no lookup tables, so its memory is entirely the host's).
// causal: query i sees keys 0..i + shift; with window W ≥ 0 (a causal sliding window: Mistral, Gemma's local layers), keys
// i + shift − W … i + shift — tiles before a block's first key are never visited, so the work is the window's, not S's.
// softcap > 0 (Gemma 2): each score x ← softcap · tanh(x / softcap) before the masks (softcapV, common.ts).
// keep ≠ 0: a key padding mask, bytes [B][S] (0: batch b's key j is padding, for every head and query row).
// bias ≠ 0: an additive bias, f32 [·][·][·][S] with strides biasB, biasH, biasI in floats (0: broadcast); alibi ≠ 0: ALiBi
// slopes f32 [Hq], query i at position i + posShift (biasRow, common.ts). Both after soft-capping, before the masks.
// Units of work are (head, block of BLOCK_M = 32 query rows); the threads claim them in turn (claim(), common.ts), so
// causal units of every size and a thread slowed by its core's other work balance (dealt t, t + T, … in advance, the
// caller waited: on 2 threads claiming ran 1.03–1.13× faster). Inside a unit the KV loop is outermost: each tile of
// BN keys and values is loaded into cache once and used by all 8 micro-blocks of 4 rows (their m, l and acc wait in
// scratch between tiles).
// Per thread scratch: s [BM][BN] scores/probabilities, acc [BLOCK_M][Dv], m [BLOCK_M], l [BLOCK_M], mT [BM].
const BLOCK_M: i32 = 32;

export function attention(job: usize, t: i32, T: i32): void {
  const q = ptr(job, 1), kp = ptr(job, 2), v = ptr(job, 3), out = ptr(job, 4), ml = ptr(job, 5);
  const BH = word(job, 8), Hq = word(job, 9), Hkv = word(job, 10), L = word(job, 11), S = word(job, 12);
  const D = word(job, 13), Dv = word(job, 14), scale = reinterpret<f32>(word(job, 15));
  const causal = word(job, 16), shift = word(job, 17), Sp = word(job, 18), window = word(job, 19);
  const softcap = reinterpret<f32>(word(job, 20)), keep = ptr(job, 21);
  const bias = ptr(job, 22), biasB = <usize>word(job, 23), biasH = <usize>word(job, 24), biasI = <usize>word(job, 25);
  const alibi = ptr(job, 26), posShift = word(job, 27);
  const modded = softcap > 0 || bias != 0 || alibi != 0; // the tile's maxima from scoreTile no longer hold
  const scratch = ptr(job, 6), scratchStride = <usize>word(job, 7);
  const sT = scratch + <usize>t * scratchStride; // [BM][BN]
  const acc = sT + (<usize>(BM * BN) << 2); // [BLOCK_M][Dv]
  const mRow = acc + (<usize>(BLOCK_M * Dv) << 2); // [BLOCK_M]
  const lRow = mRow + (<usize>BLOCK_M << 2); // [BLOCK_M]
  const mT = lRow + (<usize>BLOCK_M << 2); // [BM]: the score tile's row maxima
  const qp = mT + (<usize>BM << 2); // [BLOCK_M / BM][D][BM]: the block's q rows packed (packQ)
  const G = Hq / Hkv;
  const blocks = (L + BLOCK_M - 1) / BLOCK_M;
  for (let u = claim(-1, T); u < BH * blocks; u = claim(u, T)) {
    const bh = u / blocks;
    const i0 = (u % blocks) * BLOCK_M;
    const rows = min(BLOCK_M, L - i0);
    const kvh = (bh / Hq) * Hkv + (bh % Hq) / G;
    const keepRow = keep ? keep + <usize>(bh / Hq) * <usize>S : 0; // this batch row's key bytes
    const kHead = kp + (<usize>kvh * <usize>Sp * <usize>D << 2);
    const vHead = v + (<usize>kvh * <usize>S * <usize>Dv << 2);
    const qHead = q + (<usize>bh * <usize>L * <usize>D << 2);
    // keys first(i)..last(i) are allowed to row i (first = 0 without a window)
    const blockLast = causal ? min(S - 1, i0 + rows - 1 + shift) : S - 1;
    const blockFirst = window >= 0 ? max(0, i0 + shift - window) : 0;
    for (let r = 0; r < BLOCK_M; r++) { store<f32>(mRow + (<usize>r << 2), -Infinity); store<f32>(lRow + (<usize>r << 2), 0); }
    for (let d = 0; d < BLOCK_M * Dv; d += 4) v128.store(acc + (<usize>d << 2), f32x4.splat(0));
    packQ(qHead, i0, rows, D, qp);
    // the KV loop: tiles before the block's first allowed key or past its last are never visited
    for (let j0 = blockFirst - blockFirst % BN; j0 <= blockLast; j0 += BN) {
      const n = min(BN, S - j0); // real keys in this tile
      const nPad = (n + 7) & ~7; // keys computed (panels of 8)
      const kTile = kHead + (<usize>j0 * <usize>D << 2);
      const vTile = vHead + (<usize>j0 * <usize>Dv << 2);
      for (let r0 = 0; r0 < rows; r0 += BM) {
        const lastMin = causal ? min(S - 1, i0 + r0 + shift) : S - 1; // the micro-block's first row's last key
        const lastMax = causal ? min(S - 1, i0 + min(r0 + BM, rows) - 1 + shift) : S - 1; // … and its last row's
        if (j0 > lastMax) continue; // past every row's last key (later micro-blocks reach further)
        const firstMin = window >= 0 ? i0 + r0 + shift - window : 0; // the first row's first key, and the last row's
        const firstMax = window >= 0 ? i0 + min(r0 + BM, rows) - 1 + shift - window : 0;
        if (j0 + n <= firstMin) continue; // before every row's first key (earlier micro-blocks reach further back)
        // on the diagonal tile only the keys up to the last row's last one, in panels of 8 (not the whole tile)
        const nMb = min(n, lastMax - j0 + 1);
        const nPadMb = min(nPad, (nMb + 7) & ~7);
        scoreTile(qp + (<usize>r0 * <usize>D << 2), kTile, D, nPadMb, scale, sT, mT);
        if (softcap > 0) softcapRows(sT, BM, nPadMb, softcap);
        if (bias != 0 || alibi != 0) {
          const b = <usize>(bh / Hq), h = bh % Hq, slope = alibi ? load<f32>(alibi + (<usize>h << 2)) : 0;
          for (let r = 0; r < BM; r++) {
            const i = i0 + min(r0 + r, rows - 1);
            const row = bias ? bias + ((b * biasB + <usize>h * biasH + <usize>i * biasI + <usize>j0) << 2) : 0;
            biasRow(sT + (<usize>(r * BN) << 2), row, min(nPadMb, S - j0), slope, i + posShift, j0, nPadMb);
          }
        }
        const padded = keepRow != 0 && maskPadding(sT, keepRow + <usize>j0, min(nPadMb, S - j0), BM);
        // mask what the tile holds past a row's last key (the diagonal tile, or S's padding) or before its first (the
        // window's edge)
        const masked = j0 + nPadMb - 1 > lastMin || j0 < firstMax;
        if (masked) maskEdges(sT, i0, r0, rows, j0, nPadMb, S, causal, shift, window);
        const a = acc + (<usize>(r0 * Dv) << 2);
        softmaxTile(sT, a, mRow + (<usize>r0 << 2), lRow + (<usize>r0 << 2), nPadMb, Dv, masked || padded || modded ? 0 : mT);
        pvTile<f32>(sT, vTile, a, nMb, Dv, f32x4.splat(0));
      }
    }
    // o = acc, normalised as it went (a row with no allowed key: l = 0, o = 0)
    for (let r = 0; r < rows; r++) {
      const row = <usize>bh * <usize>L + <usize>(i0 + r);
      const o = out + (row * <usize>Dv << 2);
      const a = acc + (<usize>(r * Dv) << 2);
      for (let d = 0; d < Dv; d += 4) v128.store(o + (<usize>d << 2), v128.load(a + (<usize>d << 2)));
      store<f32>(ml + (row << 2), load<f32>(mRow + (<usize>r << 2)));
      store<f32>(ml + ((<usize>BH * <usize>L + row) << 2), load<f32>(lRow + (<usize>r << 2)));
    }
  }
}

// −∞ in the micro-block's score rows (rows i0 + r0 … of the block; rows past the block's last repeat it) for the keys
// of the tile from j0 (nPad of them) past a row's last key — causal: i + shift; else the last of S — or before its first
// (window ≥ 0: i + shift − window)
@inline
function maskEdges(sT: usize, i0: i32, r0: i32, rows: i32, j0: i32, nPad: i32, S: i32, causal: i32, shift: i32, window: i32): void {
  for (let r = 0; r < BM; r++) {
    const i = i0 + min(r0 + r, rows - 1);
    const last = causal ? min(S - 1, i + shift) : S - 1, first = window >= 0 ? i + shift - window : 0;
    for (let c = 0; c < min(nPad, first - j0); c++) store<f32>(sT + (<usize>(r * BN + c) << 2), -Infinity);
    for (let c = max(0, last + 1 - j0); c < nPad; c++) store<f32>(sT + (<usize>(r * BN + c) << 2), -Infinity);
  }
}

// key padding: −∞ in the first `rows` score rows (BN apart) at each of the first n columns whose key byte at keep is 0;
// whether there was one
@inline
export function maskPadding(sT: usize, keep: usize, n: i32, rows: i32): bool {
  let any = false;
  for (let c = 0; c < n; c++) {
    if (load<u8>(keep + <usize>c) != 0) continue;
    any = true;
    for (let r = 0; r < rows; r++) store<f32>(sT + (<usize>(r * BN + c) << 2), -Infinity);
  }
  return any;
}

// row i0 + r of a head's q, clamped to the block's last row
@inline function qRow(qHead: usize, i0: i32, r: i32, rows: i32, D: i32): usize {
  return qHead + (<usize>(i0 + min(r, rows - 1)) * <usize>D << 2);
}

// The block's q rows in fours, interleaved: qp[r / 4][d][r % 4] (rows past L repeat the last: computed, never stored), so
// that scoreTile's four splats of a step load from one pointer at constant offsets (V8 spends an instruction on each
// `row + d` address otherwise, as it did in the GEMM's tile: asm/gemm.ts)
@inline
function packQ(qHead: usize, i0: i32, rows: i32, D: i32, qp: usize): void {
  const n = min(BLOCK_M, (rows + BM - 1) & ~(BM - 1));
  for (let r = 0; r < n; r++) {
    const src = qRow(qHead, i0, r, rows, D);
    const dst = qp + ((<usize>(r >> 2) * <usize>D << 4) | (<usize>(r & 3) << 2));
    for (let d = 0; d < D; d++) store<f32>(dst + (<usize>d << 4), load<f32>(src + (<usize>d << 2)));
  }
}

// s[r][c] = scale · log2 e · q_r · k_c for 4 rows and nPad keys, 8 keys (two f32x4) at a time: 8 accumulators in registers,
// each step one splat of q_r[d] per row (from the packed rows q4 = qp[·][d][0..3]) and two loads of a packed panel row
// kp[d][0..7]; mT[r] = max_c s[r][c].
@inline
function scoreTile(q4: usize, kTile: usize, D: i32, nPad: i32, scale: f32, sT: usize, mT: usize): void {
  const sc = f32x4.splat(scale * LOG2E);
  let m0 = cst(C_NEG_INF), m1 = cst(C_NEG_INF), m2 = cst(C_NEG_INF), m3 = cst(C_NEG_INF);
  for (let c = 0; c < nPad; c += 8) {
    let panel = kTile + (<usize>c * <usize>D << 2);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), b0 = f32x4.splat(0), b1 = f32x4.splat(0);
    let c0 = f32x4.splat(0), c1 = f32x4.splat(0), d0 = f32x4.splat(0), d1 = f32x4.splat(0);
    let qd = q4;
    for (let d = 0; d < D; d++) {
      const k0 = v128.load(panel), k1 = v128.load(panel, 16);
      const x0 = v128.load32_splat(qd), x1 = v128.load32_splat(qd, 4), x2 = v128.load32_splat(qd, 8), x3 = v128.load32_splat(qd, 12);
      panel += 32;
      qd += 16;
      a0 = madd(x0, k0, a0); a1 = madd(x0, k1, a1);
      b0 = madd(x1, k0, b0); b1 = madd(x1, k1, b1);
      c0 = madd(x2, k0, c0); c1 = madd(x2, k1, c1);
      d0 = madd(x3, k0, d0); d1 = madd(x3, k1, d1);
    }
    const s = sT + (<usize>c << 2);
    const rowBytes = <usize>BN << 2;
    a0 = f32x4.mul(a0, sc); a1 = f32x4.mul(a1, sc); b0 = f32x4.mul(b0, sc); b1 = f32x4.mul(b1, sc);
    c0 = f32x4.mul(c0, sc); c1 = f32x4.mul(c1, sc); d0 = f32x4.mul(d0, sc); d1 = f32x4.mul(d1, sc);
    v128.store(s, a0); v128.store(s, a1, 16);
    v128.store(s + rowBytes, b0); v128.store(s + rowBytes, b1, 16);
    v128.store(s + 2 * rowBytes, c0); v128.store(s + 2 * rowBytes, c1, 16);
    v128.store(s + 3 * rowBytes, d0); v128.store(s + 3 * rowBytes, d1, 16);
    // the rows' running maxima, while the scores are in registers (softmaxTile then skips its max pass); pmax is one
    // maxps where f32x4.max is eight (NaN and ±0 rules): a NaN score reaches l through its p all the same
    m0 = f32x4.pmax(m0, f32x4.pmax(a0, a1)); m1 = f32x4.pmax(m1, f32x4.pmax(b0, b1));
    m2 = f32x4.pmax(m2, f32x4.pmax(c0, c1)); m3 = f32x4.pmax(m3, f32x4.pmax(d0, d1));
  }
  store<f32>(mT, hmax(m0)); store<f32>(mT, hmax(m1), 4); store<f32>(mT, hmax(m2), 8); store<f32>(mT, hmax(m3), 12);
}

// Online softmax for each row r of the tile, in base 2 (s is scale · log2 e · q·k, so 2^s = e^{scale · q·k}):
//   m' = max(m, max_c s_c);  l' = 2^{m − m'} l + Σ_c 2^{s_c − m'};  p_c = 2^{s_c − m'} / l' (in place of s);
//   acc = (2^{m − m'} l / l') acc
// acc stays normalised — a weighted mean of the values seen so far, its weights summing to at most 1 at every step of
// the P·V sum — so it is finite whenever the answer is, even where Σ p·|v| is not (|v| near f32's largest value).
// Every row of the score tile has seen its max, so l' ≥ 1. A NaN score makes m' NaN, and NaN reaches l and acc.
// Rows from `rows` on (the decode job's last block of a GQA group) are left alone.
@inline
export function softmaxTile(sT: usize, acc: usize, mRow: usize, lRow: usize, nPad: i32, Dv: i32, mT: usize, rows: i32 = BM): void {
  for (let r = 0; r < rows; r++) {
    const s = sT + (<usize>(r * BN) << 2);
    // the tile's max: from the score tile (mT), or a pass over the row when masking changed it (mT = 0)
    let tileMax: f32;
    if (mT) {
      tileMax = load<f32>(mT + (<usize>r << 2));
    } else {
      let mx = f32x4.splat(-Infinity);
      for (let c = 0; c < nPad; c += 4) mx = f32x4.pmax(mx, v128.load(s + (<usize>c << 2)));
      tileMax = hmax(mx);
    }
    const mOld = load<f32>(mRow + (<usize>r << 2));
    let mNew = max(mOld, tileMax);
    // every score −∞ so far: nothing allowed yet (p = 0, state unchanged) — unless one is NaN, which the maxima above
    // skip (pmax(m, s) keeps m when s is NaN): then m′ = NaN, and NaN reaches l and acc as it would from f32x4.max
    if (mNew == -Infinity) {
      if (!anyNaN(s, nPad)) {
        for (let c = 0; c < nPad; c += 4) v128.store(s + (<usize>c << 2), f32x4.splat(0));
        continue;
      }
      mNew = NaN;
    }
    const mv = f32x4.splat(mNew);
    let sum = f32x4.splat(0);
    for (let c = 0; c < nPad; c += 4) {
      const p = exp2neg(f32x4.sub(v128.load(s + (<usize>c << 2)), mv));
      v128.store(s + (<usize>c << 2), p);
      sum = f32x4.add(sum, p);
    }
    const alpha = f32x4.extract_lane(exp2neg(f32x4.splat(mOld - mNew)), 0); // 0 when mOld = −∞
    const lOld = alpha * load<f32>(lRow + (<usize>r << 2));
    const lNew = lOld + hsum(sum);
    store<f32>(lRow + (<usize>r << 2), lNew);
    store<f32>(mRow + (<usize>r << 2), mNew);
    const inv = f32x4.splat(1 / lNew);
    for (let c = 0; c < nPad; c += 4) v128.store(s + (<usize>c << 2), f32x4.mul(v128.load(s + (<usize>c << 2)), inv));
    const keep = lOld / lNew; // what the values seen so far weigh now
    if (keep != 1) {
      const kv = f32x4.splat(keep);
      const a = acc + (<usize>(r * Dv) << 2);
      for (let d = 0; d < Dv; d += 4) v128.store(a + (<usize>d << 2), f32x4.mul(v128.load(a + (<usize>d << 2)), kv));
    }
  }
}

// whether any of the n (a multiple of 4) floats at s is NaN
@inline
function anyNaN(s: usize, n: i32): bool {
  let nan = f32x4.splat(0);
  for (let c = 0; c < n; c += 4) { const x = v128.load(s + (<usize>c << 2)); nan = v128.or(nan, f32x4.ne(x, x)); }
  return v128.any_true(nan);
}

// acc[r] += Σ_c p[r][c] v_c over n keys, 8 lanes of Dv at a time: 4 rows × 8 lanes of acc stay in registers while
// the keys stream past (a 4-lane tail when Dv % 8 = 4). pvRow: the same sums for one row. v's elements are E: f32, or
// f16 bits for the decode job's f16 cache (load4; p then carries 2^112).
@inline
export function pvTile<E>(sT: usize, vTile: usize, acc: usize, n: i32, Dv: i32, f16Mask: v128): void {
  const rowBytes = <usize>BN << 2;
  const vStride = <usize>Dv * sizeof<E>(), half = 4 * sizeof<E>();
  let dc = 0;
  for (; dc + 8 <= Dv; dc += 8) {
    const a = acc + (<usize>dc << 2);
    const accRow = <usize>Dv << 2;
    let a0 = v128.load(a), a1 = v128.load(a, 16);
    let b0 = v128.load(a + accRow), b1 = v128.load(a + accRow, 16);
    let c0 = v128.load(a + 2 * accRow), c1 = v128.load(a + 2 * accRow, 16);
    let d0 = v128.load(a + 3 * accRow), d1 = v128.load(a + 3 * accRow, 16);
    let vp = vTile + <usize>dc * sizeof<E>();
    for (let c = 0; c < n; c++) {
      const v0 = load4<E>(vp, f16Mask), v1 = load4<E>(vp + half, f16Mask);
      vp += vStride;
      const s = sT + (<usize>c << 2);
      const p0 = v128.load32_splat(s), p1 = v128.load32_splat(s + rowBytes);
      const p2 = v128.load32_splat(s + 2 * rowBytes), p3 = v128.load32_splat(s + 3 * rowBytes);
      a0 = madd(p0, v0, a0); a1 = madd(p0, v1, a1);
      b0 = madd(p1, v0, b0); b1 = madd(p1, v1, b1);
      c0 = madd(p2, v0, c0); c1 = madd(p2, v1, c1);
      d0 = madd(p3, v0, d0); d1 = madd(p3, v1, d1);
    }
    v128.store(a, a0); v128.store(a, a1, 16);
    v128.store(a + accRow, b0); v128.store(a + accRow, b1, 16);
    v128.store(a + 2 * accRow, c0); v128.store(a + 2 * accRow, c1, 16);
    v128.store(a + 3 * accRow, d0); v128.store(a + 3 * accRow, d1, 16);
  }
  if (dc < Dv) { // Dv % 8 = 4
    for (let r = 0; r < BM; r++) {
      const a = acc + (<usize>(r * Dv + dc) << 2);
      let x = v128.load(a);
      for (let c = 0; c < n; c++) {
        const vc = load4<E>(vTile + <usize>(c * Dv + dc) * sizeof<E>(), f16Mask);
        x = f32x4.add(x, f32x4.mul(v128.load32_splat(sT + (<usize>(r * BN + c) << 2)), vc));
      }
      v128.store(a, x);
    }
  }
}

// acc += Σ_c p[c] v_c for one row p of the score tile over n keys, 16 lanes of Dv at a time (one query row needs no
// 4-row tile: one p and four v loads per four multiply-adds). Each lane sums its keys in order with madd, as pvTile
// does — and its Dv % 8 = 4 tail with a multiply and an add, as pvTile's — so a row's result does not depend on which
// of the two took it.
@inline
export function pvRow<E>(p: usize, vTile: usize, acc: usize, n: i32, Dv: i32, f16Mask: v128): void {
  const vStride = <usize>Dv * sizeof<E>(), e = sizeof<E>();
  let dc = 0;
  for (; dc + 16 <= Dv; dc += 16) {
    const a = acc + (<usize>dc << 2);
    let a0 = v128.load(a), a1 = v128.load(a, 16), a2 = v128.load(a, 32), a3 = v128.load(a, 48);
    let vp = vTile + <usize>dc * e;
    for (let c = 0; c < n; c++) {
      const pc = v128.load32_splat(p + (<usize>c << 2));
      a0 = madd(pc, load4<E>(vp, f16Mask), a0); a1 = madd(pc, load4<E>(vp + 4 * e, f16Mask), a1);
      a2 = madd(pc, load4<E>(vp + 8 * e, f16Mask), a2); a3 = madd(pc, load4<E>(vp + 12 * e, f16Mask), a3);
      vp += vStride;
    }
    v128.store(a, a0); v128.store(a, a1, 16); v128.store(a, a2, 32); v128.store(a, a3, 48);
  }
  for (; dc + 8 <= Dv; dc += 8) {
    const a = acc + (<usize>dc << 2);
    let a0 = v128.load(a), a1 = v128.load(a, 16);
    let vp = vTile + <usize>dc * e;
    for (let c = 0; c < n; c++) {
      const pc = v128.load32_splat(p + (<usize>c << 2));
      a0 = madd(pc, load4<E>(vp, f16Mask), a0); a1 = madd(pc, load4<E>(vp + 4 * e, f16Mask), a1);
      vp += vStride;
    }
    v128.store(a, a0); v128.store(a, a1, 16);
  }
  if (dc < Dv) { // Dv % 8 = 4
    const a = acc + (<usize>dc << 2);
    let x = v128.load(a);
    for (let c = 0; c < n; c++) {
      x = f32x4.add(x, f32x4.mul(v128.load32_splat(p + (<usize>c << 2)), load4<E>(vTile + <usize>(c * Dv + dc) * e, f16Mask)));
    }
    v128.store(a, x);
  }
}
