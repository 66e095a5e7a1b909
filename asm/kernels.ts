// qkv's WebAssembly SIMD kernels, in AssemblyScript (compiled by `npm run build`, twice: with a private memory and
// with a shared one for threads). One entry point, run(job, t, T): thread t of T does its share of the job described
// at `job` in linear memory — the host writes the job once and every thread (the caller and its workers) runs it.
//
//   ATTENTION   FlashAttention forward (online softmax), causal or not, GQA; 4 query rows × 8 keys per register tile
//   PACK_K      k [BHkv, S, D] → panels [BHkv, S/8, D, 8] so the score tile reads 8 keys per load, in order
//   GEMM_*      C[M, N] = A[M, K] · B[N, K]ᵀ (torch's Linear layout) with B in f32, f16, bf16 or int8 (+ a scale per
//               row of B), B widened to f32 inside the kernel so decode reads 2 or 1 bytes per weight
//
// Layout of a job (i32 words; floats stored as their bits): see the J_* offsets below and src/kernels/wasm/runtime.ts.

export const ATTENTION: i32 = 1;
export const PACK_K: i32 = 2;
export const GEMM_F32: i32 = 3;
export const GEMM_F16: i32 = 4;
export const GEMM_BF16: i32 = 5;
export const GEMM_I8: i32 = 6;

const BN: i32 = 64; // keys per tile of the attention kernel
const BM: i32 = 4; // query rows per tile

// Vector constants live in memory, not in the code: binaryen copies a v128.const into every use and V8 rebuilds each
// one with several instructions, inside the hot loops; a load from this table is one L1 read. run() writes the table
// (every thread writes the same bytes) at CONSTS = 512, between the job (256) and the resident weights (64 KiB).
const CONSTS: usize = 512;
const C_NEG_INF = 0, C_EXP_LO = 1, C_EXP_HI = 2, C_LOG2E = 3, C_LN2_HI = 4, C_LN2_LO = 5, C_P0 = 6, C_ONE = 12, C_127 = 13;
const C_F16_MASK = 14, C_F16_FULL = 15, C_2P112 = 16, C_F16_BIG = 17;
@inline function cst(i: i32): v128 { return v128.load(CONSTS + (<usize>i << 4)); }

function writeConstants(): void {
  const f = (i: i32, x: f32): void => v128.store(CONSTS + (<usize>i << 4), f32x4.splat(x));
  const n = (i: i32, x: i32): void => v128.store(CONSTS + (<usize>i << 4), i32x4.splat(x));
  f(C_NEG_INF, -Infinity); f(C_EXP_LO, -87.0); f(C_EXP_HI, 88.0); f(C_LOG2E, 1.44269504088896341);
  f(C_LN2_HI, 0.693359375); f(C_LN2_LO, -2.12194440e-4);
  // Cephes expf polynomial, highest degree first
  f(C_P0, 1.9875691500e-4); f(C_P0 + 1, 1.3981999507e-3); f(C_P0 + 2, 8.3334519073e-3); f(C_P0 + 3, 4.1665795894e-2);
  f(C_P0 + 4, 1.6666665459e-1); f(C_P0 + 5, 5.0000001201e-1); f(C_ONE, 1); n(C_127, 127);
  n(C_F16_MASK, 0x8fffe000); n(C_F16_FULL, 0x8fffffff); f(C_2P112, 5.192296858534828e33); f(C_F16_BIG, 32768);
}

@inline function word(job: usize, i: i32): i32 { return load<i32>(job + (<usize>i << 2)); }
@inline function ptr(job: usize, i: i32): usize { return <usize>load<u32>(job + (<usize>i << 2)); }

/** Thread t of T runs its share of the job at `job`. */
export function run(job: usize, t: i32, T: i32): void {
  const kind = word(job, 0);
  writeConstants();
  if (kind == ATTENTION) attention(job, t, T);
  else if (kind == PACK_K) packK(job, t, T);
  else gemm(job, kind, t, T);
}

