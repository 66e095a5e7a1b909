// Backward pass of attention: dq, dk, dv from the upstream gradient dout (llm.c attention_backward, FlashAttention-2 §3.2).
// forward was:  s_ij = f(scale · q_i·k_j) (+ mask);  p_ij = e^{s_ij − lse_i};  o_i = Σ_j p_ij v_j
// so:           dv_j  = Σ_i p_ij do_i
//               dp_ij = do_i · v_j
//               ds_ij = p_ij (dp_ij − D_i) · f'(·),   D_i = Σ_j p_ij dp_ij = do_i · o_i
//               dq_i  = scale Σ_j ds_ij k_j,   dk_j = scale Σ_i ds_ij q_i
// f' is 1 except under soft-capping (1 − tanh²). With GQA, the G query heads of a kv head add into its dk, dv.
// referenceBackward materialises P per (b, h); flashBackward recomputes p tile by tile from lse (O(tile) memory).
import { TILE_NONE, TILE_SOME, type SdpaBackwardResult, type SdpaProblem } from '../contract.js';
import { scoreRow } from './online-softmax.js';
import { referenceScores } from './sdpa-naive.js';

/** Offsets of the rows q_i, k_j, v_j, o_i for (b, h). */
function bases(p: SdpaProblem, b: number, h: number) {
  const kvh = Math.floor(h / (p.Hq / p.Hkv));
  return {
    row0: (b * p.Hq + h) * p.L, // row index of (b, h, 0) in lse / D
    qBase: (b * p.Hq + h) * p.L * p.D,
    oBase: (b * p.Hq + h) * p.L * p.Dv,
    kBase: (b * p.Hkv + kvh) * p.S * p.D,
    vBase: (b * p.Hkv + kvh) * p.S * p.Dv,
  };
}

/** One entry's contribution: accumulates dv_j, dq_i, dk_j given p_ij and ds_ij's factors. Returns nothing. */
function accumulate(p: SdpaProblem, grads: SdpaBackwardResult, dout: Float32Array, pij: number, ds: number,
  qi: number, oi: number, kj: number, vj: number): void {
  const { D, Dv, q, k, scale } = p;
  for (let d = 0; d < Dv; d++) grads.dv[vj + d] += pij * dout[oi + d];
  const g = scale * ds;
  if (g === 0) return;
  for (let d = 0; d < D; d++) {
    grads.dq[qi + d] += g * k[kj + d];
    grads.dk[kj + d] += g * q[qi + d];
  }
}

/** dp_ij = do_i · v_j */
function dotDoV(dout: Float32Array, oi: number, v: Float32Array, vj: number, Dv: number): number {
  let dp = 0;
  for (let d = 0; d < Dv; d++) dp += dout[oi + d] * v[vj + d];
  return dp;
}

function zeros(p: SdpaProblem): SdpaBackwardResult {
  return {
    dq: new Float32Array(p.B * p.Hq * p.L * p.D),
    dk: new Float32Array(p.B * p.Hkv * p.S * p.D),
    dv: new Float32Array(p.B * p.Hkv * p.S * p.Dv),
  };
}

/** Backward by the definition: P of each (b, h) is rebuilt in full (L×S memory). */
export function referenceBackward(p: SdpaProblem, lse: Float32Array, dout: Float32Array): SdpaBackwardResult {
  const { B, Hq, L, S, D, Dv, v, q, k, scale } = p;
  const grads = zeros(p);
  const P = new Float32Array(L * S);
  const raw = new Float64Array(S);
  const dds = new Float64Array(S);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const { qBase, oBase, kBase, vBase } = bases(p, b, h);
      for (let i = 0; i < L; i++) {
        const row = P.subarray(i * S, (i + 1) * S);
        referenceScores(p, b, h, i, row);
        // p_ij = e^{s_ij − lse_i}: the forward's normaliser (with learned sinks, lse′ — attention/sinks.ts)
        const li = lse[(b * Hq + h) * L + i];
        for (let j = 0; j < S; j++) row[j] = li === -Infinity ? 0 : Math.exp(row[j] - li);
        // D_i = Σ_j p_ij dp_ij
        let Di = 0;
        for (let j = 0; j < S; j++) if (row[j] !== 0) Di += row[j] * dotDoV(dout, oBase + i * Dv, v, vBase + j * Dv, Dv);
        // f'(scaled score): recompute the scaled scores for the derivative of the modifiers
        if (p.mods) {
          for (let j = 0; j < S; j++) {
            let dot = 0;
            for (let d = 0; d < D; d++) dot += q[qBase + i * D + d] * k[kBase + j * D + d];
            raw[j] = scale * dot;
          }
          p.mods.derivative(raw, dds, S);
        }
        for (let j = 0; j < S; j++) {
          const pij = row[j];
          if (pij === 0) continue;
          const dp = dotDoV(dout, oBase + i * Dv, v, vBase + j * Dv, Dv);
          const ds = pij * (dp - Di) * (p.mods ? dds[j] : 1);
          accumulate(p, grads, dout, pij, ds, qBase + i * D, oBase + i * Dv, kBase + j * D, vBase + j * Dv);
        }
      }
    }
  }
  return grads;
}

/** Tiled backward: p recomputed from lse per tile, fully masked tiles skipped; memory O(BLOCK_N). */
export function flashBackward(p: SdpaProblem, out: Float32Array, lse: Float32Array, dout: Float32Array,
  BLOCK_M: number, BLOCK_N: number): SdpaBackwardResult {
  const { B, Hq, L, S, D, Dv, v } = p;
  const grads = zeros(p);
  // 1. D_i = do_i · o_i for every row (equal to Σ_j p_ij dp_ij)
  const Dall = new Float64Array(B * Hq * L);
  for (let r = 0; r < Dall.length; r++) {
    let acc = 0;
    for (let d = 0; d < Dv; d++) acc += dout[r * Dv + d] * out[r * Dv + d];
    Dall[r] = acc;
  }
  const s = new Float64Array(BLOCK_N);
  const raw = new Float64Array(BLOCK_N);
  const dds = new Float64Array(BLOCK_N);
  // 2. for each key tile, visit the query tiles that can see it and accumulate dv, dk, dq
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const { row0, qBase, oBase, kBase, vBase } = bases(p, b, h);
      for (let j0 = 0; j0 < S; j0 += BLOCK_N) {
        const n = Math.min(S, j0 + BLOCK_N) - j0;
        for (let i0 = 0; i0 < L; i0 += BLOCK_M) {
          const i1 = Math.min(L, i0 + BLOCK_M);
          const tile = p.mask ? p.mask.tile(b, h, i0, i1, j0, j0 + n) : 1;
          if (tile === TILE_NONE) continue;
          for (let i = i0; i < i1; i++) {
            const m = lse[row0 + i];
            if (m === -Infinity) continue; // fully-masked row: no gradient flows
            scoreRow(p, b, h, i, j0, n, s, tile === TILE_SOME, p.mods ? raw : undefined);
            if (p.mods) p.mods.derivative(raw, dds, n);
            for (let c = 0; c < n; c++) {
              const pij = Math.exp(s[c] - m); // p recomputed from lse: no L×S storage
              if (pij === 0) continue;
              const j = j0 + c;
              const dp = dotDoV(dout, oBase + i * Dv, v, vBase + j * Dv, Dv);
              const ds = pij * (dp - Dall[row0 + i]) * (p.mods ? dds[c] : 1);
              accumulate(p, grads, dout, pij, ds, qBase + i * D, oBase + i * Dv, kBase + j * D, vBase + j * Dv);
            }
          }
        }
      }
    }
  }
  return grads;
}
