// The KV cache interface: what a model's attention layer needs from any caching strategy. A layer hands over the
// keys and values of its new tokens and gets back everything it may attend to. Strategies (paged, int8, sliding,
// sinks — issue #5) implement the same interface; contiguous.ts is the baseline.
import type { Tensor } from '../tensor/tensor.js';

export interface KVCache {
  /** Tokens cached so far in `layer` (the same for every row of the batch). */
  length(layer: number): number;
  /** Appends k [B, Hkv, T, D] and v [B, Hkv, T, Dv] to `layer`; returns all cached k, v [B, Hkv, S, ·]. */
  update(layer: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor };
  /** Bytes held by the cache (allocated, not just used). */
  bytes(): number;
}
