// Paged attention on the CPU (Kwon et al. 2023): keys and values read through block tables, as a paged KV cache
// keeps them — the WebAssembly kernel for a pool in its memory (wasm/sdpa-paged-wasm.ts), the TypeScript one
// (cpu/sdpa-paged.ts) for the rest, chosen by attention/dispatch.ts. The WebGPU one is pagedAttentionWebGPU.
import type { PagedProblem, PagedResult } from '../kernels/contract.js';
import { pagedKernelFor } from './dispatch.js';
import { applySinks, sinkLogits } from './sinks.js';
import { checkPagedProblem } from './validate.js';

export type { BlockPool, PagedProblem, PagedResult } from '../kernels/contract.js';

/**
 * Attention of q over the keys and values a block pool holds for each row; out [B, Hq, T, Dv] and lse [B, Hq, T].
 * @example
 * const p = { q, B: 1, Hq: 2, T: 1, scale: 0.5, softcap: 0, causal: true, window: null, blockTables: [[0]], seqLens: [4], pool };
 * const { out } = pagedAttention(p);
 */
export function pagedAttention(p: PagedProblem, returnWeights = false): PagedResult {
  checkPagedProblem(p, 'pagedAttention');
  const r = pagedKernelFor(p, returnWeights).forward(p, returnWeights);
  if (p.sinks) applySinks(r, sinkLogits(p.sinks, p.Hq, 'pagedAttention'), p.T, p.pool.Dv, r.maxS); // learned sinks
  return r;
}