// ---------------------------------------------------------------------------------------------------------------
// exp on four lanes (Cephes expf): e^x = 2^n · e^r, n = round(x·log2 e), r = x − n·ln 2 (ln 2 split in two parts for
// accuracy), e^r by a degree-6 polynomial; 2^n built in the exponent bits. −∞ lanes give exactly 0.
@inline
function expv(x: v128): v128 {
  const isNegInf = f32x4.eq(x, cst(C_NEG_INF));
  const xc = f32x4.min(f32x4.max(x, cst(C_EXP_LO)), cst(C_EXP_HI));
  const n = f32x4.nearest(f32x4.mul(xc, cst(C_LOG2E)));
  let r = f32x4.sub(xc, f32x4.mul(n, cst(C_LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, cst(C_LN2_LO)));
  let y = cst(C_P0);
  for (let i = 1; i < 6; i++) y = f32x4.add(f32x4.mul(y, r), cst(C_P0 + i));
  y = f32x4.add(f32x4.add(f32x4.mul(y, f32x4.mul(r, r)), r), cst(C_ONE));
  const pow2n = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), cst(C_127)), 23);
  return v128.andnot(f32x4.mul(y, pow2n), isNegInf);
}

@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}
@inline function hmax(v: v128): f32 {
  return max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

// ---------------------------------------------------------------------------------------------------------------
// PACK_K: [k, kp, BHkv, S, D, Sp] — kp[h][p][d][c] = k[h][8p + c][d] (0 past S); kv heads dealt to threads.
function packK(job: usize, t: i32, T: i32): void {
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

// ---------------------------------------------------------------------------------------------------------------
// ATTENTION: [q, kp, v, out, ml, scratch, scratchStride, BH, Hq, Hkv, L, S, D, Dv, scale, causal, shift, Sp]
// q/out [BH, L, ·], kp packed by PACK_K, v [BHkv, S, Dv], ml [2][BH, L] = each row's m and l (the host forms
// lse = m + log l: the module keeps no lookup tables, so its memory is entirely the host's).
// causal: query i sees keys 0..i + shift.
// Units of work are (head, block of BLOCK_M = 32 query rows); thread t takes units t, t + T, … (interleaved, so
// causal work balances). Inside a unit the KV loop is outermost: each tile of BN keys and values is loaded into cache
// once and used by all 8 micro-blocks of 4 rows (their m, l and acc wait in scratch between tiles).
// Per thread scratch: s [BM][BN] scores/probabilities, acc [BLOCK_M][Dv], m [BLOCK_M], l [BLOCK_M].
const BLOCK_M: i32 = 32;

function attention(job: usize, t: i32, T: i32): void {
  const q = ptr(job, 1), kp = ptr(job, 2), v = ptr(job, 3), out = ptr(job, 4), ml = ptr(job, 5);
  const BH = word(job, 8), Hq = word(job, 9), Hkv = word(job, 10), L = word(job, 11), S = word(job, 12);
  const D = word(job, 13), Dv = word(job, 14), scale = reinterpret<f32>(word(job, 15));
  const causal = word(job, 16), shift = word(job, 17), Sp = word(job, 18);
  const sT = ptr(job, 6) + <usize>t * <usize>word(job, 7); // [BM][BN]
  const acc = sT + (<usize>(BM * BN) << 2); // [BLOCK_M][Dv]
  const mRow = acc + (<usize>(BLOCK_M * Dv) << 2); // [BLOCK_M]
  const lRow = mRow + (<usize>BLOCK_M << 2); // [BLOCK_M]
  const G = Hq / Hkv;
  const blocks = (L + BLOCK_M - 1) / BLOCK_M;
  for (let u = t; u < BH * blocks; u += T) {
    const bh = u / blocks;
    const i0 = (u % blocks) * BLOCK_M;
    const rows = min(BLOCK_M, L - i0);
    const kvh = (bh / Hq) * Hkv + (bh % Hq) / G;
    const kHead = kp + (<usize>kvh * <usize>Sp * <usize>D << 2);
    const vHead = v + (<usize>kvh * <usize>S * <usize>Dv << 2);
    const qHead = q + (<usize>bh * <usize>L * <usize>D << 2);
    // keys 0..last(i) are allowed to row i
    const blockLast = causal ? min(S - 1, i0 + rows - 1 + shift) : S - 1;
    for (let r = 0; r < BLOCK_M; r++) { store<f32>(mRow + (<usize>r << 2), -Infinity); store<f32>(lRow + (<usize>r << 2), 0); }
    for (let d = 0; d < BLOCK_M * Dv; d += 4) v128.store(acc + (<usize>d << 2), f32x4.splat(0));
    // the KV loop: tiles past the block's last allowed key are never visited
    for (let j0 = 0; j0 <= blockLast; j0 += BN) {
      const n = min(BN, S - j0); // real keys in this tile
      const nPad = (n + 7) & ~7; // keys computed (panels of 8)
      const kTile = kHead + (<usize>j0 * <usize>D << 2);
      const vTile = vHead + (<usize>j0 * <usize>Dv << 2);
      for (let r0 = 0; r0 < rows; r0 += BM) {
        const lastMin = causal ? min(S - 1, i0 + r0 + shift) : S - 1; // the micro-block's first row's last key
        if (j0 > min(S - 1, causal ? i0 + min(r0 + BM, rows) - 1 + shift : S - 1)) continue; // past every row's last key (later micro-blocks reach further)
        // rows past L repeat the last row (computed, never stored)
        scoreTile(qRow(qHead, i0, r0, rows, D), qRow(qHead, i0, r0 + 1, rows, D), qRow(qHead, i0, r0 + 2, rows, D),
          qRow(qHead, i0, r0 + 3, rows, D), kTile, D, nPad, scale, sT);
        // mask what the tile holds past a row's last key (the diagonal tile, or S's padding)
        if (j0 + nPad - 1 > lastMin) {
          for (let r = 0; r < BM; r++) {
            const last = causal ? min(S - 1, i0 + min(r0 + r, rows - 1) + shift) : S - 1;
            for (let c = max(0, last + 1 - j0); c < nPad; c++) store<f32>(sT + (<usize>(r * BN + c) << 2), -Infinity);
          }
        }
        const a = acc + (<usize>(r0 * Dv) << 2);
        softmaxTile(sT, a, mRow + (<usize>r0 << 2), lRow + (<usize>r0 << 2), nPad, Dv);
        pvTile(sT, vTile, a, n, Dv);
      }
    }
    // o = acc / l (a row with no allowed key: l = 0, o = 0)
    for (let r = 0; r < rows; r++) {
      const row = <usize>bh * <usize>L + <usize>(i0 + r);
      const l = load<f32>(lRow + (<usize>r << 2));
      const o = out + (row * <usize>Dv << 2);
      const a = acc + (<usize>(r * Dv) << 2);
      const inv = f32x4.splat(l > 0 ? 1 / l : 0);
      for (let d = 0; d < Dv; d += 4) v128.store(o + (<usize>d << 2), f32x4.mul(v128.load(a + (<usize>d << 2)), inv));
      store<f32>(ml + (row << 2), load<f32>(mRow + (<usize>r << 2)));
      store<f32>(ml + ((<usize>BH * <usize>L + row) << 2), l);
    }
  }
}

// row i0 + r of a head's q, clamped to the block's last row
@inline function qRow(qHead: usize, i0: i32, r: i32, rows: i32, D: i32): usize {
  return qHead + (<usize>(i0 + min(r, rows - 1)) * <usize>D << 2);
}

// s[r][c] = scale · q_r · k_c for 4 rows and nPad keys, 8 keys (two f32x4) at a time: 8 accumulators in registers,
// each step one splat of q_r[d] per row and two loads of a packed panel row kp[d][0..7].
@inline
function scoreTile(q0: usize, q1: usize, q2: usize, q3: usize, kTile: usize, D: i32, nPad: i32, scale: f32, sT: usize): void {
  const sc = f32x4.splat(scale);
  for (let c = 0; c < nPad; c += 8) {
    let panel = kTile + (<usize>c * <usize>D << 2);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), b0 = f32x4.splat(0), b1 = f32x4.splat(0);
    let c0 = f32x4.splat(0), c1 = f32x4.splat(0), d0 = f32x4.splat(0), d1 = f32x4.splat(0);
    for (let d = 0; d < D; d++) {
      const off = <usize>d << 2;
      const k0 = v128.load(panel), k1 = v128.load(panel, 16);
      panel += 32;
      const x0 = v128.load32_splat(q0 + off), x1 = v128.load32_splat(q1 + off);
      const x2 = v128.load32_splat(q2 + off), x3 = v128.load32_splat(q3 + off);
      a0 = f32x4.add(a0, f32x4.mul(x0, k0)); a1 = f32x4.add(a1, f32x4.mul(x0, k1));
      b0 = f32x4.add(b0, f32x4.mul(x1, k0)); b1 = f32x4.add(b1, f32x4.mul(x1, k1));
      c0 = f32x4.add(c0, f32x4.mul(x2, k0)); c1 = f32x4.add(c1, f32x4.mul(x2, k1));
      d0 = f32x4.add(d0, f32x4.mul(x3, k0)); d1 = f32x4.add(d1, f32x4.mul(x3, k1));
    }
    const s = sT + (<usize>c << 2);
    const rowBytes = <usize>BN << 2;
    v128.store(s, f32x4.mul(a0, sc)); v128.store(s, f32x4.mul(a1, sc), 16);
    v128.store(s + rowBytes, f32x4.mul(b0, sc)); v128.store(s + rowBytes, f32x4.mul(b1, sc), 16);
    v128.store(s + 2 * rowBytes, f32x4.mul(c0, sc)); v128.store(s + 2 * rowBytes, f32x4.mul(c1, sc), 16);
    v128.store(s + 3 * rowBytes, f32x4.mul(d0, sc)); v128.store(s + 3 * rowBytes, f32x4.mul(d1, sc), 16);
  }
}

// Online softmax for each row r of the tile:
//   m' = max(m, max_c s_c);  α = e^{m − m'};  p_c = e^{s_c − m'} (in place of s);  l = α l + Σ p_c;  acc = α acc
@inline
function softmaxTile(sT: usize, acc: usize, mRow: usize, lRow: usize, nPad: i32, Dv: i32): void {
  for (let r = 0; r < BM; r++) {
    const s = sT + (<usize>(r * BN) << 2);
    let mx = f32x4.splat(-Infinity);
    for (let c = 0; c < nPad; c += 4) mx = f32x4.max(mx, v128.load(s + (<usize>c << 2)));
    const mOld = load<f32>(mRow + (<usize>r << 2));
    const mNew = max(mOld, hmax(mx));
    if (mNew == -Infinity) { // nothing allowed yet: p = 0, state unchanged
      for (let c = 0; c < nPad; c += 4) v128.store(s + (<usize>c << 2), f32x4.splat(0));
      continue;
    }
    const mv = f32x4.splat(mNew);
    let sum = f32x4.splat(0);
    for (let c = 0; c < nPad; c += 4) {
      const p = expv(f32x4.sub(v128.load(s + (<usize>c << 2)), mv));
      v128.store(s + (<usize>c << 2), p);
      sum = f32x4.add(sum, p);
    }
    const alpha = f32x4.extract_lane(expv(f32x4.splat(mOld - mNew)), 0); // 0 when mOld = −∞
    store<f32>(lRow + (<usize>r << 2), alpha * load<f32>(lRow + (<usize>r << 2)) + hsum(sum));
    store<f32>(mRow + (<usize>r << 2), mNew);
    if (alpha != 1) {
      const av = f32x4.splat(alpha);
      const a = acc + (<usize>(r * Dv) << 2);
      for (let d = 0; d < Dv; d += 4) v128.store(a + (<usize>d << 2), f32x4.mul(v128.load(a + (<usize>d << 2)), av));
    }
  }
}

// acc[r] += Σ_c p[r][c] v_c over n keys, 8 lanes of Dv at a time: 4 rows × 8 lanes of acc stay in registers while
// the keys stream past (a 4-lane tail when Dv % 8 = 4).
@inline
function pvTile(sT: usize, vTile: usize, acc: usize, n: i32, Dv: i32): void {
  const rowBytes = <usize>BN << 2;
  const vStride = <usize>Dv << 2;
  let dc = 0;
  for (; dc + 8 <= Dv; dc += 8) {
    const a = acc + (<usize>dc << 2);
    const accRow = vStride;
    let a0 = v128.load(a), a1 = v128.load(a, 16);
    let b0 = v128.load(a + accRow), b1 = v128.load(a + accRow, 16);
    let c0 = v128.load(a + 2 * accRow), c1 = v128.load(a + 2 * accRow, 16);
    let d0 = v128.load(a + 3 * accRow), d1 = v128.load(a + 3 * accRow, 16);
    let vp = vTile + (<usize>dc << 2);
    for (let c = 0; c < n; c++) {
      const v0 = v128.load(vp), v1 = v128.load(vp, 16);
      vp += vStride;
      const s = sT + (<usize>c << 2);
      const p0 = v128.load32_splat(s), p1 = v128.load32_splat(s + rowBytes);
      const p2 = v128.load32_splat(s + 2 * rowBytes), p3 = v128.load32_splat(s + 3 * rowBytes);
      a0 = f32x4.add(a0, f32x4.mul(p0, v0)); a1 = f32x4.add(a1, f32x4.mul(p0, v1));
      b0 = f32x4.add(b0, f32x4.mul(p1, v0)); b1 = f32x4.add(b1, f32x4.mul(p1, v1));
      c0 = f32x4.add(c0, f32x4.mul(p2, v0)); c1 = f32x4.add(c1, f32x4.mul(p2, v1));
      d0 = f32x4.add(d0, f32x4.mul(p3, v0)); d1 = f32x4.add(d1, f32x4.mul(p3, v1));
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
        x = f32x4.add(x, f32x4.mul(v128.load32_splat(sT + (<usize>(r * BN + c) << 2)), v128.load(vTile + (<usize>(c * Dv + dc) << 2))));
      }
      v128.store(a, x);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// GEMM_*: [kind, a, b, c, M, K, N, scales, scratch, scratchStride]   c_ij = Σ_k a_ik b_jk (× scale_j for int8)
// PACKED: 16-bit and int8 weights are resident with each group of 4 rows interleaved in 16-byte chunks, [N/4][K/8][4][8]
// and [N/4][K/16][4][16] (rows past the last full group as they are), so the decode loop reads one cache line after
// another — the hardware prefetcher keeps up with that, not with four rows read side by side (3–4× on this machine).
// Columns of C (rows of B) are split into T contiguous ranges, multiples of 4. B rows are widened to f32 four at a
// time: straight into registers when M = 1 (decode: the whole cost is reading B once), else into this thread's
// scratch panel [4][K] which the 2×4 register tile then reuses for every row of A.
function gemm(job: usize, kind: i32, t: i32, T: i32): void {
  const a = ptr(job, 1), b = ptr(job, 2), c = ptr(job, 3);
  const M = word(job, 4), K = word(job, 5), N = word(job, 6), scales = ptr(job, 7);
  const panel = ptr(job, 8) + <usize>t * <usize>word(job, 9);
  const per = (((N + 3) >> 2) + T - 1) / T * 4;
  const n0 = t * per, n1 = min(N, n0 + per);
  const esize: usize = kind == GEMM_F32 ? 4 : kind == GEMM_I8 ? 1 : 2;
  const rowB = <usize>K * esize;
  // decode with f16 weights: x prepared once per thread in its panel scratch (else the widening path below)
  const fastF16 = M == 1 && kind == GEMM_F16 && n1 - n0 >= 4 && prepareF16(a, panel, K);
  let j = n0;
  for (; j + 4 <= n1; j += 4) {
    const b0 = b + <usize>j * rowB;
    if (kind == GEMM_F32) {
      gemmPanel(a, b0, c, M, K, N, j, <usize>K << 2);
    } else if (fastF16) {
      gemvF16(panel, b0, c, K, j);
    } else if (M == 1 && kind == GEMM_BF16) {
      gemvBF16(a, b0, c, K, j);
    } else if (M == 1) {
      gemvI8(a, b0, c, K, j, scales);
    } else {
      widenPanel(b0, panel, K, kind, rowB);
      gemmPanel(a, panel, c, M, K, N, j, <usize>K << 2);
      if (kind == GEMM_I8) scaleColumns(c, M, N, j, 4, scales);
    }
  }
  // the last 1–3 columns, one at a time
  for (; j < n1; j++) {
    const bj = b + <usize>j * rowB;
    for (let i = 0; i < M; i++) {
      const ai = a + (<usize>i * <usize>K << 2);
      let s: f32 = 0;
      for (let k = 0; k < K; k++) s += load<f32>(ai + (<usize>k << 2)) * element(bj, k, kind);
      store<f32>(c + ((<usize>i * <usize>N + <usize>j) << 2), kind == GEMM_I8 ? s * load<f32>(scales + (<usize>j << 2)) : s);
    }
  }
}

// one element of a B row in any of the four formats, widened (only the column tail uses it)
@inline
function element(row: usize, k: i32, kind: i32): f32 {
  if (kind == GEMM_F32) return load<f32>(row + (<usize>k << 2));
  if (kind == GEMM_I8) return <f32>load<i8>(row + <usize>k);
  const h = <u32>load<u16>(row + (<usize>k << 1));
  if (kind == GEMM_BF16) return reinterpret<f32>(h << 16);
  return f32x4.extract_lane(widenF16(i32x4.splat(h << 16)), 0);
}

// f16 bits in the top half of each i32 lane → f32: shift the exponent and mantissa into place (the arithmetic shift
// copies the sign into bits 30–28, which the mask clears), then 2^112 rebiases the exponent (15 → 127); subnormals
// come out right because the multiply normalises them. Infinities and NaNs are not expected (the host checks).
@inline
function widenF16(hi: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shr_s(hi, 3), cst(C_F16_FULL)), cst(C_2P112));
}
// the low / high four 16-bit values of h, each in the top half of an i32 lane
@inline function lo16(h: v128): v128 { return i16x8.shuffle(i16x8.splat(0), h, 0, 8, 1, 9, 2, 10, 3, 11); }
@inline function hi16(h: v128): v128 { return i16x8.shuffle(i16x8.splat(0), h, 4, 12, 5, 13, 6, 14, 7, 15); }

// C[i, j..j+3] for all i: 2 rows of A × 4 rows of B per register tile (8 accumulators), K a multiple of 4
@inline
function gemmPanel(a: usize, b0: usize, c: usize, M: i32, K: i32, N: i32, j: i32, rowB: usize): void {
  const b1 = b0 + rowB, b2 = b1 + rowB, b3 = b2 + rowB;
  const rowA = <usize>K << 2;
  let i = 0;
  for (; i + 2 <= M; i += 2) {
    const x = a + <usize>i * rowA, y = x + rowA;
    let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s02 = f32x4.splat(0), s03 = f32x4.splat(0);
    let s10 = f32x4.splat(0), s11 = f32x4.splat(0), s12 = f32x4.splat(0), s13 = f32x4.splat(0);
    for (let k = 0; k < K; k += 4) {
      const off = <usize>k << 2;
      const w0 = v128.load(b0 + off), w1 = v128.load(b1 + off), w2 = v128.load(b2 + off), w3 = v128.load(b3 + off);
      const xa = v128.load(x + off), ya = v128.load(y + off);
      s00 = f32x4.add(s00, f32x4.mul(xa, w0)); s01 = f32x4.add(s01, f32x4.mul(xa, w1));
      s02 = f32x4.add(s02, f32x4.mul(xa, w2)); s03 = f32x4.add(s03, f32x4.mul(xa, w3));
      s10 = f32x4.add(s10, f32x4.mul(ya, w0)); s11 = f32x4.add(s11, f32x4.mul(ya, w1));
      s12 = f32x4.add(s12, f32x4.mul(ya, w2)); s13 = f32x4.add(s13, f32x4.mul(ya, w3));
    }
    store4(c + ((<usize>i * <usize>N + <usize>j) << 2), s00, s01, s02, s03);
    store4(c + ((<usize>(i + 1) * <usize>N + <usize>j) << 2), s10, s11, s12, s13);
  }
  if (i < M) {
    const x = a + <usize>i * rowA;
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
    for (let k = 0; k < K; k += 4) {
      const off = <usize>k << 2;
      const xa = v128.load(x + off);
      s0 = f32x4.add(s0, f32x4.mul(xa, v128.load(b0 + off))); s1 = f32x4.add(s1, f32x4.mul(xa, v128.load(b1 + off)));
      s2 = f32x4.add(s2, f32x4.mul(xa, v128.load(b2 + off))); s3 = f32x4.add(s3, f32x4.mul(xa, v128.load(b3 + off)));
    }
    store4(c + ((<usize>i * <usize>N + <usize>j) << 2), s0, s1, s2, s3);
  }
}

@inline
function store4(at: usize, s0: v128, s1: v128, s2: v128, s3: v128): void {
  store<f32>(at, hsum(s0)); store<f32>(at, hsum(s1), 4); store<f32>(at, hsum(s2), 8); store<f32>(at, hsum(s3), 12);
}

// four rows of B widened into the f32 panel [4][K]
function widenPanel(b0: usize, panel: usize, K: i32, kind: i32, rowB: usize): void {
  for (let r = 0; r < 4; r++) {
    const src = b0 + <usize>r * rowB;
    const dst = panel + (<usize>(r * K) << 2);
    if (kind == GEMM_I8) {
      for (let k = 0; k < K; k += 16) {
        const h = v128.load(b0 + (<usize>k << 2) + (<usize>r << 4)); // interleaved: see PACKED
        const lo = i16x8.extend_low_i8x16_s(h), hi = i16x8.extend_high_i8x16_s(h);
        const o = dst + (<usize>k << 2);
        v128.store(o, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)));
        v128.store(o, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), 16);
        v128.store(o, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), 32);
        v128.store(o, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), 48);
      }
    } else {
      for (let k = 0; k < K; k += 8) {
        const h = v128.load(b0 + (<usize>k << 3) + (<usize>r << 4)); // interleaved: see PACKED
        const o = dst + (<usize>k << 2);
        if (kind == GEMM_BF16) { v128.store(o, lo16(h)); v128.store(o, hi16(h), 16); }
        else { v128.store(o, widenF16(lo16(h))); v128.store(o, widenF16(hi16(h)), 16); }
      }
    }
  }
}

