// The attention call every model family makes: heads in, heads out, with the masks a checkpoint needs (causal with
// a cache offset, left/right padding, a sliding window, T5's position bias) expressed as qkv attention options, so
// the tiled kernel skips what is masked. One compatibility rule: transformers masks with a finite minimum, so a
// query row with no allowed key (a left-padding position) becomes a uniform average over all keys; qkv's
// attention returns 0 there. Models reproduce transformers' rows so their outputs compare position by position.
import { attention } from '../attention/index.js';
import type { AttentionOptions } from '../attention/options.js';
import { Tensor } from '../tensor/tensor.js';

/** What a model layer asks of attention. */
export interface ModelAttention {
  /** q [B, Hq, T, D]; k, v [B, Hkv, S, ·] with the T new tokens last (bottom-right aligned). */
  q: Tensor; k: Tensor; v: Tensor;
  scale: number;
  causal: boolean;
  /** Per row, 1 for a real key and 0 for padding, over all S keys. */
  keyMask?: readonly (readonly number[])[];
  /** Keys within `slidingWindow` positions: j > i − slidingWindow (transformers' convention). */
  slidingWindow?: number | null;
  softcap?: number;
  /** Additive position bias broadcastable to [B, Hq, T, S] (T5). */
  bias?: Tensor;
  returnWeights?: boolean;
}

/** Runs attention; returns out [B, T, Hq·Dv] (heads merged) and the weights [B, Hq, T, S] on request. */
export function modelAttention(a: ModelAttention): { out: Tensor; weights?: Tensor } {
  const [B, Hq, T] = a.q.shape;
  const S = a.k.shape[2];
  const Dv = a.v.shape[3];
  const o: AttentionOptions = { scale: a.scale, returnWeights: a.returnWeights };
  if (a.causal) o.causal = 'bottom-right';
  if (a.slidingWindow) o.window = [a.slidingWindow - 1, a.causal ? 0 : a.slidingWindow - 1];
  if (a.softcap) o.softcap = a.softcap;
  if (a.bias) o.bias = a.bias;
  if (a.keyMask && a.keyMask.some((row) => row.some((x) => !x))) {
    const keep = new Uint8Array(B * S);
    a.keyMask.forEach((row, b) => row.forEach((x, j) => { keep[b * S + j] = x ? 1 : 0; }));
    o.mask = new Tensor('bool', keep, [B, 1, 1, S]);
  }
  const r = attention(a.q, a.k, a.v, o);
  const out = r.out.toFloat32();
  const lse = r.lse.toFloat32();
  // transformers' fully-masked rows: uniform weights 1/S, output the mean of all values
  for (let row = 0; row < lse.length; row++) {
    if (lse[row] !== -Infinity) continue;
    const [b, h] = [Math.floor(row / (Hq * T)), Math.floor(row / T) % Hq];
    const kvh = Math.floor(h / (Hq / a.k.shape[1]));
    for (let j = 0; j < S; j++) for (let d = 0; d < Dv; d++) out[row * Dv + d] += a.v.get(b, kvh, j, d) / S;
    if (r.weights) r.weights.toFloat32().fill(1 / S, row * S, (row + 1) * S);
  }
  const merged = Tensor.from(out, [B, Hq, T, Dv]).transpose(1, 2).reshape([B, T, Hq * Dv]); // [B, T, Hq·Dv]
  return { out: merged, weights: r.weights };
}

/** [B, T, H·D] → [B, H, T, D]. */
export function splitHeads(x: Tensor, H: number): Tensor {
  const [B, T] = x.shape;
  return x.reshape([B, T, H, -1]).transpose(1, 2).contiguous();
}
