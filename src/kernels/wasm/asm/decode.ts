// The DECODE job of asm/kernels.ts: split-K attention for a few query rows against a long KV cache (FlashDecoding,
// Dao et al. 2023). Decoding has one query row per head, too little to share among threads by query tiles, so the
// keys are cut into chunks instead: a unit of work is (batch, kv head, chunk), and it holds every query row of the
// GQA group that reads this kv head (G = Hq/Hkv heads × L rows), so each key and value is read once per group.
// Each unit leaves its rows' partial state — m (max score), l (Σ 2^{s−m}) and o = Σ 2^{s−m} v / l (normalised, so
// finite whenever the answer is), in base 2 like the attention job (s = scale · log2 e · q·k) — and the MERGE job
// (below) merges the chunks:  M = max_s m_s,  l = Σ_s 2^{m_s−M} l_s,  o = Σ_s (2^{m_s−M} l_s / l) o_s,
// lse = M · ln 2 + log l.
// k and v are read as the cache stores them ([S, D] per head; packing them would cost as much as reading them).
import { biasRow, C_F16_MASK, C_F16_UNIT, claim, cst, exp2neg, load4, LOG2E, madd, ptr, softcapRows, word } from './common';
import { BM, BN, maskPadding, pvRow, pvTile, softmaxTile } from './attention';

// DECODE (DECODE_JOB in jobs.ts): [kind, q, k, v, part, scratch, scratchStride, B, Hq, Hkv, L, S, D, Dv, scale, causal, shift,
//          chunk, splits, kStride, vStride, paged, tables, lens, tableStride, kScales, vScales, f16, window, softcap, keep,
//          bias, biasB, biasH, biasI, alibi, posShift]
// q [B, Hq, L, D]; k, v: [S, D] and [S, Dv] per (batch, kv head), kStride and vStride elements apart (S·D and S·Dv when
// dense; a KV cache's capacity × D when read in place); causal: query row i sees keys 0..i + shift, and with window
// W ≥ 0 (a causal sliding window) keys i + shift − W … i + shift. Split s of a row holds its keys s·chunk … (s + 1)·chunk
// − 1 (a split wholly before the window's first key computes nothing: the merge skips it). softcap > 0 (Gemma 2): each
// score x ← softcap · tanh(x / softcap) before the window's mask (softcapV, common.ts). keep ≠ 0: a key padding mask,
// bytes [B][S] (0: batch b's key j is padding for every head and row; paged: S the longest row's keys, j a row's own).
// bias ≠ 0 and alibi ≠ 0 (dense only): an additive bias and ALiBi slopes as the ATTENTION job takes them
// (asm/attention.ts), after soft-capping.
// paged = P ≠ 0 (PagedAttention, Kwon et al. 2023): k and v are block pools [blocks][Hkv][P][D or Dv]; key j of row b
// is in block tables[b · tableStride + j / P] at j % P, so a tile of keys never crosses a block (chunk is a multiple
// of P); row b holds lens[b] keys and its L queries are its last L positions (shift = lens[b] − L). Nothing is
// gathered: each tile reads its block where the cache keeps it.
// kScales ≠ 0 (paged only: the int8 cache, cache/paged.ts): k and v are int8 with one f32 scale per slot (kScales and
// vScales [blocks][Hkv][P]), k_j = kq_j · ks_j; a tile's keys and values are widened into the thread's scratch (after
// its score tile: [BN][D] then [BN][Dv] floats) and read from there — a quarter of f32's bytes from the pool.
// f16 ≠ 0 (an f16 KV cache, dense or paged: cache/contiguous.ts, paged.ts): k and v are f16 bits, widened in the loops
// (load4: two operations per four elements, no scratch), and the host has multiplied q by 2^112 (F16_UNIT) —
// the scale load4's widened keys leave out; each tile's p is multiplied by it before P·V. Half of f32's bytes.
// part: o [units][R4][Dv], then m [units][R4], then l [units][R4], with units = B·Hkv·splits (unit (b·Hkv + kvh)·splits
// + split) and R4 = G·L rounded up to 4; row r of a unit is head kvh·G + r / L, query i = r % L.
// The threads claim units in turn (claim(); all the same size, yet one thread may run slower). Per thread scratch:
// s [BM][BN], m [R4], l [R4] (acc is part).
export function decode(job: usize, t: i32, T: i32): void {
  const f16 = word(job, 27);
  if (f16) decodeOf<u16>(job, t, T);
  else decodeOf<f32>(job, t, T);
}

