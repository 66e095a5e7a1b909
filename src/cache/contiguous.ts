// Contiguous KV cache: per layer one buffer [B, Hkv, capacity, D] for keys and one for values, doubled when full.
// The baseline strategy: simple, fast to append, and wasteful only by the unused tail of the capacity. Keys are
// stored after RoPE. An optional `window` masks keys older than W positions without evicting them — the reference
// the sliding-window cache is checked against. The buffers come from the registry's kernel storage (the WebAssembly
// kernels' memory where it is shared), so the decode kernel reads them in place.
// dtype 'float16' stores keys and values as f16 (rounded to nearest even): half the bytes, which the decode kernel
// reads as f16 — llama.cpp's default cache. f16 holds |x| < 65520: a layer that meets a value it cannot hold (±∞, NaN
// or larger) keeps all its keys and values in f32 from then on, so nothing turns into ∞ silently.
import { checkInt, describeValue, QkvError } from '../errors.js';
import { fmtShape } from '../tensor/shape.js';
import { kernelStorage } from '../kernels/registry.js';
import { narrow16, widen16 } from '../tensor/f16.js';
import { Tensor } from '../tensor/tensor.js';
import { checkStore, type DenseView, type KVCache, type StoreRequest } from './kv-cache.js';

/** Storage of a contiguous cache: f32, or f16 (half the bytes). */
export type CacheDType = 'float32' | 'float16';
const CACHE_DTYPES: readonly CacheDType[] = ['float32', 'float16'];

interface LayerBuffers {
  /** f32, or f16 bits while the layer is stored as f16 */
  k: Float32Array | Uint16Array; v: Float32Array | Uint16Array; cap: number; len: number; B: number; H: number; D: number; Dv: number;
  /** v is a view of the keys' last Dv dims (StoreRequest.valuesInKeys): no value buffer. */
  inKeys: boolean;
}

/** Throws unless `numLayers` is a count a cache can have one entry for each of (caller `what`). */
export function checkLayers(numLayers: number, what: string): void {
  if (!Number.isSafeInteger(numLayers) || numLayers < 1 || numLayers > 1 << 16) {
    throw new QkvError(`${what}: numLayers must be an integer in [1, 65536], got ${String(numLayers)}`);
  }
}

export class ContiguousKVCache implements KVCache {
  readonly kind: string = 'contiguous';
  readonly view = 'dense';
  private readonly layers: (LayerBuffers | undefined)[];

  /** `initialCapacity` tokens are reserved per layer at the first update; `window` masks keys older than W; `dtype`
   *  is the storage (float32, or float16: half the bytes). */
  constructor(readonly numLayers: number, readonly initialCapacity = 64, readonly window: number | null = null,
    readonly dtype: CacheDType = 'float32') {
    checkLayers(numLayers, 'ContiguousKVCache');
    checkInt(initialCapacity, 'ContiguousKVCache: initialCapacity', 1);
    if (!CACHE_DTYPES.includes(dtype)) {
      throw new QkvError(`ContiguousKVCache: dtype must be 'float32' or 'float16', got ${describeValue(dtype)}`);
    }
    this.layers = new Array(numLayers);
  }

  length(layer: number): number {
    return this.layers[layer]?.len ?? 0;
  }

  store(layer: number, r: StoreRequest): DenseView {
    checkStore(layer, r, this.numLayers, 'ContiguousKVCache.store');
    const kv = this.#append(layer, r.k, r.v, r.valuesInKeys ?? false);
    return { kind: 'dense', k: kv.k, v: kv.v, keyMask: r.keyMask, window: r.slidingWindow ?? this.window };
  }

  /** Appends k [B, Hkv, T, D], v [B, Hkv, T, Dv] to `layer`; returns all cached k, v as strided views. */
  update(layer: number, k: Tensor, v: Tensor, valuesInKeys = false): { k: Tensor; v: Tensor } {
    checkStore(layer, { k, v, valuesInKeys }, this.numLayers, 'ContiguousKVCache.update');
    return this.#append(layer, k, v, valuesInKeys);
  }

