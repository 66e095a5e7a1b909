// Rung 2 of the CPU attention ladder: split-K decoding (FlashDecoding, Dao et al. 2023) for few queries against a
// long KV cache. The keys are cut into numSplits chunks; each chunk yields a partial (o_s, lse_s) with the same
// online softmax as sdpa-flash.ts, and the partials merge exactly through their log-sum-exps:
//   lse = log Σ_s e^{lse_s},   o = Σ_s e^{lse_s − lse} · o_s.
// On one thread the splits run in turn; they are independent, which is what threads and GPUs exploit (issue #7, #8).
import {
  TILE_NONE, TILE_SOME, type SdpaForwardRequest, type SdpaForwardResult, type SdpaKernel, type SdpaProblem,
} from '../contract.js';
import { flashBackward } from './sdpa-backward.js';
import { DEFAULT_BLOCK_M, DEFAULT_BLOCK_N, flashWeights } from './sdpa-flash.js';
import { finishRow, mergeSplits, RowState, scoreRow, updateRow } from './online-softmax.js';

/** Default number of key splits: one per 64 keys, at most 16. */
export function defaultSplits(S: number): number {
  return Math.max(1, Math.min(16, Math.ceil(S / 64)));
}

function forward(p: SdpaProblem, req: SdpaForwardRequest): SdpaForwardResult {
  const { B, Hq, L, S, Dv } = p;
  const BLOCK_N = req.blockN ?? DEFAULT_BLOCK_N;
  const numSplits = Math.max(1, Math.min(req.numSplits ?? defaultSplits(S), Math.max(1, S)));
  const chunk = Math.ceil(S / numSplits);
  const out = new Float32Array(B * Hq * L * Dv);
  const lse = new Float32Array(B * Hq * L);
  // partial results of every split for one query row: o_s [numSplits, Dv] and lse_s [numSplits]
  const oPart = new Float32Array(numSplits * Dv);
  const lsePart = new Float32Array(numSplits);
  const s = new Float64Array(BLOCK_N);
  const st = new RowState(1, Dv, false);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      for (let i = 0; i < L; i++) {
        const row = (b * Hq + h) * L + i;
        // 1. each split: online softmax over its keys -> (o_s, lse_s)
        for (let sp = 0; sp < numSplits; sp++) {
          st.reset();
          const end = Math.min(S, (sp + 1) * chunk);
          for (let j0 = sp * chunk; j0 < end; j0 += BLOCK_N) {
            const j1 = Math.min(end, j0 + BLOCK_N);
            const tile = p.mask ? p.mask.tile(b, h, i, i + 1, j0, j1) : 1;
            if (tile === TILE_NONE) continue;
            scoreRow(p, b, h, i, j0, j1 - j0, s, tile === TILE_SOME);
            updateRow(p, st, 0, s, j1 - j0, b, h, j0, i + S - L);
          }
          finishRow(st, 0, oPart, sp * Dv, lsePart, sp);
        }
        // 2. merge: lse = log Σ_s e^{lse_s};  o = Σ_s e^{lse_s − lse} o_s
        lse[row] = mergeSplits(lsePart, numSplits, oPart, 0, Dv, Dv, out, row * Dv);
      }
    }
  }
  const weights = req.weights ? flashWeights(p, lse, BLOCK_N) : undefined;
  return { out, lse, weights };
}

/** The split-K decode kernel (any L, meant for L = 1). Statistics come from the flash kernel. */
export const sdpaDecode: SdpaKernel = {
  name: 'decode',
  forward,
  backward: (p, out, lse, dout, req) => flashBackward(p, out, lse, dout, req.blockM ?? DEFAULT_BLOCK_M, req.blockN ?? DEFAULT_BLOCK_N),
};
