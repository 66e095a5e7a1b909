// Contiguous KV cache: per layer one buffer [B, Hkv, capacity, D] for keys and one for values, doubled when full.
// The baseline strategy: simple, fast to append, and wasteful only by the unused tail of the capacity. Keys are
// stored after RoPE. An optional `window` masks keys older than W positions without evicting them — the reference
// the sliding-window cache is checked against. The buffers come from the registry's kernel storage (the WebAssembly
// kernels' memory where it is shared), so the decode kernel reads them in place.
import { QkvError } from '../errors.js';
import { fmtShape } from '../tensor/shape.js';
import { kernelStorage } from '../kernels/registry.js';
import { Tensor } from '../tensor/tensor.js';
import { checkStore, type DenseView, type KVCache, type StoreRequest } from './kv-cache.js';

interface LayerBuffers {
  k: Float32Array; v: Float32Array; cap: number; len: number; B: number; H: number; D: number; Dv: number;
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

  /** `initialCapacity` tokens are reserved per layer at the first update; `window` masks keys older than W. */
  constructor(readonly numLayers: number, readonly initialCapacity = 64, readonly window: number | null = null) {
    checkLayers(numLayers, 'ContiguousKVCache');
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
    if (!L) L = this.layers[layer] = { k: new Float32Array(0), v: new Float32Array(0), cap: 0, len: 0, B, H, D, Dv, inKeys: valuesInKeys };
    if (L.B !== B || L.H !== H || L.D !== D || L.Dv !== Dv || v.shape[2] !== T || L.inKeys !== valuesInKeys) {
      throw new QkvError(`KV cache: layer ${layer} holds [B=${L.B}, Hkv=${L.H}, ·, D=${L.D}], got k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`);
    }
    if (L.len + T > L.cap) this.#grow(L, Math.max(this.initialCapacity, 2 * L.cap, L.len + T));
    // write the new tokens at rows len..len+T−1 of every (b, h)
    const [ka, va] = [k.toFloat32(), v.toFloat32()];
    for (let bh = 0; bh < B * H; bh++) {
      L.k.set(ka.subarray(bh * T * D, (bh + 1) * T * D), (bh * L.cap + L.len) * D);
      if (!L.inKeys) L.v.set(va.subarray(bh * T * Dv, (bh + 1) * T * Dv), (bh * L.cap + L.len) * Dv);
    }
    L.len += T;
    // views over the filled part: strides skip the unused capacity
    const view = (data: Float32Array, d: number) => new Tensor('float32', data, [B, H, L!.len, d], [H * L!.cap * d, L!.cap * d, d, 1], 0);
    if (L.inKeys) return { k: view(L.k, D), v: new Tensor('float32', L.k, [B, H, L.len, Dv], [H * L.cap * D, L.cap * D, D, 1], D - Dv) };
    return { k: view(L.k, D), v: view(L.v, Dv) };
  }

  #grow(L: LayerBuffers, cap: number): void {
    const k = kernelStorage().floats(L.B * L.H * cap * L.D);
    const v = kernelStorage().floats(L.inKeys ? 0 : L.B * L.H * cap * L.Dv);
    for (let bh = 0; bh < L.B * L.H; bh++) {
      k.set(L.k.subarray(bh * L.cap * L.D, (bh * L.cap + L.len) * L.D), bh * cap * L.D);
      if (!L.inKeys) v.set(L.v.subarray(bh * L.cap * L.Dv, (bh * L.cap + L.len) * L.Dv), bh * cap * L.Dv);
    }
    Object.assign(L, { k, v, cap }); // the old buffers go back when garbage-collected (a view may still hold them)
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
