// Performer FAVOR+ (Choromanski et al. 2021, https://arxiv.org/abs/2009.14794): softmax attention approximated with
// positive random features, so it runs in linear time like linear attention:
//   x' = x · d^(−1/4)   (folds the 1/√d of softmax into both sides)
//   φ(x) = exp(ω x' − ‖x'‖²/2) / √m,   ω ∈ R^{m×d}, rows ~ N(0, I) (optionally orthogonal)
//   out = D⁻¹ φ(Q) (φ(K)ᵀ V),   D = diag(φ(Q) (φ(K)ᵀ 1))
// E[φ(q)·φ(k)] = exp(q·k/√d), so the error shrinks as m grows (`npm run bench:performer` measures it).
// For stability the exponents are shifted by a per-query max and one global key max; both cancel in D⁻¹.
import { describeValue, QkvError } from '../errors.js';
import { fmtShape } from '../tensor/shape.js';
import { checkTensor, Tensor } from '../tensor/tensor.js';
import { Rng } from './random.js';

/**
 * Draws the projection ω [m, d]: i.i.d. N(0, 1) rows, or blocks of d orthogonal rows whose norms are resampled
 * from the chi distribution (the paper's orthogonal random features), from a seed.
 */
export function drawOmega(m: number, d: number, seed: number, orthogonal = true): Tensor {
  for (const [n, x] of [['m', m], ['d', d], ['seed', seed]] as const) {
    const min = n === 'seed' ? -(2 ** 53) : 1;
    if (!Number.isSafeInteger(x) || x < min) {
      throw new QkvError(`drawOmega: ${n} must be an integer${min === 1 ? ' ≥ 1' : ''}, got ${String(x)}`);
    }
  }
  // at most 2^24 numbers (64 MiB), and orthogonal blocks of d ≤ 4096 (Gram–Schmidt's d³: d = 2^31 had asked for a
  // 16 GiB array, then work without end)
  if (m * d > 2 ** 24 || d > 4096) throw new QkvError(`drawOmega: m · d must be ≤ 2^24 and d ≤ 4096, got m ${m}, d ${d}`);
  const rng = new Rng(seed);
  const w = new Float32Array(m * d);
  if (!orthogonal) {
    for (let x = 0; x < w.length; x++) w[x] = rng.normal();
    return Tensor.from(w, [m, d]);
  }
  for (let r0 = 0; r0 < m; r0 += d) {
    // Gram–Schmidt on a d×d Gaussian block gives orthonormal rows; keep as many as still needed
    const block: Float64Array[] = [];
    for (let r = 0; r < d; r++) {
      const g = Float64Array.from({ length: d }, () => rng.normal());
      for (const u of block) {
        let p = 0;
        for (let c = 0; c < d; c++) p += g[c] * u[c];
        for (let c = 0; c < d; c++) g[c] -= p * u[c];
      }
      const n = Math.hypot(...g);
      block.push(g.map((x) => x / n));
    }
    for (let r = 0; r < Math.min(d, m - r0); r++) {
      // norm of an independent Gaussian vector, so each row is marginally N(0, I)
      let s = 0;
      for (let c = 0; c < d; c++) s += rng.normal() ** 2;
      const norm = Math.sqrt(s);
      for (let c = 0; c < d; c++) w[(r0 + r) * d + c] = block[r][c] * norm;
    }
  }
  return Tensor.from(w, [m, d]);
}

/** Exponents ω x' − ‖x'‖²/2 of the positive features for every row of x [rows, d] (before exp and 1/√m). */
function exponents(x: Float32Array, rows: number, d: number, omega: Float32Array, m: number): Float64Array {
  const c = d ** -0.25;
  const e = new Float64Array(rows * m);
  for (let r = 0; r < rows; r++) {
    let sq = 0;
    for (let t = 0; t < d; t++) sq += (c * x[r * d + t]) ** 2;
    for (let f = 0; f < m; f++) {
      let dot = 0;
      for (let t = 0; t < d; t++) dot += omega[f * d + t] * c * x[r * d + t];
      e[r * m + f] = dot - sq / 2;
    }
  }
  return e;
}

