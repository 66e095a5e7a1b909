// Int8 KV cache: keys and values quantized symmetrically with one scale per token and head,
//   scale = max_d |x_d| / 127,   x8_d = round(x_d / scale),   x_d ≈ scale · x8_d
// and dequantized inside the attention kernel (sdpa-paged.ts), so a float copy never exists. Storage is the paged
// pool with int8 blocks: ≈ 4× less than float32 (plus 4 bytes of scale per token and head). int4 is not offered.
import { PagedKVCache, type PagedOptions } from './paged.js';

/** An int8 KV cache (paged storage, per-token-and-head scales). */
export class Int8KVCache extends PagedKVCache {
  constructor(numLayers: number, o: Omit<PagedOptions, 'dtype'> = {}) {
    super(numLayers, { blockSize: 32, ...o, dtype: 'int8' });
  }
}
