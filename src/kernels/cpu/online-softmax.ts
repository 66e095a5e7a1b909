// The steps every CPU kernel shares (flash forward, split-K decode, paged attention; the WebAssembly kernel's host merge):
//   scoreRow:  s_c = scale · q_i·k_{j0+c}, then score modifiers, then the mask (−∞ where not allowed);
//   softmaxStep + addValues (updateRow for a dense problem): the online softmax of Milakov & Gimelshein (2018) /
//              FlashAttention (Dao et al. 2022), one implementation for every kernel (paged reads v through its pool):
//              m' = max(m, max_c s_c);  α = e^{m − m'};  l' = α·l + Σ_c e^{s_c − m'};  acc' = α·acc + Σ_c e^{s_c − m'} v_c
//   finishRow: o = acc / l, lse = m + log l;   mergeSplits: partial results over key splits, through their lse.
// The state also carries Σ p·s and Σ p·|i' − j| (rescaled by α the same way) for the entropy and distance statistics.
import type { SdpaProblem } from '../contract.js';

/** Running softmax state of `rows` query rows: max m, sum l, unnormalised output acc [rows, Dv]. */
export class RowState {
  readonly m: Float64Array;
  readonly l: Float64Array;
  readonly acc: Float64Array;
  /** Σ_j p_j s_j and Σ_j p_j |i' − j| (unnormalised), only when statistics are asked for. */
  readonly sps: Float64Array | null;
  readonly spd: Float64Array | null;

  constructor(readonly rows: number, readonly Dv: number, stats: boolean) {
    this.m = new Float64Array(rows);
    this.l = new Float64Array(rows);
    this.acc = new Float64Array(rows * Dv);
    this.sps = stats ? new Float64Array(rows) : null;
    this.spd = stats ? new Float64Array(rows) : null;
  }

  /** Bytes of this state (the tiled kernel's scratch). */
  get bytes(): number {
    return this.m.byteLength + this.l.byteLength + this.acc.byteLength + (this.sps?.byteLength ?? 0) + (this.spd?.byteLength ?? 0);
  }

  reset(): void {
    this.m.fill(-Infinity);
    this.l.fill(0);
    this.acc.fill(0);
    this.sps?.fill(0);
    this.spd?.fill(0);
  }
}

/**
 * s[c] for keys j0..j0+n−1 of query i (batch b, query head h). `partial`: the tile is not fully allowed.
 * `raw`, when given, receives the scaled scores before modifiers (the backward pass needs them for soft-capping).
 */
export function scoreRow(p: SdpaProblem, b: number, h: number, i: number, j0: number, n: number, s: Float64Array, partial: boolean,
  raw?: Float64Array): void {
  const { D, q, k, scale } = p;
  const kvh = Math.floor(h / (p.Hq / p.Hkv)); // GQA: query head h reads kv head ⌊h / G⌋
  const qOff = ((b * p.Hq + h) * p.L + i) * D;
  const kOff = ((b * p.Hkv + kvh) * p.S + j0) * D;
  // s_c = scale · Σ_d q_id k_jd, four keys at a time so each q_id is loaded once for four products
  let c = 0;
  for (; c + 3 < n; c += 4) {
    const [k0, k1, k2, k3] = [kOff + c * D, kOff + (c + 1) * D, kOff + (c + 2) * D, kOff + (c + 3) * D];
    let d0 = 0, d1 = 0, d2 = 0, d3 = 0;
    for (let d = 0; d < D; d++) {
      const x = q[qOff + d];
      d0 += x * k[k0 + d]; d1 += x * k[k1 + d]; d2 += x * k[k2 + d]; d3 += x * k[k3 + d];
    }
    s[c] = scale * d0; s[c + 1] = scale * d1; s[c + 2] = scale * d2; s[c + 3] = scale * d3;
  }
  for (; c < n; c++) {
    const kc = kOff + c * D;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[qOff + d] * k[kc + d];
    s[c] = scale * dot;
  }
  if (raw) raw.set(s.subarray(0, n));
  if (p.mods) p.mods.apply(s, b, h, i, j0, n);
  if (partial && p.mask) p.mask.maskRow(s, b, h, i, j0, n);
}

/** Folds scores s[0..n) of keys j0.. into row r of `st` (online softmax); s is overwritten with p. `pos` = i'. */
export function updateRow(p: SdpaProblem, st: RowState, r: number, s: Float64Array, n: number, b: number, h: number, j0: number, pos: number): void {
  if (!softmaxStep(st, r, s, n, pos - j0)) return; // every key so far is masked: nothing to add
  const kvh = Math.floor(h / (p.Hq / p.Hkv)); // GQA: query head h reads kv head ⌊h / G⌋
  addValues(st.acc, r * p.Dv, s, n, p.v, ((b * p.Hkv + kvh) * p.S + j0) * p.Dv, p.Dv);
}

/**
 * The online-softmax step of row r for the scores s[0..n) of one tile — the update every CPU kernel shares:
 *   m' = max(m, max_c s_c);  α = e^{m − m'};  l, acc (and the statistics) ← α ·;  p_c = e^{s_c − m'} over s;  l += Σ_c p_c
 * Returns false when no key so far is allowed (nothing to add; the state is unchanged). `dist0` = i' − j0, for the
 * mean-distance statistic. A NaN score is not a masked key: it makes m NaN, and from there l, acc, o and lse (as torch).
 */
