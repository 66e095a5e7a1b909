// The attention call every model family makes: heads in, heads out, with the masks a checkpoint needs (causal with
// a cache offset, left/right padding, a sliding window, T5's position bias) expressed as qkv attention options, so
// the tiled kernel skips what is masked. With a KV cache, the cache stores the new keys and runs attention itself
// (cache/kv-cache.ts); RoPE is handed over unapplied so that caches that re-position keys (attention sinks) can.
import { denseAttention, rotate } from '../cache/dense-attention.js';
import type { CacheAttendRequest, KVCache } from '../cache/kv-cache.js';
import type { Tensor } from '../tensor/tensor.js';

/** What a model layer asks of attention: the cache request, plus the cache and layer when there is one. */
export interface ModelAttention extends CacheAttendRequest {
  cache?: KVCache;
  layer?: number;
}

/** Runs a layer's attention (through the cache when there is one); returns out [B, T, Hq·Dv] and the weights. */
export function modelAttention(a: ModelAttention): { out: Tensor; weights?: Tensor } {
  const r = a.cache ? a.cache.attend(a.layer ?? 0, a) : denseAttention({ ...a, ...rotate(a) });
  const [B, Hq, T, Dv] = r.out.shape;
  return { out: r.out.transpose(1, 2).reshape([B, T, Hq * Dv]), weights: r.weights }; // [B, T, Hq·Dv]
}

/** [B, T, H·D] → [B, H, T, D]. */
export function splitHeads(x: Tensor, H: number): Tensor {
  const [B, T] = x.shape;
  return x.reshape([B, T, H, -1]).transpose(1, 2).contiguous();
}
