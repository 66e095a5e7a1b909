// Rung 1 of the CPU attention ladder: FlashAttention-style tiling (Dao et al. 2022, https://arxiv.org/abs/2205.14135),
// laid out like Triton's fused-attention tutorial. Queries are processed BLOCK_M rows at a time against BLOCK_N keys;
// the online softmax keeps m_i, l_i and acc per row, so the extra memory is O(BLOCK_M · (BLOCK_N + Dv)) whatever L and S.
// A tile the mask rules out entirely is skipped (causal attention does about half the work); a tile it allows
// entirely skips per-element masking. Statistics (entropy, mean distance) ride along in the same pass.
// Slower sibling: sdpa-naive.ts (materialises L×S). Faster for L = 1: sdpa-decode.ts. Backward: sdpa-backward.ts.
import {
  TILE_NONE, TILE_SOME, type SdpaForwardRequest, type SdpaForwardResult, type SdpaKernel, type SdpaProblem,
} from '../contract.js';
import { flashBackward } from './sdpa-backward.js';
import { finishRow, RowState, scoreRow, updateRow } from './online-softmax.js';

export const DEFAULT_BLOCK_M = 32;
export const DEFAULT_BLOCK_N = 64;

function forward(p: SdpaProblem, req: SdpaForwardRequest): SdpaForwardResult {
  const { B, Hq, L, S, Dv } = p;
  const BLOCK_M = req.blockM ?? DEFAULT_BLOCK_M;
  const BLOCK_N = req.blockN ?? DEFAULT_BLOCK_N;
  const out = new Float32Array(B * Hq * L * Dv);
  const lse = new Float32Array(B * Hq * L);
  const entropy = req.stats ? new Float32Array(B * Hq * L) : undefined;
  const meanDistance = req.stats ? new Float32Array(B * Hq * L) : undefined;
  // the only scratch: one tile row of scores and the running state of BLOCK_M rows
  const s = new Float64Array(BLOCK_N);
  const st = new RowState(BLOCK_M, Dv, !!req.stats);
  if (p.counters) p.counters.scratchBytes = (p.counters.scratchBytes ?? 0) + s.byteLength + st.bytes;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const bh = b * Hq + h;
      for (let i0 = 0; i0 < L; i0 += BLOCK_M) {
        const i1 = Math.min(L, i0 + BLOCK_M);
        st.reset();
        // the KV loop: for each key tile, score, mask and fold into the running softmax
        for (let j0 = 0; j0 < S; j0 += BLOCK_N) {
          const j1 = Math.min(S, j0 + BLOCK_N);
          const tile = p.mask ? p.mask.tile(b, h, i0, i1, j0, j1) : 1;
          if (p.counters) { p.counters.tiles++; if (tile === TILE_NONE) p.counters.skipped++; }
          if (tile === TILE_NONE) continue; // fully masked tile: no work at all
          for (let i = i0; i < i1; i++) {
            scoreRow(p, b, h, i, j0, j1 - j0, s, tile === TILE_SOME);
            updateRow(p, st, i - i0, s, j1 - j0, b, h, j0, i + S - L);
          }
        }
        // epilogue: o = acc / l, lse = m + log l
        for (let i = i0; i < i1; i++) {
          const row = bh * L + i;
          finishRow(st, i - i0, out, row * Dv, lse, row, entropy, meanDistance);
        }
      }
    }
  }
  const weights = req.weights ? flashWeights(p, lse, BLOCK_N) : undefined;
  return { out, lse, weights, entropy, meanDistance };
}

/**
 * Attention weights recomputed tile by tile from lse, as a fused kernel can offer them: p_ij = e^{s_ij − lse_i}.
 * Only the output itself is L×S; the scratch is one tile row.
 */
export function flashWeights(p: SdpaProblem, lse: Float32Array, BLOCK_N = DEFAULT_BLOCK_N): Float32Array {
  const { B, Hq, L, S } = p;
  const weights = new Float32Array(B * Hq * L * S);
  const s = new Float64Array(BLOCK_N);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      for (let i = 0; i < L; i++) {
        const row = (b * Hq + h) * L + i;
        const m = lse[row];
        if (m === -Infinity) continue; // fully-masked row: weights stay 0
        for (let j0 = 0; j0 < S; j0 += BLOCK_N) {
          const n = Math.min(S, j0 + BLOCK_N) - j0;
          const tile = p.mask ? p.mask.tile(b, h, i, i + 1, j0, j0 + n) : 1;
          if (tile === TILE_NONE) continue;
          scoreRow(p, b, h, i, j0, n, s, tile === TILE_SOME);
          for (let c = 0; c < n; c++) weights[row * S + j0 + c] = Math.exp(s[c] - m);
        }
      }
    }
  }
  return weights;
}

/** The tiled FlashAttention-style kernel. */
export const sdpaFlash: SdpaKernel = {
  name: 'flash',
  forward,
  backward: (p, out, lse, dout, req) => flashBackward(p, out, lse, dout, req.blockM ?? DEFAULT_BLOCK_M, req.blockN ?? DEFAULT_BLOCK_N),
};