function scaleColumns(c: usize, M: i32, N: i32, j: i32, n: i32, scales: usize): void {
  for (let i = 0; i < M; i++) {
    for (let x = 0; x < n; x++) {
      const at = c + ((<usize>i * <usize>N + <usize>(j + x)) << 2);
      store<f32>(at, load<f32>(at) * load<f32>(scales + (<usize>(j + x) << 2)));
    }
  }
}

// decode, f16 weights, with x prepared by prepareF16 (K a multiple of 8). Eight f16 of a row are one v128 of four
// i32 lanes, each (odd << 16 | even). Shifting right by 3 (arithmetic) and masking with 0x8fffe000 turns the odd
// halves into f32 bit patterns worth w·2^−112 (sign kept at bit 31, exponent and mantissa moved into place, the sign
// copies and the even half cleared); the even halves, moved up first, the same way. x was scaled by 2^112, so every
// product x·w is the same correctly rounded f32 as with widened weights — with 5 integer ops per 8 weights.
function gemvF16(xs: usize, b0: usize, c: usize, K: i32, j: i32): void {
  const mask = cst(C_F16_MASK);
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  for (let k = 0; k < K; k += 8) {
    const xe = v128.load(xs + (<usize>k << 2)), xo = v128.load(xs + (<usize>k << 2), 16);
    const at = b0 + (<usize>k << 3); // one cache line: 8 weights of each of the 4 rows
    const h0 = v128.load(at), h1 = v128.load(at, 16), h2 = v128.load(at, 32), h3 = v128.load(at, 48);
    s0 = f32x4.add(s0, f32x4.add(f32x4.mul(xe, v128.and(i32x4.shr_s(i32x4.shl(h0, 16), 3), mask)), f32x4.mul(xo, v128.and(i32x4.shr_s(h0, 3), mask))));
    s1 = f32x4.add(s1, f32x4.add(f32x4.mul(xe, v128.and(i32x4.shr_s(i32x4.shl(h1, 16), 3), mask)), f32x4.mul(xo, v128.and(i32x4.shr_s(h1, 3), mask))));
    s2 = f32x4.add(s2, f32x4.add(f32x4.mul(xe, v128.and(i32x4.shr_s(i32x4.shl(h2, 16), 3), mask)), f32x4.mul(xo, v128.and(i32x4.shr_s(h2, 3), mask))));
    s3 = f32x4.add(s3, f32x4.add(f32x4.mul(xe, v128.and(i32x4.shr_s(i32x4.shl(h3, 16), 3), mask)), f32x4.mul(xo, v128.and(i32x4.shr_s(h3, 3), mask))));
  }
  store4(c + (<usize>j << 2), s0, s1, s2, s3);
}

