// Attention sinks (StreamingLLM, Xiao et al. 2024, https://arxiv.org/abs/2309.17453): keep the first `sinks` tokens —
// which soak up attention mass in every trained model — plus a window of the most recent tokens, and evict the rest.
// As in the paper, positions are assigned inside the cache: keys are stored before RoPE and rotated by their index in
// the cache (sinks 0..k−1, then the recent window), and the query by its own index, so positions never exceed the
// cache size and generation runs past the model's trained context. Needs a RoPE model.
import { QkvError } from '../errors.js';
import { fmtShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { checkLayers } from './contiguous.js';
import { checkStore, type DenseView, type KVCache, type StoreRequest } from './kv-cache.js';

interface Kept { k: Float32Array[]; v: Float32Array[]; seen: number; H: number; D: number; Dv: number }

export class SinkKVCache implements KVCache {
  readonly kind = 'sinks';
  readonly view = 'dense';
  readonly unboundedContext = true;
  readonly assignsPositions = true;
  private readonly layers: (Kept | undefined)[];

  constructor(readonly numLayers: number, readonly sinks = 4, readonly window = 252) {
    checkLayers(numLayers, 'SinkKVCache');
    if (!Number.isInteger(sinks) || sinks < 0 || !Number.isInteger(window) || window < 1) {
      throw new QkvError(`sinks cache: sinks must be ≥ 0 and window ≥ 1 (integers), got ${String(sinks)}, ${String(window)}`);
    }
    this.layers = new Array(numLayers);
  }

  length(layer: number): number {
    return this.layers[layer]?.seen ?? 0;
  }

  store(layer: number, r: StoreRequest): DenseView {
    checkStore(layer, r, this.numLayers, 'SinkKVCache.store');
    const [B, H, T, D] = r.k.shape;
    if (B !== 1) throw new QkvError(`sinks cache: one sequence at a time (B=1), got B=${B}`);
    const Dv = r.v.shape[3];
    const L = (this.layers[layer] ??= { k: [], v: [], seen: 0, H, D, Dv });
    if (L.H !== H || L.D !== D || L.Dv !== Dv) {
      const got = `got k ${fmtShape(r.k.shape)}, v ${fmtShape(r.v.shape)}`;
      throw new QkvError(`sinks cache: layer ${layer} holds [Hkv=${L.H}, D=${L.D}, Dv=${L.Dv}], ${got}`);
    }
    // 1. kept keys (sinks, then the recent window) + new keys, all before RoPE, one Float32Array per head and token
    const [ka, va] = [r.k.toFloat32(), r.v.toFloat32()];
    const n = L.k.length / H;
    const S = n + T;
    const kk = new Float32Array(H * S * D);
    const vv = new Float32Array(H * S * Dv);
    for (let h = 0; h < H; h++) {
      for (let c = 0; c < n; c++) { kk.set(L.k[c * H + h], (h * S + c) * D); vv.set(L.v[c * H + h], (h * S + c) * Dv); }
      kk.set(ka.subarray(h * T * D, (h + 1) * T * D), (h * S + n) * D);
      vv.set(va.subarray(h * T * Dv, (h + 1) * T * Dv), (h * S + n) * Dv);
    }
    // 2. positions inside the cache: key c at position c, query t at n + t (the attention layer rotates by them)
    const positions = { keys: Array.from({ length: S }, (_, c) => c), queries: Array.from({ length: T }, (_, t) => n + t) };
    // the model's own window for this layer (Gemma's local layers) still applies, over the positions inside the cache
    const window = r.slidingWindow ?? null;
    const view: DenseView = { kind: 'dense', k: Tensor.from(kk, [1, H, S, D]), v: Tensor.from(vv, [1, H, S, Dv]), window, positions };
    // 3. keep the new tokens, then evict the oldest non-sink tokens beyond sinks + window
    for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) {
      L.k.push(ka.slice((h * T + t) * D, (h * T + t + 1) * D));
      L.v.push(va.slice((h * T + t) * Dv, (h * T + t + 1) * Dv));
    }
    const keep = this.sinks + this.window;
    const tokens = L.k.length / H;
    if (tokens > keep) {
      const drop = (tokens - keep) * H;
      L.k.splice(this.sinks * H, drop);
      L.v.splice(this.sinks * H, drop);
    }
    L.seen += T;
    return view;
  }

  bytes(): number {
    return this.layers.reduce((s, L) => s + (L ? L.k.reduce((a, x) => a + x.byteLength, 0) + L.v.reduce((a, x) => a + x.byteLength, 0) : 0), 0);
  }
}
