// The scores and weights of one head for one query, from the q and k a forward returned (outputQkv): what the step,
// FlashAttention and int8 views show, written once.
import type { LayerQkv } from '/qkv/index.js';

/**
 * s_j = scale · q_i·k_j of head h for query i against every key j, −∞ where `masked(j)`; `keys` stands in for k's
 * values (same layout [Hkv, T, D]: a dequantized copy, say).
 */
export function headScores(a: LayerQkv, h: number, i: number, masked: (j: number) => boolean, keys = a.k.toFloat32()): number[] {
  const [, Hq, T, D] = a.q.shape;
  const kvh = Math.floor(h / (Hq / a.k.shape[1])); // GQA: query head h reads kv head ⌊h / G⌋
  const q = a.q.toFloat32().subarray((h * T + i) * D, (h * T + i + 1) * D);
  return Array.from({ length: T }, (_, j) => {
    if (masked(j)) return -Infinity;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[d] * keys[(kvh * T + j) * D + d];
    return a.scale * dot;
  });
}

/** p = softmax(s): e^(s_j − m) / Σ e^(s − m), m = max s (masked keys, −∞, get 0). */
export function softmax(s: readonly number[]): number[] {
  const m = Math.max(...s);
  const e = s.map((x) => Math.exp(x - m));
  const z = e.reduce((x, y) => x + y, 0);
  return e.map((x) => x / z);
}