// the DECODE job over a cache of elements E: f32 (dense, paged, or int8 pages widened), or u16 — f16 bits (dense)
function decodeOf<E>(job: usize, t: i32, T: i32): void {
  const q = ptr(job, 1), k = ptr(job, 2), v = ptr(job, 3), part = ptr(job, 4);
  const B = word(job, 7), Hq = word(job, 8), Hkv = word(job, 9), L = word(job, 10), S = word(job, 11);
  const D = word(job, 12), Dv = word(job, 13), scale = reinterpret<f32>(word(job, 14));
  const causal = word(job, 15), shift = word(job, 16), chunk = word(job, 17), splits = word(job, 18);
  const kStride = <usize>word(job, 19), vStride = <usize>word(job, 20);
  const paged = word(job, 21), tables = ptr(job, 22), lens = ptr(job, 23), tableStride = word(job, 24);
  const kScales = ptr(job, 25), vScales = ptr(job, 26), int8 = sizeof<E>() == 4 && kScales != 0;
  const window = word(job, 28), softcap = reinterpret<f32>(word(job, 29)), keep = ptr(job, 30);
  const bias = ptr(job, 31), biasB = <usize>word(job, 32), biasH = <usize>word(job, 33), biasI = <usize>word(job, 34);
  const alibi = ptr(job, 35), posShift = word(job, 36);
  const elem: usize = int8 ? 1 : sizeof<E>(); // bytes a cached element
  const f16 = cst(C_F16_MASK), unit = cst(C_F16_UNIT);
  const G = Hq / Hkv, R = G * L, R4 = (R + 3) & ~3;
  const units = B * Hkv * splits;
  const scratch = ptr(job, 5), scratchStride = <usize>word(job, 6);
  const sT = scratch + <usize>t * scratchStride; // [BM][BN]
  const kT = sT + (<usize>(BM * BN) << 2), vT = kT + (<usize>(BN * D) << 2); // int8: the tile widened, [BN][D], [BN][Dv]
  for (let u = claim(-1, T); u < units; u = claim(u, T)) {
    const bkv = u / splits, split = u % splits, j0Unit = split * chunk;
    const b = bkv / Hkv, kvh = bkv % Hkv;
    const Sb = paged ? <i32>load<u32>(lens + (<usize>b << 2)) : S; // this row's keys
    const shiftB = paged ? Sb - L : shift;
    const jEnd = min(Sb, j0Unit + chunk);
    const qGroup = q + (<usize>(b * Hq + kvh * G) * <usize>L * <usize>D << 2); // G heads × L rows, consecutive
    const acc = part + (<usize>u * <usize>R4 * <usize>Dv << 2);
    const mRow = part + (<usize>units * <usize>R4 * <usize>Dv << 2) + (<usize>u * <usize>R4 << 2);
    const lRow = mRow + (<usize>units * <usize>R4 << 2);
    for (let r = 0; r < R4; r++) { store<f32>(mRow + (<usize>r << 2), -Infinity); store<f32>(lRow + (<usize>r << 2), 0); }
    for (let d = 0; d < R4 * Dv; d += 4) v128.store(acc + (<usize>d << 2), f32x4.splat(0));
    // kHead, vHead: where key jBase lives — the head's first key (dense), or the first key of the tile's block (paged)
    let kHead = k + <usize>bkv * kStride * elem, vHead = v + <usize>bkv * vStride * elem, jBase = 0, slot: usize = 0;
    // a window: row i's first key is i + shift − W, so no row reads a key before query 0's (firstKey) and keys before
    // a row's own first are masked in the tile (maskBefore)
    for (let j0 = window >= 0 ? max(j0Unit, shiftB - window) : j0Unit; j0 < jEnd;) {
      let tileEnd = min(jEnd, j0 + BN);
      if (paged) {
        const block = j0 / paged;
        jBase = block * paged;
        tileEnd = min(tileEnd, jBase + paged);
        slot = <usize>(load<u32>(tables + (<usize>(b * tableStride + block) << 2)) * <u32>Hkv + <u32>kvh) * <usize>paged;
        kHead = k + slot * <usize>D * elem;
        vHead = v + slot * <usize>Dv * elem;
      }
      const n = tileEnd - j0; // keys of this tile
      const nPad = (n + 3) & ~3; // keys computed (groups of 4)
      // keys counted from kBase (jBase, or j0 once an int8 tile is widened into kT / vT)
      let kBase = jBase, kRows = kHead, vRows = vHead + <usize>(j0 - jBase) * <usize>Dv * elem;
      if (int8) {
        const first = slot + <usize>(j0 - jBase);
        widenRows(kHead + <usize>(j0 - jBase) * <usize>D, kScales + (first << 2), kT, n, D);
        widenRows(vRows, vScales + (first << 2), vT, n, Dv);
        kBase = j0; kRows = kT; vRows = vT;
      }
      for (let r0 = 0; r0 < R; r0 += BM) {
        // the block's rows: BM, or fewer at the end of the group (one for multi-head attention's decode: G = L = 1)
        const rows = min(BM, R - r0);
        let rr = 0;
        if (rows == 3) { // a GQA group of 3: each key loaded once for the three
          const qr = qGroup + (<usize>r0 * <usize>D << 2);
          scoreRows3<E>(qr, kRows, j0 - kBase, nPad, tileEnd - kBase, D, scale, lastKey(r0, causal, tileEnd, L, shiftB) - kBase,
            lastKey(r0 + 1, causal, tileEnd, L, shiftB) - kBase, lastKey(r0 + 2, causal, tileEnd, L, shiftB) - kBase, sT, f16);
          rr = 3;
        }
        for (; rr + 2 <= rows; rr += 2) { // two rows at a time: each key loaded once for both
          const r = r0 + rr, qr = qGroup + (<usize>r * <usize>D << 2), s = sT + (<usize>(rr * BN) << 2);
          scoreRows2<E>(qr, kRows, j0 - kBase, nPad, tileEnd - kBase, D, scale,
            lastKey(r, causal, tileEnd, L, shiftB) - kBase, lastKey(r + 1, causal, tileEnd, L, shiftB) - kBase, s, f16);
        }
        if (rr < rows) {
          const r = r0 + rr;
          scoreRow<E>(qGroup + (<usize>r * <usize>D << 2), kRows, j0 - kBase, nPad, tileEnd - kBase, D, scale,
            lastKey(r, causal, tileEnd, L, shiftB) - kBase, sT + (<usize>(rr * BN) << 2), f16);
        }
        if (softcap > 0) softcapRows(sT, rows, nPad, softcap);
        for (let rr = 0; rr < rows && (bias != 0 || alibi != 0); rr++) { // row r: head kvh·G + r / L, query i = r % L
          const h = kvh * G + (r0 + rr) / L, i = (r0 + rr) % L, slope = alibi ? load<f32>(alibi + (<usize>h << 2)) : 0;
          const row = bias ? bias + ((<usize>b * biasB + <usize>h * biasH + <usize>i * biasI + <usize>j0) << 2) : 0;
          biasRow(sT + (<usize>(rr * BN) << 2), row, n, slope, i + posShift, j0, nPad);
        }
        if (window >= 0) maskBefore(sT, r0, rows, j0, nPad, L, shiftB - window);
        if (keep) maskPadding(sT, keep + <usize>b * <usize>S + <usize>j0, n, rows);
        const a = acc + (<usize>(r0 * Dv) << 2), vTile = vRows;
        softmaxTile(sT, a, mRow + (<usize>r0 << 2), lRow + (<usize>r0 << 2), nPad, Dv, 0, rows);
        if (sizeof<E>() == 2) scaleRows(sT, rows, nPad, unit); // f16 values: p · 2^112 (load4)
        if (rows == 1) {
          pvRow<E>(sT, vTile, a, n, Dv, f16);
        } else if (rows == 3 && Dv % 8 == 0) { // a GQA group of 3 (SmolLM's 9 / 3 heads): no fourth row to carry
          pvTile3<E>(sT, vTile, a, n, Dv, f16);
        } else {
          // 2–3 rows take the 4-row tile with p = 0 in the rest (their acc rows are never read)
          for (let rr = rows; rr < BM; rr++) for (let c = 0; c < nPad; c += 4) v128.store(sT + (<usize>(rr * BN + c) << 2), f32x4.splat(0));
          pvTile<E>(sT, vTile, a, n, Dv, f16);
        }
      }
      j0 = tileEnd;
    }
  }
}