export function softmaxStep(st: RowState, r: number, s: Float64Array, n: number, dist0 = 0): boolean {
  let mx = -Infinity;
  for (let c = 0; c < n; c++) {
    if (s[c] > mx) mx = s[c];
    else if (Number.isNaN(s[c])) { mx = NaN; break; }
  }
  const mOld = st.m[r];
  const mNew = mx > mOld || Number.isNaN(mx) ? mx : mOld;
  if (mNew === -Infinity) return false;
  // α = e^{m − m'} rescales what was accumulated under the old max (0 when the row was empty)
  const alpha = Math.exp(mOld - mNew);
  const Dv = st.Dv;
  const a0 = r * Dv;
  if (alpha !== 1) for (let d = 0; d < Dv; d++) st.acc[a0 + d] *= alpha;
  let l = st.l[r] * alpha;
  let sps = st.sps ? st.sps[r] * alpha : 0;
  let spd = st.spd ? st.spd[r] * alpha : 0;
  // p_c = e^{s_c − m'};  l += p_c  (statistics first, while s still holds the scores; then s holds p)
  for (let c = 0; c < n; c++) {
    const pc = Math.exp(s[c] - mNew);
    if (pc !== 0) { // masked (s = −∞) or underflow contributes nothing, and 0·(−∞) must not reach sps
      l += pc;
      if (st.sps) { sps += pc * s[c]; spd += pc * Math.abs(dist0 - c); }
    }
    s[c] = pc;
  }
  st.m[r] = mNew;
  st.l[r] = l;
  if (st.sps) st.sps[r] = sps;
  if (st.spd) st.spd[r] = spd;
  return true;
}

/** acc[a0 + d] += Σ_c p_c · v[vOff + c·Dv + d] for c < n: the values of n consecutive keys, rows Dv apart. */
export function addValues(acc: Float64Array, a0: number, p: Float64Array, n: number, v: ArrayLike<number>, vOff: number, Dv: number): void {
  // four keys at a time, so each acc_d is loaded and stored once per four values
  let c = 0;
  for (; c + 3 < n; c += 4) {
    const [p0, p1, p2, p3] = [p[c], p[c + 1], p[c + 2], p[c + 3]];
    const v0 = vOff + c * Dv;
    const [v1, v2, v3] = [v0 + Dv, v0 + 2 * Dv, v0 + 3 * Dv];
    for (let d = 0; d < Dv; d++) acc[a0 + d] += p0 * v[v0 + d] + p1 * v[v1 + d] + p2 * v[v2 + d] + p3 * v[v3 + d];
  }
  for (; c < n; c++) {
    const pc = p[c];
    if (pc === 0) continue;
    const vc = vOff + c * Dv;
    for (let d = 0; d < Dv; d++) acc[a0 + d] += pc * v[vc + d];
  }
}

/** Writes row r's result: o = acc / l, lse = m + log l; a row with l = 0 gives o = 0, lse = −∞ (never NaN). */
export function finishRow(st: RowState, r: number, out: Float32Array, outOff: number, lse: Float32Array, row: number,
  entropy?: Float32Array, meanDistance?: Float32Array): void {
  const l = st.l[r];
  const Dv = st.Dv;
  if (l === 0) {
    out.fill(0, outOff, outOff + Dv);
    lse[row] = -Infinity;
    if (entropy) entropy[row] = 0;
    if (meanDistance) meanDistance[row] = 0;
    return;
  }
  for (let d = 0; d < Dv; d++) out[outOff + d] = st.acc[r * Dv + d] / l;
  const lseRow = st.m[r] + Math.log(l);
  lse[row] = lseRow;
  // H(p) = −Σ p log p = −Σ p (s − lse) = lse − E_p[s]
  if (entropy) entropy[row] = lseRow - st.sps![r] / l;
  if (meanDistance) meanDistance[row] = st.spd![r] / l;
}

/**
 * Merges partial results over key splits (FlashDecoding): split s saw only its keys and left lse_s and its normalised
 * output o_s [Dv] (o_s at o[oAt + s · oStride]):
 *   lse = M + log Σ_s e^{lse_s − M}  (M = max_s lse_s),   o = Σ_s e^{lse_s − lse} · o_s.
 * Writes o to out[outOff …] and returns lse: −∞ with o = 0 when no split saw an allowed key; NaN when a split is NaN
 * (Math.max keeps a NaN: a NaN score is not a masked key).
 */
export function mergeSplits(lse: ArrayLike<number>, splits: number, o: ArrayLike<number>, oAt: number, oStride: number, Dv: number,
  out: Float32Array, outOff: number): number {
  let M = -Infinity;
  for (let s = 0; s < splits; s++) M = Math.max(M, lse[s]);
  if (M === -Infinity) return -Infinity; // out stays 0
  let sum = 0;
  for (let s = 0; s < splits; s++) sum += Math.exp(lse[s] - M);
  const lseRow = M + Math.log(sum);
  for (let s = 0; s < splits; s++) {
    const w = Math.exp(lse[s] - lseRow);
    if (w === 0) continue;
    const at = oAt + s * oStride;
    for (let d = 0; d < Dv; d++) out[outOff + d] += w * o[at + d];
  }
  return lseRow;
}
