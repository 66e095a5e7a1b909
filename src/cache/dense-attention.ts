// Attention over dense keys and values, as models and the dense caches (contiguous, sliding, sinks) run it: the masks a
// checkpoint needs (causal with a cache offset, padding, a sliding window, T5's bias) become qkv attention options,
// so the tiled kernel skips what is masked. One compatibility rule: transformers masks with a finite minimum, so a
// query row with no allowed key (a left-padding position) becomes a uniform average over all keys; qkv's attention
// returns 0 there. This path reproduces transformers' rows so that model outputs compare position by position.
import { attention } from '../attention/index.js';
import type { AttentionOptions } from '../attention/options.js';
import { applyRope } from '../nn/positional/rope.js';
import { Tensor } from '../tensor/tensor.js';
import type { CacheAttendRequest } from './kv-cache.js';

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
  if (a.keyMask && a.keyMask.some((row) => row.some((x) => !x))) {
    const keep = new Uint8Array(B * S);
    a.keyMask.forEach((row, b) => { for (let j = 0; j < S; j++) keep[b * S + j] = row[j] ? 1 : 0; });
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
  return { out: Tensor.from(out, [B, Hq, T, Dv]), weights: r.weights };
}

/** RoPE on q and k at the given positions (no-op without a spec). */
export function rotate(a: CacheAttendRequest): { q: Tensor; k: Tensor } {
  if (!a.rope) return { q: a.q, k: a.k };
  return { q: applyRope(a.q, a.rope), k: applyRope(a.k, a.rope) };
}