// pvTile for three rows (Dv a multiple of 8): acc[r] += Σ_c p[r][c] v_c, 3 rows × 8 lanes of acc in registers while the
// keys stream past. Each lane sums its keys in pvTile's order with madd, so a row's result does not depend on which
// of the two took it.
@inline
function pvTile3<E>(sT: usize, vTile: usize, acc: usize, n: i32, Dv: i32, f16Mask: v128): void {
  const rowBytes = <usize>BN << 2, accRow = <usize>Dv << 2, vStride = <usize>Dv * sizeof<E>(), half = 4 * sizeof<E>();
  for (let dc = 0; dc < Dv; dc += 8) {
    const a = acc + (<usize>dc << 2);
    let a0 = v128.load(a), a1 = v128.load(a, 16);
    let b0 = v128.load(a + accRow), b1 = v128.load(a + accRow, 16);
    let c0 = v128.load(a + 2 * accRow), c1 = v128.load(a + 2 * accRow, 16);
    let vp = vTile + <usize>dc * sizeof<E>();
    for (let c = 0; c < n; c++) {
      const v0 = load4<E>(vp, f16Mask), v1 = load4<E>(vp + half, f16Mask);
      vp += vStride;
      const s = sT + (<usize>c << 2);
      const p0 = v128.load32_splat(s), p1 = v128.load32_splat(s + rowBytes), p2 = v128.load32_splat(s + 2 * rowBytes);
      a0 = madd(p0, v0, a0); a1 = madd(p0, v1, a1);
      b0 = madd(p1, v0, b0); b1 = madd(p1, v1, b1);
      c0 = madd(p2, v0, c0); c1 = madd(p2, v1, c1);
    }
    v128.store(a, a0); v128.store(a, a1, 16);
    v128.store(a + accRow, b0); v128.store(a + accRow, b1, 16);
    v128.store(a + 2 * accRow, c0); v128.store(a + 2 * accRow, c1, 16);
  }
}