  // update's work, on a request already checked (store checks it once, not twice a layer and token)
  #append(layer: number, k: Tensor, v: Tensor, valuesInKeys: boolean): { k: Tensor; v: Tensor } {
    const [B, H, T, D] = k.shape;
    const Dv = v.shape[3];
    let L = this.layers[layer];
    if (valuesInKeys && Dv > D) throw new QkvError(`KV cache: values in the keys need Dv ≤ D, got Dv=${Dv}, D=${D}`);
    if (!L) L = this.layers[layer] = { k: empty(this.dtype), v: empty(this.dtype), cap: 0, len: 0, B, H, D, Dv, inKeys: valuesInKeys };
    if (L.B !== B || L.H !== H || L.D !== D || L.Dv !== Dv || v.shape[2] !== T || L.inKeys !== valuesInKeys) {
      throw new QkvError(`KV cache: layer ${layer} holds [B=${L.B}, Hkv=${L.H}, ·, D=${L.D}], got k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`);
    }
    if (L.len + T > L.cap) this.#grow(L, Math.max(this.initialCapacity, 2 * L.cap, L.len + T));
    // write the new tokens at rows len..len+T−1 of every (b, h)
    const [ka, va] = [k.toFloat32(), v.toFloat32()];
    if (!this.#write(L, ka, va, T)) { this.#widen(L); this.#write(L, ka, va, T); } // a value f16 cannot hold: f32 from now on
    L.len += T;
    // views over the filled part: strides skip the unused capacity
    const dtype = L.k instanceof Uint16Array ? 'float16' : 'float32';
    const view = (data: Float32Array | Uint16Array, d: number) =>
      new Tensor(dtype, data, [B, H, L!.len, d], [H * L!.cap * d, L!.cap * d, d, 1], 0);
    if (L.inKeys) return { k: view(L.k, D), v: new Tensor(dtype, L.k, [B, H, L.len, Dv], [H * L.cap * D, L.cap * D, D, 1], D - Dv) };
    return { k: view(L.k, D), v: view(L.v, Dv) };
  }

  // the T new tokens of ka, va at rows len… of every (b, h); false (and the layer's new rows unspecified) when some
  // value does not fit f16 storage
  #write(L: LayerBuffers, ka: Float32Array, va: Float32Array, T: number): boolean {
    const { B, H, D, Dv, cap, len } = L;
    for (let bh = 0; bh < B * H; bh++) {
      const [kRun, vRun] = [ka.subarray(bh * T * D, (bh + 1) * T * D), va.subarray(bh * T * Dv, (bh + 1) * T * Dv)];
      if (L.k instanceof Float32Array) {
        L.k.set(kRun, (bh * cap + len) * D);
        if (!L.inKeys) (L.v as Float32Array).set(vRun, (bh * cap + len) * Dv);
      } else if (!narrow16(kRun, L.k, (bh * cap + len) * D) || (!L.inKeys && !narrow16(vRun, L.v as Uint16Array, (bh * cap + len) * Dv))) {
        return false;
      }
    }
    return true;
  }

  #grow(L: LayerBuffers, cap: number): void {
    const [k, v] = [this.#alloc(L, L.B * L.H * cap * L.D), this.#alloc(L, L.inKeys ? 0 : L.B * L.H * cap * L.Dv)];
    for (let bh = 0; bh < L.B * L.H; bh++) {
      k.set(L.k.subarray(bh * L.cap * L.D, (bh * L.cap + L.len) * L.D), bh * cap * L.D);
      if (!L.inKeys) v.set(L.v.subarray(bh * L.cap * L.Dv, (bh * L.cap + L.len) * L.Dv), bh * cap * L.Dv);
    }
    Object.assign(L, { k, v, cap }); // the old buffers go back when garbage-collected (a view may still hold them)
  }

  // n slots of the layer's storage type
  #alloc(L: LayerBuffers, n: number): Float32Array | Uint16Array {
    return L.k instanceof Float32Array ? kernelStorage().floats(n) : kernelStorage().halves(n);
  }

  // an f16 layer's keys and values widened into f32 storage of the same capacity (its rows len… are rewritten after)
  #widen(L: LayerBuffers): void {
    Object.assign(L, { k: widenedF16(L.k as Uint16Array), v: widenedF16(L.v as Uint16Array) });
  }

  /** Empties the cache and returns its storage now; views it returned must not be used after. */
  release(): void {
    for (const L of this.layers) if (L) { kernelStorage().release(L.k); kernelStorage().release(L.v); }
    this.layers.fill(undefined);
  }

  bytes(): number {
    return this.layers.reduce((s, L) => s + (L ? (L.k.byteLength + L.v.byteLength) : 0), 0);
  }
}

/**
 * f16 cache storage widened into new f32 kernel storage, for a layer (or a paged pool) that met a value f16 cannot hold.
 * The f16 array goes back when garbage-collected, as outgrown buffers do (a view may still hold it).
 */
export function widenedF16(h: Uint16Array): Float32Array {
  const f = kernelStorage().floats(h.length);
  widen16(h, f, 'float16');
  return f;
}

// an empty buffer of the cache's storage type (the first store sizes it)
function empty(dtype: CacheDType): Float32Array | Uint16Array {
  return dtype === 'float16' ? new Uint16Array(0) : new Float32Array(0);
}