// xs = x · 2^112 with each group of 8 split into its even and odd elements, [x0 x2 x4 x6 | x1 x3 x5 x7]; false (and
// nothing usable) when some |x| ≥ 2^15, where x · 2^112 could overflow
function prepareF16(a: usize, xs: usize, K: i32): bool {
  const big = cst(C_F16_BIG);
  const scale = cst(C_2P112);
  for (let k = 0; k < K; k += 8) {
    const x0 = v128.load(a + (<usize>k << 2)), x1 = v128.load(a + (<usize>k << 2), 16);
    if (v128.any_true(v128.or(f32x4.ge(f32x4.abs(x0), big), f32x4.ge(f32x4.abs(x1), big)))) return false;
    if (v128.any_true(v128.or(f32x4.ne(x0, x0), f32x4.ne(x1, x1)))) return false; // NaN: the widening path says so
    v128.store(xs + (<usize>k << 2), f32x4.mul(v128.shuffle<f32>(x0, x1, 0, 2, 4, 6), scale));
    v128.store(xs + (<usize>k << 2), f32x4.mul(v128.shuffle<f32>(x0, x1, 1, 3, 5, 7), scale), 16);
  }
  return true;
}

// decode, bf16 weights: a bf16 is the top half of an f32, so widening is one shuffle
function gemvBF16(a: usize, b0: usize, c: usize, K: i32, j: i32): void {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  for (let k = 0; k < K; k += 8) {
    const xa = v128.load(a + (<usize>k << 2)), xb = v128.load(a + (<usize>k << 2), 16);
    const at = b0 + (<usize>k << 3);
    const h0 = v128.load(at), h1 = v128.load(at, 16), h2 = v128.load(at, 32), h3 = v128.load(at, 48);
    s0 = f32x4.add(s0, f32x4.add(f32x4.mul(xa, lo16(h0)), f32x4.mul(xb, hi16(h0))));
    s1 = f32x4.add(s1, f32x4.add(f32x4.mul(xa, lo16(h1)), f32x4.mul(xb, hi16(h1))));
    s2 = f32x4.add(s2, f32x4.add(f32x4.mul(xa, lo16(h2)), f32x4.mul(xb, hi16(h2))));
    s3 = f32x4.add(s3, f32x4.add(f32x4.mul(xa, lo16(h3)), f32x4.mul(xb, hi16(h3))));
  }
  store4(c + (<usize>j << 2), s0, s1, s2, s3);
}