/** Performer options: a given projection `omega` [m, d], or `features` m drawn from `seed`. */
export interface PerformerOptions { omega?: Tensor; features?: number; seed?: number; orthogonal?: boolean }

/** FAVOR+ attention for q, k [B, H, n, d], v [B, H, n, dv] (non-causal). */
export function performerAttention(q: Tensor, k: Tensor, v: Tensor, o: PerformerOptions = {}): Tensor {
  for (const [n, t] of [['q', q], ['k', k], ['v', v]] as const) checkTensor(t, `performerAttention: ${n}`);
  if (typeof o !== 'object' || o === null) throw new QkvError(`performerAttention: options must be an object, got ${describeValue(o)}`);
  const [B, H, L, D] = q.shape;
  const S = k.shape[2];
  const Dv = v.shape[3];
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4 || k.shape[3] !== D || v.shape[2] !== S || k.shape[0] !== B || k.shape[1] !== H) {
    throw new QkvError(`performerAttention: expected q, k [B, H, n, d], v [B, H, n, dv]; got ${fmtShape(q.shape)}, ${fmtShape(k.shape)}, ${fmtShape(v.shape)}`);
  }
  const omega = o.omega ?? drawOmega(o.features ?? 256, D, o.seed ?? 0, o.orthogonal ?? true);
  if (omega.rank !== 2 || omega.shape[1] !== D) throw new QkvError(`performerAttention: omega must be [m, d=${D}], got ${fmtShape(omega.shape)}`);
  const m = omega.shape[0];
  const w = omega.toFloat32();
  const [qa, ka, va] = [q.toFloat32(), k.toFloat32(), v.toFloat32()];
  const out = new Float32Array(B * H * L * Dv);
  if (out.length === 0) return Tensor.from(out, [B, H, L, Dv]); // nothing to compute (however many empty rows)
  for (let bh = 0; bh < B * H; bh++) {
    const eq = exponents(qa.subarray(bh * L * D, (bh + 1) * L * D), L, D, w, m);
    const ek = exponents(ka.subarray(bh * S * D, (bh + 1) * S * D), S, D, w, m);
    // φ(K): one global shift keeps exp in range and cancels between numerator and D
    let kmax = -Infinity;
    for (const x of ek) if (x > kmax) kmax = x;
    // KV = φ(K)ᵀ V [m, dv],  ksum = φ(K)ᵀ 1 [m]
    const KV = new Float64Array(m * Dv);
    const ksum = new Float64Array(m);
    for (let j = 0; j < S; j++) {
      for (let f = 0; f < m; f++) {
        const phi = Math.exp(ek[j * m + f] - kmax);
        ksum[f] += phi;
        for (let e = 0; e < Dv; e++) KV[f * Dv + e] += phi * va[(bh * S + j) * Dv + e];
      }
    }
    // out_i = φ(q_i)ᵀ KV / φ(q_i)ᵀ ksum, with φ(q_i) shifted by its own max
    const fq = new Float64Array(m);
    for (let i = 0; i < L; i++) {
      let qmax = -Infinity;
      for (let f = 0; f < m; f++) qmax = Math.max(qmax, eq[i * m + f]);
      let den = 0;
      for (let f = 0; f < m; f++) { fq[f] = Math.exp(eq[i * m + f] - qmax); den += fq[f] * ksum[f]; }
      for (let e = 0; e < Dv; e++) {
        let num = 0;
        for (let f = 0; f < m; f++) num += fq[f] * KV[f * Dv + e];
        out[(bh * L + i) * Dv + e] = num / den;
      }
    }
  }
  return Tensor.from(out, [B, H, L, Dv]);
}
