// The attention layer every model family calls: heads in, heads out. With a KV cache it is the one place a layer's
// attention happens: RoPE on the new q and k, the cache stores k and v and returns a view of everything the layer
// keeps (cache/kv-cache.ts), and attention reads that view — dense tensors through attention(), a block pool through
// paged attention. The masks a checkpoint needs (causal with a cache offset, left/right padding, a sliding window,
// T5's position bias) become qkv attention options, so the tiled kernels skip what is masked.
// One compatibility rule: transformers masks with a finite minimum, so a query row with no allowed key (a left-padding
// position) becomes a uniform average over all keys; qkv's attention returns 0 there. The dense path reproduces
// transformers' rows so that model outputs compare position by position.
import { attention } from '../attention/index.js';
import type { AttentionOptions } from '../attention/options.js';
import { pagedAttention } from '../attention/paged.js';
import type { DenseView, KVCache, PagedView } from '../cache/kv-cache.js';
import { QkvError } from '../errors.js';
import { applyRope, type RopeFrequencies } from '../nn/positional/rope.js';
import { activationContiguous } from '../tensor/arena.js';
import { f16ToF32 } from '../tensor/f16.js';
import { Tensor } from '../tensor/tensor.js';

/** RoPE to apply to q and k: frequencies and the absolute position of every new token (row-major [B, T]); pairs
 *  (k, k + d/2), or (2k, 2k + 1) when interleaved (DeepSeek). Turns the first 2·|inv_freq| dims of each head. */
export interface RopeSpec { freqs: RopeFrequencies; positions: readonly number[]; style?: 'rotate-half' | 'interleaved' }

/** One attention call of a layer. q [B, Hq, T, D], k [B, Hkv, T, D], v [B, Hkv, T, Dv] (the new tokens, before RoPE). */
export interface CacheAttendRequest {
  q: Tensor; k: Tensor; v: Tensor;
  rope?: RopeSpec;
  scale: number;
  causal: boolean;
  /** Per row, over all keys so far (cached + new): 1 real, 0 padding. */
  keyMask?: readonly (readonly number[])[];
  /** The model's sliding window for this layer (keys j > i − W), or null. */
  slidingWindow?: number | null;
  softcap?: number;
  /** Learned sink logits [Hq] (gpt-oss; attention/sinks.ts). */
  sinks?: Float32Array;
  /** The values are the keys' last Dv dims (absorbed MLA): the cache may keep the keys only. */
  valuesInKeys?: boolean;
  /** This layer reads no positions at all (a NoPE layer): a cache that assigns positions needs no RoPE for it. */
  positionFree?: boolean;
  /** Additive bias [.., T, S] (T5's relative positions); a paged view is gathered into dense tensors for it. */
  bias?: Tensor;
  returnWeights?: boolean;
}

/** Heads out: [B, Hq, T, Dv], and the weights [B, Hq, T, S] on request. */
export interface CacheAttendResult { out: Tensor; weights?: Tensor }

/** What a model layer asks of attention: the request, plus the cache and layer when there is one. */
export interface ModelAttention extends CacheAttendRequest {
  cache?: KVCache;
  layer?: number;
}

/** Runs a layer's attention (through the cache when there is one); returns out [B, T, Hq·Dv] and the weights. */
export function modelAttention(a: ModelAttention): { out: Tensor; weights?: Tensor } {
  const r = a.cache ? cachedAttention(a.cache, a.layer ?? 0, a) : denseAttention({ ...a, ...rotate(a) });
  const [B, Hq, T, Dv] = r.out.shape;
  // [B, T, Hq·Dv]: heads merged in the layer's arena (a fresh 1 MiB array a layer at 512 tokens waited for the collector)
  return { out: activationContiguous(r.out.transpose(1, 2)).reshape([B, T, Hq * Dv]), weights: r.weights };
}

/**
 * Attention through a KV cache: RoPE, store, view → attention. A cache that assigns positions (sinks) takes the keys
 * before RoPE, and its view says where each kept key and each new query sits.
 */
