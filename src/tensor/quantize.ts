// Int8 weights with one scale per output row (per channel): w_jk ≈ scale_j · q_jk, q_jk ∈ [−127, 127],
// scale_j = max_k |w_jk| / 127. A quarter of the bytes of f32, so decode (which reads every weight once per token)
// moves a quarter of the memory; the matrix product widens q inside the kernel and applies scale_j to each output.
import { QkvError } from '../errors.js';
import { fmtShape } from './shape.js';
import { Tensor } from './tensor.js';

/**
 * Symmetric int8 rounding of one row, the rule every int8 store in qkv uses (weight rows, KV-cache rows):
 *   scale = max_d |x_d| / 127 (as float32),  q_d = round(x_d / scale) ∈ [−127, 127],  x_d ≈ scale · q_d.
 * Reads x[at … at + n), writes q[qAt …], returns the scale: 0 for an all-zero row (q stays 0), NaN or ∞ when the row
 * holds a non-finite value (callers decide whether that is an error).
 */
export function quantizeRow(x: ArrayLike<number>, at: number, n: number, q: Int8Array, qAt: number): number {
  let amax = 0;
  for (let d = 0; d < n; d++) {
    const a = Math.abs(x[at + d]);
    if (a > amax || Number.isNaN(a)) amax = a;
  }
  const scale = Math.fround(amax / 127); // the scale as it will be stored: q is rounded against that value
  if (scale > 0 && Number.isFinite(scale)) for (let d = 0; d < n; d++) q[qAt + d] = Math.round(x[at + d] / scale);
  return scale;
}

export class Int8Matrix {
  readonly dtype = 'int8' as const;
  /** q [rows, cols] row-major, scale [rows]. */
  constructor(readonly q: Int8Array, readonly scales: Float32Array, readonly shape: readonly [number, number]) {
    const [rows, cols] = shape;
    if (q.length !== rows * cols || scales.length !== rows) {
      throw new QkvError(`Int8Matrix: q must hold ${rows}×${cols} and scales ${rows} values, got ${q.length} and ${scales.length}`);
    }
  }

  /**
   * Rounds each row of a 2-D float tensor to int8 with its own scale (an all-zero row gets scale 0), a block of rows
   * widened at a time (never a float32 copy of the whole matrix); q goes into `storage` when it offers room (the
   * matrix kernel's memory, so the weight is held once), else into a new array.
   */
  static quantize(w: Tensor, storage?: (n: number) => Int8Array | null): Int8Matrix {
    if (w.rank !== 2) throw new QkvError(`Int8Matrix.quantize: weight must be 2-D [out, in], got ${fmtShape(w.shape)}`);
    const [rows, cols] = w.shape;
    const q = storage?.(rows * cols) ?? new Int8Array(rows * cols);
    const scales = new Float32Array(rows);
    const block = Math.max(1, Math.floor(2 ** 16 / Math.max(1, cols))); // rows per widened block (~256 KiB of f32)
    for (let j0 = 0; j0 < rows; j0 += block) {
      const j1 = Math.min(rows, j0 + block);
      const x = w.slice(0, j0, j1).toFloat32();
      for (let j = j0; j < j1; j++) {
        scales[j] = quantizeRow(x, (j - j0) * cols, cols, q, j * cols);
        if (!Number.isFinite(scales[j])) throw new QkvError(`Int8Matrix.quantize: row ${j} holds a non-finite value`);
      }
    }
    return new Int8Matrix(q, scales, [rows, cols]);
  }

  /** scale_j · q_jk as a float32 tensor. */
  dequantize(): Tensor {
    const [rows, cols] = this.shape;
    const out = new Float32Array(rows * cols);
    for (let j = 0; j < rows; j++) for (let k = 0; k < cols; k++) out[j * cols + k] = this.scales[j] * this.q[j * cols + k];
    return Tensor.from(out, [rows, cols]);
  }
}

/** A linear layer's weight: a float tensor in any float dtype (kept as stored), or int8 with row scales. */
export type LinearWeight = Tensor | Int8Matrix;