// the first `rows` rows of the score tile (nPad columns) times u
@inline
function scaleRows(sT: usize, rows: i32, nPad: i32, u: v128): void {
  for (let r = 0; r < rows; r++) {
    const s = sT + (<usize>(r * BN) << 2);
    for (let c = 0; c < nPad; c += 4) v128.store(s + (<usize>c << 2), f32x4.mul(v128.load(s + (<usize>c << 2)), u));
  }
}

// a window's edge: in the score rows of group rows r0 … r0 + rows − 1 (query i = r % L, its first key i + first0), −∞ for
// the keys of the tile (from j0, nPad of them) before a row's first key
@inline
function maskBefore(sT: usize, r0: i32, rows: i32, j0: i32, nPad: i32, L: i32, first0: i32): void {
  for (let rr = 0; rr < rows; rr++) {
    const before = min(nPad, (r0 + rr) % L + first0 - j0);
    for (let c = 0; c < before; c++) store<f32>(sT + (<usize>(rr * BN + c) << 2), -Infinity);
  }
}

// row r's last key in a tile that ends before tileEnd (the tile reads nothing before it or past tileEnd): causal, query
// row i = r % L sees keys up to i + shift
@inline
function lastKey(r: i32, causal: i32, tileEnd: i32, L: i32, shift: i32): i32 {
  return causal ? min(tileEnd - 1, r % L + shift) : tileEnd - 1;
}

// n int8 rows of `width` at src, row c times scales[c], into the f32 rows at dst (width a multiple of 16)
@inline
function widenRows(src: usize, scales: usize, dst: usize, n: i32, width: i32): void {
  for (let c = 0; c < n; c++) {
    const s = v128.load32_splat(scales + (<usize>c << 2));
    const from = src + <usize>c * <usize>width, to = dst + (<usize>(c * width) << 2);
    for (let d = 0; d < width; d += 16) {
      const h = v128.load(from + <usize>d);
      const lo = i16x8.extend_low_i8x16_s(h), hi = i16x8.extend_high_i8x16_s(h);
      const o = to + (<usize>d << 2);
      v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), s));
      v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), s), 16);
      v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), s), 32);
      v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), s), 48);
    }
  }
}

