// The two steps every tiled CPU kernel shares (flash forward, split-K decode):
//   scoreRow:  s_c = scale · q_i·k_{j0+c}, then score modifiers, then the mask (−∞ where not allowed);
//   updateRow: the online softmax of Milakov & Gimelshein (2018) / FlashAttention (Dao et al. 2022):
//              m' = max(m, max_c s_c);  α = e^{m − m'};  l' = α·l + Σ_c e^{s_c − m'};  acc' = α·acc + Σ_c e^{s_c − m'} v_c
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
  // a NaN score is not a masked key: it makes m NaN, and from there l, acc, o and lse (as torch gives)
  let mx = -Infinity;
  for (let c = 0; c < n; c++) {
    if (s[c] > mx) mx = s[c];
    else if (Number.isNaN(s[c])) { mx = NaN; break; }
  }
  const mOld = st.m[r];
  const mNew = mx > mOld || Number.isNaN(mx) ? mx : mOld;
  if (mNew === -Infinity) return; // every key so far is masked: nothing to add
  // α = e^{m − m'} rescales what was accumulated under the old max (0 when the row was empty)
  const alpha = Math.exp(mOld - mNew);
  const Dv = p.Dv;
  const acc = st.acc;
  const a0 = r * Dv;
  if (alpha !== 1) for (let d = 0; d < Dv; d++) acc[a0 + d] *= alpha;
  let l = st.l[r] * alpha;
  let sps = st.sps ? st.sps[r] * alpha : 0;
  let spd = st.spd ? st.spd[r] * alpha : 0;
  const v = p.v;
  const kvh = Math.floor(h / (p.Hq / p.Hkv));
  const vOff = ((b * p.Hkv + kvh) * p.S + j0) * Dv;
  // p_c = e^{s_c − m'};  l += p_c  (statistics first, while s still holds the scores; then s holds p)
  for (let c = 0; c < n; c++) {
    const pc = Math.exp(s[c] - mNew);
    if (pc !== 0) { // masked (s = −∞) or underflow contributes nothing, and 0·(−∞) must not reach sps
      l += pc;
      if (st.sps) { sps += pc * s[c]; spd += pc * Math.abs(pos - (j0 + c)); }
    }
    s[c] = pc;
  }
  // acc += Σ_c p_c v_c, four keys at a time so each acc_d is loaded and stored once per four values
  let c = 0;
  for (; c + 3 < n; c += 4) {
    const [p0, p1, p2, p3] = [s[c], s[c + 1], s[c + 2], s[c + 3]];
    const v0 = vOff + c * Dv;
    const [v1, v2, v3] = [v0 + Dv, v0 + 2 * Dv, v0 + 3 * Dv];
    for (let d = 0; d < Dv; d++) acc[a0 + d] += p0 * v[v0 + d] + p1 * v[v1 + d] + p2 * v[v2 + d] + p3 * v[v3 + d];
  }
  for (; c < n; c++) {
    const pc = s[c];
    if (pc === 0) continue;
    const vc = vOff + c * Dv;
    for (let d = 0; d < Dv; d++) acc[a0 + d] += pc * v[vc + d];
  }
  st.m[r] = mNew;
  st.l[r] = l;
  if (st.sps) st.sps[r] = sps;
  if (st.spd) st.spd[r] = spd;
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
