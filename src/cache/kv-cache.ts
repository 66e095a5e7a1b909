// The KV cache interface: storage only. A model's attention layer (models/attention-layer.ts) rotates the new keys,
// hands them to the cache with their values, and gets back a view of everything the layer keeps — dense strided
// tensors, or a block pool with its tables — which it then attends over. Each strategy decides how keys are stored
// (dense, in blocks, quantized, a window, sinks + window) and what the view shows:
//   contiguous.ts (baseline) · paged.ts (block tables, copy-on-write) · int8.ts (quantized) · sliding.ts (ring buffer)
//   · sinks.ts (StreamingLLM: it assigns positions itself, so it stores keys before RoPE and says where they sit).
import { checkInt, describeValue, QkvError } from '../errors.js';
import type { BlockPool } from '../kernels/contract.js';
import { checkTensor, type Tensor } from '../tensor/tensor.js';
import { fmtShape } from '../tensor/shape.js';

/** What a layer hands to store: its new keys and values, the padding mask and the layer's window. */
export interface StoreRequest {
  k: Tensor; v: Tensor;
  keyMask?: readonly (readonly number[])[];
  slidingWindow?: number | null;
  /** The values are the keys' last Dv dims (absorbed MLA: the latent, which RoPE leaves alone): a cache may keep the
   *  keys only and return the values as a view of them (the contiguous cache does). */
  valuesInKeys?: boolean;
}

/** Every key and value a layer keeps (the new ones last), dense: k [B, Hkv, S, D], v [B, Hkv, S, Dv], maybe strided. */
export interface DenseView {
  kind: 'dense';
  k: Tensor; v: Tensor;
  /** The padding mask over these keys. */
  keyMask?: readonly (readonly number[])[];
  /** The window these keys are read under (keys j > i − W), or null. */
  window: number | null;
  /** A cache that assigns positions (sinks): keys stored before RoPE, each key's position and the new queries'. */
  positions?: { keys: readonly number[]; queries: readonly number[] };
}

/** Every key and value a layer keeps, in a block pool: row b's keys are its first seqLens[b] slots through its table. */
export interface PagedView {
  kind: 'paged';
  pool: BlockPool;
  blockTables: readonly (readonly number[])[];
  seqLens: readonly number[];
  keyMask?: readonly (readonly number[])[];
}

export type KVView = DenseView | PagedView;

export interface KVCache {
  /** Short name: contiguous, paged, int8, sliding, sinks. */
  readonly kind: string;
  /** The kind of view `store` returns (known before anything is stored, so a request it cannot serve is refused first). */
  readonly view: KVView['kind'];
  /** Tokens this layer has seen (the position the next token takes, for the longest row). */
  length(layer: number): number;
  /** Stores the new keys and values of `layer` and returns what the layer keeps, for attention to read. */
  store(layer: number, r: StoreRequest): KVView;
  /** Bytes held by the cache (allocated storage). */
  bytes(): number;
  /** Gives back storage taken from the kernels' memory now (the contiguous cache); views must not be used after. */
  release?(): void;
  /** True when the cache keeps positions bounded (sinks), so generation may run past the model's context. */
  readonly unboundedContext?: boolean;
  /** True when the cache assigns positions itself (sinks): it takes keys before RoPE and its view says where they sit. */
  readonly assignsPositions?: boolean;
}

/** Throws unless `layer` is one of the cache's layers (caller `what`). */
export function checkLayer(layer: unknown, numLayers: number, what: string): asserts layer is number {
  checkInt(layer, `${what}: layer`, 0, numLayers - 1);
}

/**
 * Throws unless `r` is a store request a cache can read (JavaScript callers are not type-checked): k [B, Hkv, T, D] and
 * v [B, Hkv, T, Dv] tensors, a key mask of B rows, a window that is null or an integer ≥ 1.
 */
export function checkStore(layer: unknown, r: unknown, numLayers: number, what: string): asserts r is StoreRequest {
  checkLayer(layer, numLayers, what);
  if (typeof r !== 'object' || r === null) throw new QkvError(`${what}: the request must be an object { k, v }, got ${describeValue(r)}`);
  const { k, v, keyMask, slidingWindow, valuesInKeys } = r as Record<string, unknown>;
  checkTensor(k, `${what}: k`);
  checkTensor(v, `${what}: v`);
  const [B, H, T] = k.shape;
  // every size ≥ 1: an empty tensor of B = 10⁸ rows had the caches loop over its rows for 20–30 s
  const empty = k.size === 0 || v.size === 0;
  if (k.rank !== 4 || v.rank !== 4 || v.shape[0] !== B || v.shape[1] !== H || v.shape[2] !== T || empty) {
    const want = 'k must be [B, Hkv, T, D] and v [B, Hkv, T, Dv], every size ≥ 1';
    throw new QkvError(`${what}: ${want}, got k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`);
  }
  const rowOk = (row: unknown) => Array.isArray(row) || ArrayBuffer.isView(row);
  if (keyMask !== undefined && !(Array.isArray(keyMask) && keyMask.length === B && keyMask.every(rowOk))) {
    throw new QkvError(`${what}: keyMask must be ${B} rows (lists of 0/1), got ${describeValue(keyMask)}`);
  }
  if (slidingWindow !== undefined && slidingWindow !== null) checkInt(slidingWindow, `${what}: slidingWindow`, 1);
  if (valuesInKeys !== undefined && typeof valuesInKeys !== 'boolean') {
    throw new QkvError(`${what}: valuesInKeys must be a boolean, got ${describeValue(valuesInKeys)}`);
  }
}
