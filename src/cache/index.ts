// Choosing a KV-cache strategy by name, as `qkv generate --cache …` and the server do.
import { QkvError } from '../errors.js';
import { ContiguousKVCache } from './contiguous.js';
import { Int8KVCache } from './int8.js';
import type { KVCache } from './kv-cache.js';
import { PagedKVCache } from './paged.js';
import { SinkKVCache } from './sinks.js';
import { SlidingWindowKVCache } from './sliding.js';

export type CacheKind = 'contiguous' | 'paged' | 'int8' | 'sliding' | 'sinks';
export const CACHE_KINDS: readonly CacheKind[] = ['contiguous', 'paged', 'int8', 'sliding', 'sinks'];

/** Options of the strategies: block size (paged, int8), window (sliding, sinks), sink tokens (sinks). */
export interface CacheOptions { blockSize?: number; window?: number; sinks?: number }

/** A fresh cache of `kind` for a model of `numLayers` layers. */
export function createCache(kind: CacheKind, numLayers: number, o: CacheOptions = {}): KVCache {
  switch (kind) {
    case 'contiguous': return new ContiguousKVCache(numLayers);
    case 'paged': return new PagedKVCache(numLayers, { blockSize: o.blockSize });
    case 'int8': return new Int8KVCache(numLayers, { blockSize: o.blockSize });
    case 'sliding': return new SlidingWindowKVCache(numLayers, o.window ?? null);
    case 'sinks': return new SinkKVCache(numLayers, o.sinks ?? 4, o.window ?? 252);
    default: throw new QkvError(`cache must be one of ${CACHE_KINDS.join(', ')}; got '${String(kind)}'`);
  }
}

export { ContiguousKVCache, Int8KVCache, PagedKVCache, SinkKVCache, SlidingWindowKVCache };
export type { KVCache };
