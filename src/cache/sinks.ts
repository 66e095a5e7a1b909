// Attention sinks (StreamingLLM, Xiao et al. 2024, https://arxiv.org/abs/2309.17453): keep the first `sinks` tokens —
// which soak up attention mass in every trained model — plus a window of the most recent tokens, and evict the rest.
// As in the paper, positions are assigned inside the cache: keys are stored before RoPE and rotated by their index in
// the cache (sinks 0..k−1, then the recent window), and the query by its own index, so positions never exceed the
// cache size and generation runs past the model's trained context. Needs a RoPE model.
// Storage per layer and head: the sink slots, then a ring of `window` slots where the token after the sinks numbered
// w lives at slot w mod window. A step's view copies them out in cache order (sinks, then the window oldest first: two
// runs of the ring at most) ahead of the new tokens, into the layer's arena, where the SIMD RoPE kernel rotates them.
import { QkvError } from '../errors.js';
import { fmtShape } from '../tensor/shape.js';
import { activationFloats } from '../tensor/arena.js';
import { Tensor } from '../tensor/tensor.js';
import { checkLayers } from './contiguous.js';
import { checkStore, type DenseView, type KVCache, type StoreRequest } from './kv-cache.js';

// a layer's slots: k [H][sinks + window][D], v likewise with Dv; `seen` tokens stored so far
interface Kept { k: Float32Array; v: Float32Array; seen: number; H: number; D: number; Dv: number }

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
    const slots = this.sinks + this.window;
    const L = (this.layers[layer] ??= { k: new Float32Array(H * slots * D), v: new Float32Array(H * slots * Dv), seen: 0, H, D, Dv });
    if (L.H !== H || L.D !== D || L.Dv !== Dv) {
      const got = `got k ${fmtShape(r.k.shape)}, v ${fmtShape(r.v.shape)}`;
      throw new QkvError(`sinks cache: layer ${layer} holds [Hkv=${L.H}, D=${L.D}, Dv=${L.Dv}], ${got}`);
    }
    const [ka, va] = [r.k.toFloat32(), r.v.toFloat32()];
    // 1. the kept keys in cache order (sinks, then the window oldest first), all before RoPE, and the new ones after
    const runs = this.#keptRuns(L.seen);
    const n = runs.reduce((s, [, len]) => s + len, 0);
    const S = n + T;
    const [kk, vv] = [this.#view(L.k, ka, runs, H, S, T, D), this.#view(L.v, va, runs, H, S, T, Dv)];
    // 2. positions inside the cache: key c at position c, query t at n + t (the attention layer rotates by them)
    const positions = { keys: Array.from({ length: S }, (_, c) => c), queries: Array.from({ length: T }, (_, t) => n + t) };
    // the model's own window for this layer (Gemma's local layers) still applies, over the positions inside the cache
    const window = r.slidingWindow ?? null;
    const view: DenseView = { kind: 'dense', k: Tensor.from(kk, [1, H, S, D]), v: Tensor.from(vv, [1, H, S, Dv]), window, positions };
    // 3. the new tokens into their slots: the first `sinks` of the stream, then the ring (only its last `window` matter)
    for (let t = 0; t < T; t++) {
      const p = L.seen + t;
      if (p >= this.sinks && p < L.seen + T - this.window) continue; // overwritten by a later new token
      const slot = p < this.sinks ? p : this.sinks + ((p - this.sinks) % this.window);
      for (let h = 0; h < H; h++) {
        L.k.set(ka.subarray((h * T + t) * D, (h * T + t + 1) * D), (h * slots + slot) * D);
        L.v.set(va.subarray((h * T + t) * Dv, (h * T + t + 1) * Dv), (h * slots + slot) * Dv);
      }
    }
    L.seen += T;
    return view;
  }

  // the kept tokens after `seen` stored, as runs [first slot, length] in cache order: the sinks, then the window's
  // oldest … newest (one run, or two where the ring wraps)
  #keptRuns(seen: number): [number, number][] {
    const runs: [number, number][] = [[0, Math.min(seen, this.sinks)]];
    const inWindow = Math.min(Math.max(seen - this.sinks, 0), this.window);
    const oldest = (Math.max(seen - this.sinks, 0) - inWindow) % this.window; // ring slot of the oldest kept one
    const first = Math.min(inWindow, this.window - oldest);
    runs.push([this.sinks + oldest, first], [this.sinks, inWindow - first]);
    return runs.filter(([, len]) => len > 0);
  }

  // [H][S][d]: per head the kept runs of `slots`, then the T new rows of `fresh` ([H][T][d]); in the layer's arena when
  // a forward has one open (it dies with the layer, every float written): the SIMD RoPE kernel then rotates it in place
  #view(slots: Float32Array, fresh: Float32Array, runs: [number, number][], H: number, S: number, T: number, d: number): Float32Array {
    const out = activationFloats(H * S * d);
    const perHead = this.sinks + this.window;
    for (let h = 0; h < H; h++) {
      let at = h * S * d;
      for (const [slot, len] of runs) {
        out.set(slots.subarray((h * perHead + slot) * d, (h * perHead + slot + len) * d), at);
        at += len * d;
      }
      out.set(fresh.subarray(h * T * d, (h + 1) * T * d), at);
    }
    return out;
  }

  bytes(): number {
    return this.layers.reduce((s, L) => s + (L ? L.k.byteLength + L.v.byteLength : 0), 0);
  }
}
