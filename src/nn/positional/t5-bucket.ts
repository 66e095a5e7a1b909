// T5 relative position buckets (Raffel et al. 2020; transformers' T5Attention._relative_position_bucket).
// Relative position r = key − query. Half the buckets are exact small distances, the rest grow logarithmically up to
// maxDistance; bidirectional (encoder) buckets separate r > 0 from r ≤ 0, causal (decoder) ones clamp r > 0 to 0.
// The log step is done in float32 as torch does, so boundary cases land in the same bucket.
import { notANumber, QkvError } from '../../errors.js';
import { checkTensor, Tensor } from '../../tensor/tensor.js';

/** The bucket of relative position r = key − query. */
export function t5RelativeBucket(r: number, bidirectional = true, numBuckets = 32, maxDistance = 128): number {
  if (typeof r !== 'number') notANumber('t5RelativeBucket', r);
  if (typeof numBuckets !== 'number') notANumber('t5RelativeBucket: numBuckets', numBuckets);
  if (typeof maxDistance !== 'number') notANumber('t5RelativeBucket: maxDistance', maxDistance);
  let bucket = 0;
  let n = numBuckets;
  if (bidirectional) {
    n = Math.floor(n / 2);
    if (r > 0) bucket += n;
    r = Math.abs(r);
  } else {
    r = -Math.min(r, 0);
  }
  const maxExact = Math.floor(n / 2);
  if (r < maxExact) return bucket + r;
  // maxExact + log(r / maxExact) / log(maxDistance / maxExact) · (n − maxExact), each step rounded to float32
  const f = Math.fround;
  const large = f(f(f(Math.log(f(r / maxExact))) / f(Math.log(maxDistance / maxExact))) * (n - maxExact));
  return bucket + Math.min(maxExact + Math.trunc(large), n - 1);
}

/**
 * The T5 relative attention bias [1, H, L, S] from the learned table [numBuckets, H]:
 * bias_hij = table[bucket(j − i), h]. `queryOffset` places query i at position i + queryOffset (decoding).
 */
export function t5RelativeBias(table: Tensor, L: number, S: number, bidirectional: boolean, maxDistance = 128, queryOffset = 0): Tensor {
  checkTensor(table, 't5RelativeBias: table');
  for (const [n, x] of [['L', L], ['S', S], ['maxDistance', maxDistance], ['queryOffset', queryOffset]] as const) {
    if (!Number.isSafeInteger(x) || x < 0) throw new QkvError(`t5RelativeBias: ${n} must be an integer ≥ 0, got ${String(x)}`);
  }
  if (table.rank !== 2) throw new QkvError(`t5RelativeBias: table must be [numBuckets, heads], got [${table.shape}]`);
  const [numBuckets, H] = table.shape;
  // at most 2^30 numbers, 4 GiB (T5 over 8,192 tokens with 8 heads: 2^29; 10⁵ × 10⁵ had been a raw RangeError)
  if (H * L * S > 2 ** 30) throw new QkvError(`t5RelativeBias: heads · L · S must be ≤ 2^30, got ${H} · ${L} · ${S}`);
  const w = table.toFloat32();
  const out = new Float32Array(H * L * S);
  for (let i = 0; i < L; i++) for (let j = 0; j < S; j++) {
    const b = t5RelativeBucket(j - (i + queryOffset), bidirectional, numBuckets, maxDistance);
    for (let h = 0; h < H; h++) out[(h * L + i) * S + j] = w[b * H + h];
  }
  return Tensor.from(out, [1, H, L, S]);
}
