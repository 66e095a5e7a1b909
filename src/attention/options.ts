// The options of `attention()`, named after torch's scaled_dot_product_attention where it has the concept.
import type { Tensor } from '../tensor/tensor.js';
import type { BlockSparseOptions, MaskMod, MaskSpec } from './masks.js';
import type { ScoreMod } from './score-mods.js';

/** Which kernel computes attention. `auto`: the WebAssembly SIMD kernel when it covers the call (its rule:
 *  kernels/wasm/sdpa-flash-wasm.ts), else decode for one query row and flash otherwise; flash when weights or
 *  statistics are asked for. */
export type KernelName = 'reference' | 'flash' | 'flash-wasm' | 'decode' | 'auto';

/** Options of `attention(q, k, v, options)`. Every mask option composes with the others by AND,
 *  except `globalTokens`, which ORs into the sparse pattern (window / block-sparse) as in Longformer. */
export interface AttentionOptions {
  /** Multiplies q·k; default 1/√head_dim. */
  scale?: number;
  /** `true` or `'top-left'`: query i sees keys 0..i (torch `is_causal`); `'bottom-right'`: keys 0..i+S−L. */
  causal?: boolean | 'top-left' | 'bottom-right';
  /** A bool keep-mask (true = may attend) or a float additive mask, broadcastable to [B, Hq, L, S];
   *  or a structured mask spec (`masks.slidingWindow(…)`, `masks.and(…)`, …). */
  mask?: Tensor | MaskSpec;
  /** Additive float bias broadcastable to [B, Hq, L, S] (e.g. relative position bias). */
  bias?: Tensor;
  /** Key padding: batch b attends only keys 0..keyLengths[b]−1. */
  keyLengths?: readonly number[] | Tensor;
  /** Sliding window [left, right] around the query's position (bottom-right aligned). */
  window?: readonly [number, number];
  /** Keep only every `dilation`-th key inside the window (dilated sliding window). */
  dilation?: number;
  /** Longformer global tokens: these positions attend to and are attended by everything. */
  globalTokens?: readonly number[];
  /** BigBird block-sparse pattern. */
  blockSparse?: BlockSparseOptions;
  /** Packed variable-length documents: [0, n0, n0+n1, …, L]. */
  cuSeqlens?: readonly number[] | Tensor;
  /** Prefix-LM: the first `prefix` keys are visible to every query, the rest causally. */
  prefix?: number;
  /** FlexAttention-style mask function (b, h, i, j) → boolean. */
  maskMod?: MaskMod;
  /** FlexAttention-style score function (score, b, h, i, j) → score, applied after the other score modifiers. */
  scoreMod?: ScoreMod;
  /** Soft-capping (Gemma 2): s ← softcap · tanh(s / softcap). */
  softcap?: number;
  /** ALiBi slopes, one per query head (see `alibiSlopes(H)`). */
  alibiSlopes?: ArrayLike<number>;
  /** Learned attention sinks (gpt-oss): one logit per query head that joins every row's softmax, its probability
   *  dropped (sinks.ts). out, lse, weights and statistics account for it; attentionBackward also returns dsinks. */
  sinks?: ArrayLike<number> | Tensor;
  /** Kernel choice; all kernels give the same numbers. On WebGPU, f16 calls run on the tensor cores (subgroup
   *  matrices, P rounded to f16 before P·V) where the device has them; `'flash'` keeps them on the plain WGSL kernel. */
  kernel?: KernelName;
  /** Tile sizes of the flash kernel (query rows × keys); on WebGPU, of the tensor-core kernel (blockM a multiple of
   *  the matrix rows; the plain WGSL kernel's tiles are fixed at 64 × 32). */
  blockM?: number;
  blockN?: number;
  /** Key splits of the decode kernel. */
  numSplits?: number;
  /** Also return the attention weights [B, Hq, L, S] (the flash kernel recomputes them tile by tile from lse). */
  returnWeights?: boolean;
  /** Also return per-row statistics: entropy of the weights and mean attention distance E_p[|i' − j|]. */
  returnStats?: boolean;
}

/** Per-query-row statistics of the attention distribution, each [B, Hq, L]. */
export interface AttentionStats {
  /** H(p) = −Σ_j p_j log p_j = lse − E_p[s] (nats). 0 for a fully masked row. */
  entropy: Tensor;
  /** E_p[|i' − j|] with i' = i + S − L. 0 for a fully masked row. */
  meanDistance: Tensor;
}

/** What `attention` returns. */
export interface AttentionResult {
  /** [B, Hq, L, Dv] in q's dtype. */
  out: Tensor;
  /** log Σ_j exp(s_ij), float32 [B, Hq, L]; −∞ for a row with no allowed key. */
  lse: Tensor;
  /** [B, Hq, L, S] float32, when `returnWeights`. */
  weights?: Tensor;
  /** When `returnStats`. */
  stats?: AttentionStats;
}
