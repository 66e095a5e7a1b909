// Paged attention (Kwon et al. 2023, vLLM, https://arxiv.org/abs/2309.06180): keys and values live in fixed-size
// blocks of a shared pool, and each sequence's block table lists its blocks in order. The kernel reads keys and values
// through the table — no gather into a contiguous copy — with the same online softmax as sdpa-flash.ts, one block
// of keys at a time:
//   key j of sequence b lives in block table_b[⌊j / BLOCK⌋], slot j mod BLOCK
//   s_j = scale · q·k_j (softcap);   m, l, acc updated per block;   o = acc / l,  lse = m + log l
// Pools may be int8 with one scale per (block, head, slot): k_j = scale_j · k8_j, dequantized inside the dot product
// (symmetric per-token-and-head quantization, as KIVI / vLLM's fp8 caches do per token), or f16 (each block's slots
// widened as they are read).
// Each row b has its own length; its T new queries sit at positions S_b − T … S_b − 1 (bottom-right causal).
import type { BlockPool, PagedKernel, PagedProblem, PagedResult } from '../contract.js';
import { widen16 } from '../../tensor/f16.js';
import { addValues, finishRow, RowState, softmaxStep } from './online-softmax.js';

export type { BlockPool, PagedProblem };

/** out [B, Hq, T, Dv], lse [B, Hq, T], and weights [B, Hq, T, maxS] when asked. */
export function pagedAttention(p: PagedProblem, returnWeights = false): PagedResult {
  const { B, Hq, T, pool } = p;
  const { blockSize: BLOCK, Hkv, D, Dv } = pool;
  const G = Hq / Hkv;
  const out = new Float32Array(B * Hq * T * Dv);
  const lse = new Float32Array(B * Hq * T);
  const maxS = Math.max(0, ...p.seqLens);
  const s = new Float64Array(BLOCK);
  const st = new RowState(1, Dv, false);
  const [kBuf, vBuf] = [new Float32Array(BLOCK * D), new Float32Array(BLOCK * Dv)]; // an f16 pool's block, widened
  for (let b = 0; b < B; b++) {
    const S = p.seqLens[b];
    const table = p.blockTables[b];
    const mask = p.keyMask?.[b];
    for (let h = 0; h < Hq; h++) {
      const kvh = Math.floor(h / G); // GQA: query head h reads kv head ⌊h / G⌋
      for (let t = 0; t < T; t++) {
        const i = S - T + t; // this query's position among the row's keys
        const lo = p.window ? Math.max(0, i - p.window + 1) : 0;
        const hi = p.causal ? Math.min(i, S - 1) : S - 1;
        const qOff = ((b * Hq + h) * T + t) * D;
        st.reset();
        // the KV loop, one block at a time, through the block table
        for (let blk = Math.floor(lo / BLOCK); blk <= Math.floor(hi / BLOCK) && hi >= lo; blk++) {
          const j0 = Math.max(lo, blk * BLOCK);
          const j1 = Math.min(hi, blk * BLOCK + BLOCK - 1);
          const n = j1 - j0 + 1;
          const slot0 = (table[blk] * Hkv + kvh) * BLOCK + (j0 - blk * BLOCK); // key j0's slot; the block's keys follow
          scoreBlock(p, qOff, slot0, n, s, kBuf);
          if (mask) for (let c = 0; c < n; c++) if (!mask[j0 + c]) s[c] = -Infinity;
          // the online softmax every CPU kernel shares (online-softmax.ts), then acc += Σ_c p_c v_c through the pool
          if (!softmaxStep(st, 0, s, n)) continue;
          if (pool.vScale) for (let c = 0; c < n; c++) s[c] *= pool.vScale[slot0 + c]; // int8 values: v_c = scale_c · v8_c
          const [v, vAt] = slots(pool.v, slot0, n, Dv, vBuf);
          addValues(st.acc, 0, s, n, v, vAt, Dv);
        }
        const row = (b * Hq + h) * T + t;
        finishRow(st, 0, out, row * Dv, lse, row); // no allowed key: o = 0, lse = −∞
      }
    }
  }
  return { out, lse, weights: returnWeights ? pagedWeights(p, lse, maxS) : undefined, maxS };
}

// n slots of `width` from `slot` as [array, offset of the first]: the pool itself, or an f16 pool's slots widened into `buf`
function slots(a: BlockPool['k'], slot: number, n: number, width: number, buf: Float32Array): [Float32Array | Int8Array, number] {
  if (!(a instanceof Uint16Array)) return [a, slot * width];
  widen16(a.subarray(slot * width, (slot + n) * width), buf, 'float16');
  return [buf, 0];
}

/** s[c] = scale · q·k for n consecutive slots starting at `slot` (dequantizing int8 keys), soft-capped if asked. */
function scoreBlock(p: PagedProblem, qOff: number, slot: number, n: number, s: Float64Array, kBuf: Float32Array): void {
  const { q, pool, scale, softcap } = p;
  const D = pool.D;
  const [k, k0] = slots(pool.k, slot, n, D, kBuf);
  for (let c = 0; c < n; c++) {
    const kOff = k0 + c * D;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[qOff + d] * k[kOff + d];
    let x = scale * dot * (pool.kScale ? pool.kScale[slot + c] : 1);
    if (softcap) x = softcap * Math.tanh(x / softcap);
    s[c] = x;
  }
}

/** Weights p_ij = e^{s_ij − lse_i} recomputed through the block tables, [B, Hq, T, maxS]. */
function pagedWeights(p: PagedProblem, lse: Float32Array, maxS: number): Float32Array {
  const { B, Hq, T, pool } = p;
  const w = new Float32Array(B * Hq * T * maxS);
  const s = new Float64Array(1), kBuf = new Float32Array(pool.D);
  for (let b = 0; b < B; b++) for (let h = 0; h < Hq; h++) for (let t = 0; t < T; t++) {
    const row = (b * Hq + h) * T + t;
    if (lse[row] === -Infinity) continue;
    const S = p.seqLens[b];
    const i = S - T + t;
    const lo = p.window ? Math.max(0, i - p.window + 1) : 0;
    const hi = p.causal ? Math.min(i, S - 1) : S - 1;
    for (let j = lo; j <= hi; j++) {
      if (p.keyMask && !p.keyMask[b][j]) continue;
      const slot = (p.blockTables[b][Math.floor(j / pool.blockSize)] * pool.Hkv + Math.floor(h / (Hq / pool.Hkv))) * pool.blockSize + (j % pool.blockSize);
      scoreBlock(p, row * pool.D, slot, 1, s, kBuf);
      w[row * maxS + j] = Math.exp(s[0] - lse[row]);
    }
  }
  return w;
}

/** The paged kernel, as the registry holds it. */
export const sdpaPaged: PagedKernel = { name: 'paged', forward: pagedAttention };
