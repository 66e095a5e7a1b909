// The KV cache interface: what a model's attention layer needs from any caching strategy. A layer hands over the
// query and the keys and values of its new tokens — before RoPE, with the rotation to apply — and gets back the
// attention output over everything the cache keeps. Each strategy decides how keys are stored (dense, in blocks,
// quantized, a window, sinks + window), where positions come from, and which kernel reads them:
//   contiguous.ts (baseline) · paged.ts (block tables, copy-on-write) · int8.ts (quantized) · sliding.ts (ring buffer)
//   · sinks.ts (StreamingLLM).
import type { RopeFrequencies } from '../nn/positional/rope.js';
import type { Tensor } from '../tensor/tensor.js';

/** RoPE to apply to q and k: frequencies and the absolute position of every new token (row-major [B, T]). */
export interface RopeSpec { freqs: RopeFrequencies; positions: readonly number[] }

/** One attention call of a layer over its cache. q [B, Hq, T, D], k [B, Hkv, T, D], v [B, Hkv, T, Dv] (new tokens). */
export interface CacheAttendRequest {
  q: Tensor; k: Tensor; v: Tensor;
  rope?: RopeSpec;
  scale: number;
  causal: boolean;
  /** Per row, over all keys so far (cached + new): 1 real, 0 padding. */
  keyMask?: readonly (readonly number[])[];
  /** The model's sliding window for this layer (keys j > i − W), or null. */
  slidingWindow?: number | null;
  softcap?: number;
  /** Additive bias [.., T, S] (T5's relative positions); dense caches only. */
  bias?: Tensor;
  returnWeights?: boolean;
}

/** Heads out: [B, Hq, T, Dv], and the weights [B, Hq, T, S] on request. */
export interface CacheAttendResult { out: Tensor; weights?: Tensor }

export interface KVCache {
  /** Short name: contiguous, paged, int8, sliding, sinks. */
  readonly kind: string;
  /** Tokens this layer has seen (the position the next token takes, for the longest row). */
  length(layer: number): number;
  /** Stores the new keys/values of `layer` and returns attention of q over what the cache keeps. */
  attend(layer: number, r: CacheAttendRequest): CacheAttendResult;
  /** Bytes held by the cache (allocated storage). */
  bytes(): number;
  /** True when the cache keeps positions bounded (sinks), so generation may run past the model's context. */
  readonly unboundedContext?: boolean;
}
