// Sliding-window KV cache: a ring buffer of the last W keys and values per layer, for models trained with a window
// (Mistral; Gemma's local layers) or with one imposed (`window`). Key j is kept while j > i − W for the next query,
// so memory stays at W tokens however long the generation. Layers without a window (Gemma's global layers) keep
// everything, in a contiguous cache. Results equal the contiguous cache under the same window mask.
// Position p lives in slot p mod W of the ring, in the kernels' storage. A decode step (one new token) writes its key
// over the oldest — the one key its window leaves out — and attention reads the ring where it lies: every key there is
// in the window, and keys are stored after RoPE, so their order does not matter (a padding mask is put in slot order).
// A longer step (a prefill chunk) needs its keys in order for its causal and window masks: the kept keys are copied
// out, oldest first, ahead of the new ones.
import { QkvError } from '../errors.js';
import { kernelStorage } from '../kernels/registry.js';
import { fmtShape } from '../tensor/shape.js';
import { activationFloats } from '../tensor/arena.js';
import { Tensor } from '../tensor/tensor.js';
import { checkLayers, ContiguousKVCache } from './contiguous.js';
import { checkStore, type DenseView, type KVCache, type StoreRequest } from './kv-cache.js';

interface Ring { k: Float32Array; v: Float32Array; W: number; seen: number; B: number; H: number; D: number; Dv: number }

export class SlidingWindowKVCache implements KVCache {
  readonly kind = 'sliding';
  readonly view = 'dense';
  private readonly rings: (Ring | undefined)[];
  private readonly full: ContiguousKVCache;

  /** `window`: used for layers the model gives no window of its own (null: only the model's windows). */
  constructor(readonly numLayers: number, readonly window: number | null = null) {
    checkLayers(numLayers, 'SlidingWindowKVCache');
    if (window !== null && (!Number.isInteger(window) || window < 1)) {
      throw new QkvError(`sliding cache: window must be a positive integer, got ${String(window)}`);
    }
    this.rings = new Array(numLayers);
    this.full = new ContiguousKVCache(numLayers);
  }

  length(layer: number): number {
    return this.rings[layer]?.seen ?? this.full.length(layer);
  }

  store(layer: number, r: StoreRequest): DenseView {
    checkStore(layer, r, this.numLayers, 'SlidingWindowKVCache.store');
    const W = r.slidingWindow ?? this.window;
    if (!W) return this.full.store(layer, r); // a global layer: keep everything
    const ring = this.#ring(layer, r, W);
    const T = r.k.shape[2];
    const [ka, va] = [r.k.toFloat32(), r.v.toFloat32()];
    if (T === 1) { // decode: the new key over the oldest, then the ring as it lies
      this.#enter(ring, ka, va, 1);
      return this.#inPlace(ring, r.keyMask);
    }
    const view = this.#inOrder(ring, ka, va, T, r.keyMask);
    this.#enter(ring, ka, va, T);
    return view;
  }

  // the layer's ring, made at its first store; refuses keys of another shape or window
  #ring(layer: number, r: StoreRequest, W: number): Ring {
    const [B, H, , D] = r.k.shape;
    const Dv = r.v.shape[3];
    const slots = (d: number) => kernelStorage().floats(B * H * W * d);
    const ring = (this.rings[layer] ??= { k: slots(D), v: slots(Dv), W, seen: 0, B, H, D, Dv });
    if (ring.B !== B || ring.H !== H || ring.D !== D || ring.Dv !== Dv || ring.W !== W) {
      throw new QkvError(`sliding cache: layer ${layer} holds [B=${ring.B}, Hkv=${ring.H}, W=${ring.W}, D=${ring.D}, Dv=${ring.Dv}], ` +
        `got k ${fmtShape(r.k.shape)}, v ${fmtShape(r.v.shape)} with window ${W}`);
    }
    return ring;
  }

  // the T new tokens enter the ring at slots (seen + t) mod W (only the last W of them can ever be read again)
  #enter(ring: Ring, ka: Float32Array, va: Float32Array, T: number): void {
    const { W, B, H, D, Dv } = ring;
    for (let t = Math.max(0, T - W); t < T; t++) {
      const slot = (ring.seen + t) % W;
      for (let bh = 0; bh < B * H; bh++) {
        ring.k.set(ka.subarray((bh * T + t) * D, (bh * T + t + 1) * D), (bh * W + slot) * D);
        ring.v.set(va.subarray((bh * T + t) * Dv, (bh * T + t + 1) * Dv), (bh * W + slot) * Dv);
      }
    }
    ring.seen += T;
  }

  // a decode step's view, the new token already in: the ring's filled slots where they lie, no window to apply (every
  // key there is one of the query's last W), the padding mask's columns in slot order
  #inPlace(ring: Ring, keyMask: StoreRequest['keyMask']): DenseView {
    const { W, B, H, D, Dv, seen } = ring;
    const n = Math.min(seen, W);
    const view = (data: Float32Array, d: number) => new Tensor('float32', data, [B, H, n, d], [H * W * d, W * d, d, 1], 0);
    // slot c holds position c while the ring is filling, then the position p ≡ c (mod W) of the last W
    const position = (c: number) => (seen <= W ? c : seen - W + ((c - seen % W + W) % W));
    const mask = keyMask?.map((row) => Array.from({ length: n }, (_, c) => row[position(c)]));
    return { kind: 'dense', k: view(ring.k, D), v: view(ring.v, Dv), window: null, keyMask: mask };
  }

  // a longer step's view: the kept keys (the last n ≤ W − 1 positions a new query's window reaches, oldest first), then
  // the T new ones, under the window
  #inOrder(ring: Ring, ka: Float32Array, va: Float32Array, T: number, keyMask: StoreRequest['keyMask']): DenseView {
    const { W, B, H, D, Dv, seen } = ring;
    const n = Math.min(seen, W - 1);
    const S = n + T;
    const [kk, vv] = [activationFloats(B * H * S * D), activationFloats(B * H * S * Dv)]; // every float written; they die with the layer
    for (let bh = 0; bh < B * H; bh++) {
      for (let c = 0; c < n; c++) {
        const slot = (seen - n + c) % W; // position p lives in slot p mod W
        kk.set(ring.k.subarray((bh * W + slot) * D, (bh * W + slot + 1) * D), (bh * S + c) * D);
        vv.set(ring.v.subarray((bh * W + slot) * Dv, (bh * W + slot + 1) * Dv), (bh * S + c) * Dv);
      }
      kk.set(ka.subarray(bh * T * D, (bh + 1) * T * D), (bh * S + n) * D);
      vv.set(va.subarray(bh * T * Dv, (bh + 1) * T * Dv), (bh * S + n) * Dv);
    }
    const mask = keyMask?.map((row) => row.slice(seen - n, seen + T));
    return { kind: 'dense', k: Tensor.from(kk, [B, H, S, D]), v: Tensor.from(vv, [B, H, S, Dv]), window: W, keyMask: mask };
  }

  bytes(): number {
    return this.full.bytes() + this.rings.reduce((s, r) => s + (r ? r.k.byteLength + r.v.byteLength : 0), 0);
  }
}