// s[c] = scale · q · k_{j0+c} for c < nPad, four keys at a time (four f32x4 accumulators over d, then one transpose
// adds them across lanes); keys past `last` (the causal limit or the chunk's end) get −∞. Keys from S on are never read.
// Keys are E (f32, or f16 bits: load4); q is f32.
@inline
function scoreRow<E>(qr: usize, kHead: usize, j0: i32, nPad: i32, S: i32, D: i32, scale: f32, last: i32, s: usize, f16: v128): void {
  const sc = f32x4.splat(scale * LOG2E);
  const rowBytes = <usize>D * sizeof<E>(), qBytes = <usize>D << 2;
  for (let c = 0; c < nPad; c += 4) {
    const j = j0 + c;
    const k0 = kHead + <usize>min(j, S - 1) * rowBytes, k1 = kHead + <usize>min(j + 1, S - 1) * rowBytes;
    const k2 = kHead + <usize>min(j + 2, S - 1) * rowBytes, k3 = kHead + <usize>min(j + 3, S - 1) * rowBytes;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let d: usize = 0; d < qBytes; d += 16) {
      const x = v128.load(qr + d), e = d * sizeof<E>() >> 2;
      a0 = madd(x, load4<E>(k0 + e, f16), a0);
      a1 = madd(x, load4<E>(k1 + e, f16), a1);
      a2 = madd(x, load4<E>(k2 + e, f16), a2);
      a3 = madd(x, load4<E>(k3 + e, f16), a3);
    }
    v128.store(s + (<usize>c << 2), f32x4.mul(sum4(a0, a1, a2, a3), sc));
    if (j + 3 > last) for (let x = max(0, last + 1 - j); x < 4; x++) store<f32>(s + (<usize>(c + x) << 2), -Infinity);
  }
}

// scoreRow for two consecutive query rows (q rows D floats apart, score rows BN apart) with their own causal limits:
// each key is loaded once for both. Every lane sums in the same order as scoreRow, so a row's scores do not depend
// on which of the two computed them.
@inline
function scoreRows2<E>(qr: usize, kHead: usize, j0: i32, nPad: i32, S: i32, D: i32, scale: f32, last0: i32, last1: i32,
  s: usize, f16: v128): void {
  const sc = f32x4.splat(scale * LOG2E);
  const rowBytes = <usize>D * sizeof<E>(), qBytes = <usize>D << 2;
  for (let c = 0; c < nPad; c += 4) {
    const j = j0 + c;
    const k0 = kHead + <usize>min(j, S - 1) * rowBytes, k1 = kHead + <usize>min(j + 1, S - 1) * rowBytes;
    const k2 = kHead + <usize>min(j + 2, S - 1) * rowBytes, k3 = kHead + <usize>min(j + 3, S - 1) * rowBytes;
    scoreStep2<E>(qr, qBytes, k0, k1 - k0, k2 - k0, k3 - k0, f16, sc, s, c, j, last0, last1);
  }
}

// one step of scoreRows2: keys k0, k0 + dk1, k0 + dk2, k0 + dk3 against the two q rows (qBytes apart), their scores
// stored at column c of the two score rows (not inlined, for scoreStep3's reason)
function scoreStep2<E>(qr: usize, qBytes: usize, k0: usize, dk1: usize, dk2: usize, dk3: usize, f16: v128, sc: v128, s: usize,
  c: i32, j: i32, last0: i32, last1: i32): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  let kp = k0;
  for (let qp = qr, end = qr + qBytes; qp < end; qp += 16, kp += 4 * sizeof<E>()) {
    const x = v128.load(qp), y = v128.load(qp + qBytes);
    const v0 = load4<E>(kp, f16), v1 = load4<E>(kp + dk1, f16), v2 = load4<E>(kp + dk2, f16), v3 = load4<E>(kp + dk3, f16);
    a0 = madd(x, v0, a0); b0 = madd(y, v0, b0);
    a1 = madd(x, v1, a1); b1 = madd(y, v1, b1);
    a2 = madd(x, v2, a2); b2 = madd(y, v2, b2);
    a3 = madd(x, v3, a3); b3 = madd(y, v3, b3);
  }
  const s1 = s + (<usize>BN << 2);
  v128.store(s + (<usize>c << 2), f32x4.mul(sum4(a0, a1, a2, a3), sc));
  v128.store(s1 + (<usize>c << 2), f32x4.mul(sum4(b0, b1, b2, b3), sc));
  if (j + 3 > last0) for (let x = max(0, last0 + 1 - j); x < 4; x++) store<f32>(s + (<usize>(c + x) << 2), -Infinity);
  if (j + 3 > last1) for (let x = max(0, last1 + 1 - j); x < 4; x++) store<f32>(s1 + (<usize>(c + x) << 2), -Infinity);
}

