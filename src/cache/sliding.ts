// Sliding-window KV cache: a ring buffer of the last W keys and values per layer, for models trained with a window
// (Mistral; Gemma 2's local layers) or with one imposed (`window`). Key j is kept while j > i − W for the next query,
// so memory stays at W tokens however long the generation. Layers without a window (Gemma 2's global layers) keep
// everything, in a contiguous cache. Results equal the contiguous cache under the same window mask.
import { QkvError } from '../errors.js';
import { fmtShape } from '../tensor/shape.js';
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
    const k = r.k;
    const [B, H, T, D] = k.shape;
    const Dv = r.v.shape[3];
    let ring = this.rings[layer];
    if (!ring) ring = this.rings[layer] = { k: new Float32Array(B * H * W * D), v: new Float32Array(B * H * W * Dv), W, seen: 0, B, H, D, Dv };
    if (ring.B !== B || ring.H !== H || ring.D !== D || ring.Dv !== Dv || ring.W !== W) {
      throw new QkvError(`sliding cache: layer ${layer} holds [B=${ring.B}, Hkv=${ring.H}, W=${ring.W}, D=${ring.D}, Dv=${ring.Dv}], ` +
        `got k ${fmtShape(k.shape)}, v ${fmtShape(r.v.shape)} with window ${W}`);
    }
    // 1. the kept keys (the last n ≤ W positions, oldest first) followed by the T new ones
    const n = Math.min(ring.seen, W);
    const S = n + T;
    const kk = new Float32Array(B * H * S * D);
    const vv = new Float32Array(B * H * S * Dv);
    const [ka, va] = [k.toFloat32(), r.v.toFloat32()];
    for (let bh = 0; bh < B * H; bh++) {
      for (let c = 0; c < n; c++) {
        const slot = (ring.seen - n + c) % W; // position p lives in slot p mod W
        kk.set(ring.k.subarray((bh * W + slot) * D, (bh * W + slot + 1) * D), (bh * S + c) * D);
        vv.set(ring.v.subarray((bh * W + slot) * Dv, (bh * W + slot + 1) * Dv), (bh * S + c) * Dv);
      }
      kk.set(ka.subarray(bh * T * D, (bh + 1) * T * D), (bh * S + n) * D);
      vv.set(va.subarray(bh * T * Dv, (bh + 1) * T * Dv), (bh * S + n) * Dv);
    }
    const keyMask = r.keyMask?.map((row) => row.slice(ring!.seen - n, ring!.seen + T));
    const view: DenseView = { kind: 'dense', k: Tensor.from(kk, [B, H, S, D]), v: Tensor.from(vv, [B, H, S, Dv]), window: W, keyMask };
    // 2. the new tokens enter the ring (only the last W of them can ever be read again)
    for (let t = Math.max(0, T - W); t < T; t++) {
      const slot = (ring.seen + t) % W;
      for (let bh = 0; bh < B * H; bh++) {
        ring.k.set(ka.subarray((bh * T + t) * D, (bh * T + t + 1) * D), (bh * W + slot) * D);
        ring.v.set(va.subarray((bh * T + t) * Dv, (bh * T + t + 1) * Dv), (bh * W + slot) * Dv);
      }
    }
    ring.seen += T;
    return view;
  }

  bytes(): number {
    return this.full.bytes() + this.rings.reduce((s, r) => s + (r ? r.k.byteLength + r.v.byteLength : 0), 0);
  }
}
