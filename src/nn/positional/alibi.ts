// ALiBi (Press et al. 2022, https://arxiv.org/abs/2108.12409): no position embeddings; each head adds
// −slope_h · |i′ − j| to its scores. The slopes live with the attention spec (score-mods.ts); this file makes the
// dense bias for pictures and for code that wants it as a tensor.
import { alibiSlopes } from '../../attention/score-mods.js';
import { describeValue, QkvError } from '../../errors.js';
import { Tensor } from '../../tensor/tensor.js';

export { alibiSlopes };

/** The dense ALiBi bias [1, H, L, S]: bias_hij = −slope_h · |i + S − L − j|. */
export function alibiBias(slopes: ArrayLike<number>, L: number, S: number): Tensor {
  const list = Array.isArray(slopes) || ArrayBuffer.isView(slopes);
  if (!list || !Array.from(slopes as ArrayLike<unknown>).every((x) => typeof x === 'number')) {
    throw new QkvError(`alibiBias: slopes must be a list of numbers, got ${describeValue(slopes)}`);
  }
  for (const [n, x] of [['L', L], ['S', S]] as const) {
    if (!Number.isSafeInteger(x) || x < 0) throw new QkvError(`alibiBias: ${n} must be an integer ≥ 0, got ${String(x)}`);
  }
  const H = slopes.length;
  // at most 2^30 numbers (4 GiB; 10⁵ × 10⁵ had been a raw RangeError): attention's alibiSlopes option needs no dense bias
  if (H * L * S > 2 ** 30) {
    throw new QkvError(`alibiBias: H · L · S must be ≤ 2^30, got ${H} · ${L} · ${S} (attention takes alibiSlopes instead)`);
  }
  const out = new Float32Array(H * L * S);
  for (let h = 0; h < H; h++) for (let i = 0; i < L; i++) for (let j = 0; j < S; j++) {
    out[(h * L + i) * S + j] = 0 - slopes[h] * Math.abs(i + S - L - j); // 0 − x: no −0 on the diagonal
  }
  return Tensor.from(out, [1, H, L, S]);
}
