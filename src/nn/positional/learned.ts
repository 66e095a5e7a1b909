// Learned absolute positions (BERT, GPT-2): a trained table [maxLen, d] indexed by position.
import { checkInt, describeValue, QkvError } from '../../errors.js';
import { F16Matrix } from '../../tensor/f16-matrix.js';
import { Int4Matrix, Int8Matrix, type LinearWeight } from '../../tensor/quantize.js';
import { fmtShape } from '../../tensor/shape.js';
import { checkTensor, checkWeight, Tensor } from '../../tensor/tensor.js';

/**
 * Gathers rows of an embedding table: out[..., :] = table[ids[...], :]. Ids are range-checked. The table may be
 * quantized (a tied output projection's int8/int4 copy, which then serves both) or an F16Matrix: only the rows looked
 * up are widened.
 */
export function embedding(table: LinearWeight, ids: readonly number[] | Tensor, what = 'embedding'): Tensor {
  what = String(what); // the label of its errors (a symbol would not print)
  checkWeight(table, `${what}: table`);
  if (!(ids instanceof Tensor) && !Array.isArray(ids)) {
    throw new QkvError(`${what}: ids must be a list of integers or a Tensor, got ${describeValue(ids)}`);
  }
  if (table.shape.length !== 2) throw new QkvError(`${what}: table must be [rows, dim], got ${fmtShape(table.shape)}`);
  const [rows, D] = table.shape;
  const list = ids instanceof Tensor ? ids.toArray() : ids;
  const shape = ids instanceof Tensor ? [...ids.shape, D] : [list.length, D];
  const quantized = table instanceof Int8Matrix || table instanceof Int4Matrix || table instanceof F16Matrix ? table : null;
  // a 16-bit table stays 16-bit: only the rows looked up are widened
  const w = !quantized && (table as Tensor).dtype === 'float32' ? (table as Tensor).toFloat32() : null;
  const out = new Float32Array(list.length * D);
  list.forEach((id, n) => {
    if (!Number.isInteger(id) || id < 0 || id >= rows) throw new QkvError(`${what}: index ${id} out of range [0, ${rows})`);
    if (quantized) quantized.row(id, out, n * D);
    else out.set(w ? w.subarray(id * D, (id + 1) * D) : (table as Tensor).slice(0, id, id + 1).toFloat32(), n * D);
  });
  return Tensor.from(out, shape);
}

/** A learned positional embedding table. */
export class LearnedPositionalEmbedding {
  constructor(readonly weight: Tensor) {
    checkTensor(weight, 'LearnedPositionalEmbedding: weight');
    if (weight.rank !== 2) throw new QkvError(`LearnedPositionalEmbedding: weight must be [maxLen, D], got ${fmtShape(weight.shape)}`);
  }

  get maxLen(): number { return this.weight.shape[0]; }

  /** Encodings of positions offset..offset + T − 1. */
  forward(T: number, offset = 0): Tensor {
    checkInt(T, 'LearnedPositionalEmbedding.forward: T', 0, this.maxLen);
    checkInt(offset, 'LearnedPositionalEmbedding.forward: offset', 0, this.maxLen);
    return embedding(this.weight, Array.from({ length: T }, (_, t) => t + offset), 'LearnedPositionalEmbedding');
  }
}