export function cachedAttention(cache: KVCache, layer: number, r: CacheAttendRequest): CacheAttendResult {
  if (cache.assignsPositions && !r.rope && !r.positionFree) {
    throw new QkvError(`${cache.kind} cache: attention sinks re-position keys with RoPE; this model has no rotary embedding`);
  }
  const { q, k } = cache.assignsPositions ? { q: r.q, k: r.k } : rotate(r);
  const view = cache.store(layer, { k, v: r.v, keyMask: r.keyMask, slidingWindow: r.slidingWindow, valuesInKeys: r.valuesInKeys });
  // paged attention reads causal, window, soft-capping and padding through the tables; anything more (T5's bias) is
  // computed on the view gathered into dense tensors, so every cache serves every request
  if (view.kind === 'paged' && !r.bias) return pagedView(view, q, r);
  if (view.kind === 'paged') return denseView({ ...gatherPaged(view), window: r.slidingWindow ?? null }, q, r);
  return denseView(view, q, r);
}

// a dense view: keys rotated by the cache's positions where it assigns them, then attention() with the view's window
function denseView(view: DenseView, q: Tensor, r: CacheAttendRequest): CacheAttendResult {
  let { k } = view;
  if (view.positions && r.rope) {
    const freqs = r.rope!.freqs;
    k = applyRope(k, { freqs, positions: view.positions.keys, style: r.rope!.style });
    q = applyRope(q, { freqs, positions: view.positions.queries, style: r.rope!.style });
  }
  return denseAttention({ ...r, q, k, v: view.v, keyMask: view.keyMask, slidingWindow: view.window });
}

/**
 * A paged view as dense tensors: k [B, Hkv, S, D], v [B, Hkv, S, Dv] with S the longest row (int8 dequantized:
 * k = scale · k8); a shorter row's keys are right-aligned (its queries sit at its end, as the paged kernel has them)
 * and the keys before them are padding in the key mask.
 */
export function gatherPaged(view: PagedView): DenseView {
  const { pool, blockTables, seqLens } = view;
  const { blockSize, Hkv, D, Dv } = pool;
  const B = seqLens.length;
  const S = Math.max(0, ...seqLens);
  const k = new Float32Array(B * Hkv * S * D);
  const v = new Float32Array(B * Hkv * S * Dv);
  // key col of row b holds its key j = col − (S − len_b): real when col ≥ S − len_b and the row's own mask allows it
  const real = (b: number, col: number) => col >= S - seqLens[b] && (view.keyMask?.[b]?.[col - (S - seqLens[b])] ?? 1) ? 1 : 0;
  const keyMask = seqLens.map((_, b) => Array.from({ length: S }, (__, col) => real(b, col)));
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < seqLens[b]; j++) {
      const col = S - seqLens[b] + j; // right-aligned
      for (let h = 0; h < Hkv; h++) {
        const slot = (blockTables[b][Math.floor(j / blockSize)] * Hkv + h) * blockSize + (j % blockSize);
        const [ks, vs] = [pool.kScale?.[slot] ?? 1, pool.vScale?.[slot] ?? 1];
        for (let d = 0; d < D; d++) k[((b * Hkv + h) * S + col) * D + d] = ks * element(pool.k, slot * D + d);
        for (let d = 0; d < Dv; d++) v[((b * Hkv + h) * S + col) * Dv + d] = vs * element(pool.v, slot * Dv + d);
      }
    }
  }
  return { kind: 'dense', k: Tensor.from(k, [B, Hkv, S, D]), v: Tensor.from(v, [B, Hkv, S, Dv]), keyMask, window: null };
}

// element i of a pool's keys or values: an f16 pool's bits as their value
function element(a: Float32Array | Int8Array | Uint16Array, i: number): number {
  return a instanceof Uint16Array ? f16ToF32(a[i]) : a[i];
}

// a block pool: paged attention through the tables (causal, window, soft-capping and padding are what it reads)
function pagedView(view: PagedView, q: Tensor, r: CacheAttendRequest): CacheAttendResult {
  const [B, Hq, T] = q.shape;
  const Dv = view.pool.Dv;
  const res = pagedAttention({
    q: q.toFloat32(), B, Hq, T, scale: r.scale, softcap: r.softcap ?? 0, causal: r.causal, window: r.slidingWindow ?? null,
    blockTables: view.blockTables, seqLens: view.seqLens, keyMask: view.keyMask, pool: view.pool, sinks: r.sinks,
  }, r.returnWeights);
  return { out: Tensor.from(res.out, [B, Hq, T, Dv]), weights: res.weights ? Tensor.from(res.weights, [B, Hq, T, res.maxS]) : undefined };
}