// scoreRow for three consecutive query rows (score rows BN apart), three keys a step: 9 accumulators, so that the fused
// multiply-adds of a step do not wait on each other (the two- and one-row forms: 8 and 4, with the keys read twice), and
// each key is loaded once for the three rows. Lanes sum in scoreRow's order (the same scores). Keys c … c + 2 of a step
// are written as one vector whose fourth lane the next step overwrites; past the tile's last 4 columns, lane by lane.
@inline
function scoreRows3<E>(qr: usize, kHead: usize, j0: i32, nPad: i32, S: i32, D: i32, scale: f32, last0: i32, last1: i32,
  last2: i32, s: usize, f16: v128): void {
  const sc = f32x4.splat(scale * LOG2E);
  const rowBytes = <usize>D * sizeof<E>(), qBytes = <usize>D << 2;
  for (let c = 0; c < nPad; c += 3) {
    const j = j0 + c;
    const k0 = kHead + <usize>min(j, S - 1) * rowBytes, k1 = kHead + <usize>min(j + 1, S - 1) * rowBytes;
    const k2 = kHead + <usize>min(j + 2, S - 1) * rowBytes;
    scoreStep3<E>(qr, qBytes, k0, k1 - k0, k2 - k0, f16, sc, s, c, nPad, j, last0, last1, last2);
  }
}

// one step of scoreRows3: keys k0, k0 + dk1, k0 + dk2 against the three q rows (qBytes apart), their scores stored
// at column c of the three score rows. A function of its own (not inlined): inside the tile loop V8 ran short of
// registers and recomputed the key addresses in the dot product's loop.
function scoreStep3<E>(qr: usize, qBytes: usize, k0: usize, dk1: usize, dk2: usize, f16: v128, sc: v128, s: usize, c: i32,
  nPad: i32, j: i32, last0: i32, last1: i32, last2: i32): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0);
  let e0 = f32x4.splat(0), e1 = f32x4.splat(0), e2 = f32x4.splat(0);
  let kp = k0;
  for (let qp = qr, end = qr + qBytes; qp < end; qp += 16, kp += 4 * sizeof<E>()) {
    const x = v128.load(qp), y = v128.load(qp + qBytes), z = v128.load(qp + 2 * qBytes);
    let v = load4<E>(kp, f16); a0 = madd(x, v, a0); b0 = madd(y, v, b0); e0 = madd(z, v, e0);
    v = load4<E>(kp + dk1, f16); a1 = madd(x, v, a1); b1 = madd(y, v, b1); e1 = madd(z, v, e1);
    v = load4<E>(kp + dk2, f16); a2 = madd(x, v, a2); b2 = madd(y, v, b2); e2 = madd(z, v, e2);
  }
  const zero = f32x4.splat(0), s1 = s + (<usize>BN << 2), s2 = s1 + (<usize>BN << 2);
  storeScores3(s, c, nPad, f32x4.mul(sum4(a0, a1, a2, zero), sc), j, last0);
  storeScores3(s1, c, nPad, f32x4.mul(sum4(b0, b1, b2, zero), sc), j, last1);
  storeScores3(s2, c, nPad, f32x4.mul(sum4(e0, e1, e2, zero), sc), j, last2);
}

// lanes 0–2 of x as the scores of columns c … c + 2 < nPad of score row s, −∞ for keys past `last` (key j at column c)
@inline
function storeScores3(s: usize, c: i32, nPad: i32, x: v128, j: i32, last: i32): void {
  const at = s + (<usize>c << 2);
  if (c + 4 <= nPad) v128.store(at, x);
  else { // the last step: only columns below nPad (the row's last column may be the tile's)
    store<f32>(at, f32x4.extract_lane(x, 0));
    if (c + 1 < nPad) store<f32>(at, f32x4.extract_lane(x, 1), 4);
    if (c + 2 < nPad) store<f32>(at, f32x4.extract_lane(x, 2), 8);
  }
  if (j + 2 > last) for (let i = max(0, last + 1 - j); i < 3 && c + i < nPad; i++) store<f32>(at + (<usize>i << 2), -Infinity);
}

