// Rung 0 of the CPU attention ladder: the definition, materialised. For each (b, h) the whole L×S score matrix is
// built, soft-maxed row by row and multiplied by V — memory grows as L·S (1 GiB at L = S = 16k in float32).
// It is the reference every faster kernel is checked against, and the only one that keeps the weights for free.
// Faster siblings: sdpa-flash.ts (tiled, online softmax, O(tile) memory) and sdpa-decode.ts (split-K for L = 1).
import type { SdpaForwardRequest, SdpaForwardResult, SdpaKernel, SdpaProblem } from '../contract.js';
import { referenceBackward } from './sdpa-backward.js';

/** Fills `row` (length S) with the final scores of query i: scale·q·k, score modifiers, mask. */
export function referenceScores(p: SdpaProblem, b: number, h: number, i: number, row: Float32Array): void {
  const { D, S, q, k, scale } = p;
  const kvh = Math.floor(h / (p.Hq / p.Hkv));
  const qOff = ((b * p.Hq + h) * p.L + i) * D;
  const kBase = (b * p.Hkv + kvh) * S * D;
  // s_ij = scale · Σ_d q_id k_jd
  for (let j = 0; j < S; j++) {
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[qOff + d] * k[kBase + j * D + d];
    row[j] = scale * dot;
  }
  if (p.mods) p.mods.apply(row, b, h, i, 0, S);
  if (p.mask) p.mask.maskRow(row, b, h, i, 0, S);
}

/**
 * Softmax of one row in place: p_j = e^{s_j − m} / l. Returns lse = m + log l (−∞ and all zeros when fully masked;
 * NaN, and a NaN row, when a score is NaN — as torch: a NaN is not a masked key).
 */
export function softmaxRow(row: Float32Array): number {
  let m = -Infinity;
  for (let j = 0; j < row.length; j++) {
    if (row[j] > m) m = row[j];
    else if (Number.isNaN(row[j])) { m = NaN; break; }
  }
  if (m === -Infinity) { row.fill(0); return -Infinity; } // fully-masked row: p = 0, never NaN
  let l = 0;
  for (let j = 0; j < row.length; j++) { const e = Math.exp(row[j] - m); row[j] = e; l += e; }
  for (let j = 0; j < row.length; j++) row[j] /= l;
  return m + Math.log(l);
}

function forward(p: SdpaProblem, req: SdpaForwardRequest): SdpaForwardResult {
  const { B, Hq, L, S, Dv, v } = p;
  const G = Hq / p.Hkv;
  const out = new Float32Array(B * Hq * L * Dv);
  const lse = new Float32Array(B * Hq * L);
  const weights = req.weights ? new Float32Array(B * Hq * L * S) : undefined;
  const entropy = req.stats ? new Float32Array(B * Hq * L) : undefined;
  const meanDistance = req.stats ? new Float32Array(B * Hq * L) : undefined;
  const P = new Float32Array(L * S); // the materialised score / probability matrix of one (b, h)
  if (p.counters) p.counters.scratchBytes = (p.counters.scratchBytes ?? 0) + P.byteLength;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const bh = b * Hq + h;
      const vBase = (b * p.Hkv + Math.floor(h / G)) * S * Dv;
      // 1. scores and softmax, row by row: P_ij = softmax_j(s_ij)
      for (let i = 0; i < L; i++) {
        const row = P.subarray(i * S, (i + 1) * S);
        referenceScores(p, b, h, i, row);
        lse[bh * L + i] = softmaxRow(row);
      }
      // 2. o_i = Σ_j P_ij v_j
      for (let i = 0; i < L; i++) {
        const o = (bh * L + i) * Dv;
        for (let j = 0; j < S; j++) {
          const pij = P[i * S + j];
          if (pij === 0) continue;
          for (let d = 0; d < Dv; d++) out[o + d] += pij * v[vBase + j * Dv + d];
        }
      }
      // 3. statistics straight from the definition: H = −Σ p log p, E_p[|i' − j|]
      if (entropy && meanDistance) {
        for (let i = 0; i < L; i++) {
          let H = 0;
          let dist = 0;
          for (let j = 0; j < S; j++) {
            const pij = P[i * S + j];
            if (pij > 0) { H -= pij * Math.log(pij); dist += pij * Math.abs(i + S - L - j); }
          }
          entropy[bh * L + i] = H;
          meanDistance[bh * L + i] = dist;
        }
      }
      if (weights) weights.set(P, bh * L * S);
    }
  }
  return { out, lse, weights, entropy, meanDistance };
}

/** The materialising reference kernel. */
export const sdpaNaive: SdpaKernel = {
  name: 'reference',
  forward,
  backward: (p, _out, lse, dout) => referenceBackward(p, lse, dout),
};