/** Attention over dense k, v [B, Hkv, S, ·] (the new tokens last): heads [B, Hq, T, Dv], weights on request. */
export function denseAttention(a: CacheAttendRequest): { out: Tensor; weights?: Tensor } {
  const [B, Hq, T] = a.q.shape;
  const S = a.k.shape[2];
  const Dv = a.v.shape[3];
  const o: AttentionOptions = { scale: a.scale, returnWeights: a.returnWeights };
  if (a.causal) o.causal = 'bottom-right';
  if (a.slidingWindow) o.window = [a.slidingWindow - 1, a.causal ? 0 : a.slidingWindow - 1];
  if (a.softcap) o.softcap = a.softcap;
  if (a.bias) o.bias = a.bias;
  if (a.sinks) o.sinks = a.sinks; // with sinks no row is fully masked: a padding row's mass goes to the sink, as in transformers
  if (a.keyMask && a.keyMask.some((row) => row.some((x) => !x))) {
    const keep = new Uint8Array(B * S);
    a.keyMask.forEach((row, b) => { for (let j = 0; j < S; j++) keep[b * S + j] = row[j] ? 1 : 0; });
    o.mask = new Tensor('bool', keep, [B, 1, 1, S]);
  }
  const r = attention(a.q, a.k, a.v, o);
  const out = r.out.toFloat32();
  const lse = r.lse.toFloat32();
  // transformers' fully-masked rows (a left-padded prompt's padding): uniform weights 1/S, output the mean of all values —
  // one mean per (batch, kv head), read once (per element through v.get it had cost a padded batch most of its time)
  const Hkv = a.k.shape[1];
  const means = new Map<number, Float64Array>();
  const meanOf = (b: number, kvh: number) => {
    const key = b * Hkv + kvh;
    if (!means.has(key)) means.set(key, valueMean(a.v, b, kvh));
    return means.get(key)!;
  };
  for (let row = 0; row < lse.length; row++) {
    if (lse[row] !== -Infinity) continue;
    const [b, h] = [Math.floor(row / (Hq * T)), Math.floor(row / T) % Hq];
    const mean = meanOf(b, Math.floor(h / (Hq / Hkv)));
    for (let d = 0; d < Dv; d++) out[row * Dv + d] += mean[d];
    if (r.weights) r.weights.toFloat32().fill(1 / S, row * S, (row + 1) * S);
  }
  return { out: Tensor.from(out, [B, Hq, T, Dv]), weights: r.weights };
}

// the mean over keys of v [B, Hkv, S, Dv] at (b, kv head), as Dv numbers
function valueMean(v: Tensor, b: number, kvh: number): Float64Array {
  const [, , S, Dv] = v.shape;
  const rows = v.slice(0, b, b + 1).slice(1, kvh, kvh + 1).toFloat32(); // [S, Dv] of this head
  const mean = new Float64Array(Dv);
  for (let j = 0; j < S; j++) for (let d = 0; d < Dv; d++) mean[d] += rows[j * Dv + d];
  return mean.map((x) => x / S);
}

/** RoPE on q and k at the given positions (no-op without a spec). */
export function rotate(a: CacheAttendRequest): { q: Tensor; k: Tensor } {
  if (!a.rope) return { q: a.q, k: a.k };
  return { q: applyRope(a.q, a.rope), k: applyRope(a.k, a.rope) };
}


/** [B, T, H·D] → [B, H, T, D]. */
export function splitHeads(x: Tensor, H: number): Tensor {
  return headsView(x, H).contiguous();
}

/** [B, T, H·D] viewed as [B, H, T, D] (strided; nothing copied). */
export function headsView(x: Tensor, H: number): Tensor {
  const [B, T] = x.shape;
  return x.reshape([B, T, H, -1]).transpose(1, 2);
}