// [Σa0, Σa1, Σa2, Σa3]: interleave pairs, add, interleave halves, add
@inline
function sum4(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const u = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 4, 1, 5), v128.shuffle<f32>(a0, a1, 2, 6, 3, 7));
  const w = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 4, 1, 5), v128.shuffle<f32>(a2, a3, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(u, w, 0, 1, 4, 5), v128.shuffle<f32>(u, w, 2, 3, 6, 7));
}

// MERGE (MERGE_JOB in jobs.ts): [kind, part, out, lse, B, Hq, Hkv, L, Dv, splits] — part as the DECODE job left it.
// For each query row (b, h, i), over the chunks s that saw a key (l_s ≠ 0; a NaN l_s counts, so NaN reaches the row):
//   M = max_s m_s,   e_s = 2^{m_s − M} l_s,   l = Σ_s e_s,   o = Σ_s (e_s / l) o_s,   lse = M · ln 2 + ln l
// o is a convex combination of the normalised o_s (finite wherever the answer is); no chunk saw a key → o = 0,
// lse = −∞. 2^x as the softmax computes it (exp2neg); the threads claim units of MERGE_ROWS rows in turn.
const MERGE_ROWS: i32 = 8;
export function merge(job: usize, t: i32, T: i32): void {
  const part = ptr(job, 1), out = ptr(job, 2), lse = ptr(job, 3);
  const B = word(job, 4), Hq = word(job, 5), Hkv = word(job, 6), L = word(job, 7), Dv = word(job, 8), splits = word(job, 9);
  const G = Hq / Hkv, R4 = (G * L + 3) & ~3, units = B * Hkv * splits;
  const mAt = part + (<usize>units * <usize>R4 * <usize>Dv << 2), lAt = mAt + (<usize>units * <usize>R4 << 2);
  const rows = B * Hq * L;
  for (let u = claim(-1, T); u < (rows + MERGE_ROWS - 1) / MERGE_ROWS; u = claim(u, T)) mergeRows(part, out, lse, u * MERGE_ROWS,
    min(rows, (u + 1) * MERGE_ROWS), Hq, Hkv, L, Dv, splits, G, R4, mAt, lAt);
}

// rows r0 … r1 − 1 of the merge
function mergeRows(part: usize, out: usize, lse: usize, r0: i32, r1: i32, Hq: i32, Hkv: i32, L: i32, Dv: i32, splits: i32, G: i32,
  R4: i32, mAt: usize, lAt: usize): void {
  for (let row = r0; row < r1; row++) {
    const i = row % L, h = (row / L) % Hq, b = row / (L * Hq);
    const u0 = (b * Hkv + h / G) * splits, rr = (h % G) * L + i;
    const o = out + (<usize>row * <usize>Dv << 2);
    for (let d = 0; d < Dv; d += 4) v128.store(o + (<usize>d << 2), f32x4.splat(0));
    let M: f32 = -Infinity;
    for (let s = 0; s < splits; s++) {
      const at = <usize>((u0 + s) * R4 + rr) << 2;
      if (load<f32>(lAt + at) != 0) M = max(M, load<f32>(mAt + at));
    }
    if (M == -Infinity) { store<f32>(lse + (<usize>row << 2), -Infinity); continue; }
    let l: f32 = 0;
    for (let s = 0; s < splits; s++) l += chunkWeight(mAt, lAt, <usize>((u0 + s) * R4 + rr) << 2, M);
    const inv = f32x4.splat(1 / l);
    for (let s = 0; s < splits; s++) {
      const e = chunkWeight(mAt, lAt, <usize>((u0 + s) * R4 + rr) << 2, M);
      if (e == 0) continue;
      const w = f32x4.mul(f32x4.splat(e), inv), os = part + (<usize>((u0 + s) * R4 + rr) * <usize>Dv << 2);
      for (let d: usize = 0; d < <usize>Dv << 2; d += 16) v128.store(o + d, madd(w, v128.load(os + d), v128.load(o + d)));
    }
    store<f32>(lse + (<usize>row << 2), <f32>(<f64>M * Math.LN2 + Math.log(<f64>l)));
  }
}

// e_s = 2^{m_s − M} l_s of the chunk whose m and l are `at` bytes into their arrays (0 when it saw no key)
@inline
function chunkWeight(mAt: usize, lAt: usize, at: usize, M: f32): f32 {
  const ls = load<f32>(lAt + at);
  return ls == 0 ? 0 : f32x4.extract_lane(exp2neg(f32x4.splat(load<f32>(mAt + at) - M)), 0) * ls;
}
