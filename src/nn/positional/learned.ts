// Learned absolute positions (BERT, GPT-2): a trained table [maxLen, d] indexed by position.
import { QkvError } from '../../errors.js';
import { fmtShape } from '../../tensor/shape.js';
import { Tensor } from '../../tensor/tensor.js';

/** Gathers rows of an embedding table: out[..., :] = table[ids[...], :]. Ids are range-checked. */
export function embedding(table: Tensor, ids: readonly number[] | Tensor, what = 'embedding'): Tensor {
  if (table.rank !== 2) throw new QkvError(`${what}: table must be [rows, dim], got ${fmtShape(table.shape)}`);
  const [rows, D] = table.shape;
  const list = ids instanceof Tensor ? ids.toArray() : ids;
  const shape = ids instanceof Tensor ? [...ids.shape, D] : [list.length, D];
  // a 16-bit table stays 16-bit: only the rows looked up are widened
  const w = table.dtype === 'float32' ? table.toFloat32() : null;
  const out = new Float32Array(list.length * D);
  list.forEach((id, n) => {
    if (!Number.isInteger(id) || id < 0 || id >= rows) throw new QkvError(`${what}: index ${id} out of range [0, ${rows})`);
    out.set(w ? w.subarray(id * D, (id + 1) * D) : table.slice(0, id, id + 1).toFloat32(), n * D);
  });
  return Tensor.from(out, shape);
}

/** A learned positional embedding table. */
export class LearnedPositionalEmbedding {
  constructor(readonly weight: Tensor) {}
  get maxLen(): number { return this.weight.shape[0]; }
  /** Encodings of `positions` (default 0..T−1 after `offset`). */
  forward(T: number, offset = 0): Tensor {
    return embedding(this.weight, Array.from({ length: T }, (_, t) => t + offset), 'LearnedPositionalEmbedding');
  }
}