// decode, int8 weights (interleaved like the 16-bit ones, 16 per chunk) with a scale per row:
// c_j = scale_j · Σ_k a_k q_jk, 16 weights of each of 4 rows per step (K a multiple of 16)
function gemvI8(a: usize, b0: usize, c: usize, K: i32, j: i32, scales: usize): void {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  for (let k = 0; k < K; k += 16) {
    const x = a + (<usize>k << 2);
    const x0 = v128.load(x), x1 = v128.load(x, 16), x2 = v128.load(x, 32), x3 = v128.load(x, 48);
    const at = b0 + (<usize>k << 2); // one cache line: 16 weights of each of the 4 rows
    s0 = f32x4.add(s0, dotI8(v128.load(at), x0, x1, x2, x3));
    s1 = f32x4.add(s1, dotI8(v128.load(at, 16), x0, x1, x2, x3));
    s2 = f32x4.add(s2, dotI8(v128.load(at, 32), x0, x1, x2, x3));
    s3 = f32x4.add(s3, dotI8(v128.load(at, 48), x0, x1, x2, x3));
  }
  const sc = scales + (<usize>j << 2);
  store<f32>(c + (<usize>j << 2), hsum(s0) * load<f32>(sc));
  store<f32>(c + (<usize>(j + 1) << 2), hsum(s1) * load<f32>(sc, 4));
  store<f32>(c + (<usize>(j + 2) << 2), hsum(s2) * load<f32>(sc, 8));
  store<f32>(c + (<usize>(j + 3) << 2), hsum(s3) * load<f32>(sc, 12));
}

// four lanes of Σ x·q over 16 int8 q widened to f32
@inline
function dotI8(h: v128, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const lo = i16x8.extend_low_i8x16_s(h), hi = i16x8.extend_high_i8x16_s(h);
  return f32x4.add(
    f32x4.add(f32x4.mul(x0, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo))), f32x4.mul(x1, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)))),
    f32x4.add(f32x4.mul(x2, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi))), f32x4.mul(x3, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)))));
}
