// Int8 weights with one scale per output row (per channel): w_jk ≈ scale_j · q_jk, q_jk ∈ [−127, 127],
// scale_j = max_k |w_jk| / 127. A quarter of the bytes of f32, so decode (which reads every weight once per token)
// moves a quarter of the memory; the matrix product widens q inside the kernel and applies scale_j to each output.
// Int4 weights (Int4Matrix, below) take blocks of 32 with a scale each: an eighth of f32's bytes.
import { checkInt, describeValue, QkvError } from '../errors.js';
import { markConstant } from './constant.js';
import type { F16Matrix } from './f16-matrix.js';
import { checkMatrixShape, fmtShape } from './shape.js';
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

type ArrayType = typeof Int8Array | typeof Uint8Array | typeof Float32Array | typeof Uint16Array;

/** Throws unless each array is of its typed-array class (a matrix built by hand from JavaScript). */
export function checkArrays(arrays: [string, unknown, ArrayType][], what: string): void {
  for (const [n, a, type] of arrays) {
    if (!(a instanceof type)) throw new QkvError(`${what}: ${n} must be a ${type.name}, got ${describeValue(a)}`);
  }
}

/** Throws unless row j exists and out[at … at + cols − 1] is room in a Float32Array; returns cols. */
export function checkRowArgs(shape: readonly [number, number], j: unknown, out: unknown, at: unknown, what: string): number {
  const [rows, cols] = shape;
  checkInt(j, `${what}: j`, 0, rows - 1);
  if (!(out instanceof Float32Array)) throw new QkvError(`${what}: out must be a Float32Array, got ${describeValue(out)}`);
  checkInt(at, `${what}: at`, 0, out.length - cols);
  return cols;
}

export class Int8Matrix {
  readonly dtype = 'int8' as const;
  /** q [rows, cols] row-major, scale [rows]. */
  constructor(readonly q: Int8Array, readonly scales: Float32Array, readonly shape: readonly [number, number]) {
    const [rows, cols] = checkMatrixShape(shape, 'Int8Matrix');
    checkArrays([['q', q, Int8Array], ['scales', scales, Float32Array]], 'Int8Matrix');
    if (q.length !== rows * cols || scales.length !== rows) {
      throw new QkvError(`Int8Matrix: q must hold ${rows}×${cols} and scales ${rows} values, got ${q.length} and ${scales.length}`);
    }
  }

  /**
   * Rounds each row of a 2-D float tensor to int8 with its own scale (an all-zero row gets scale 0), a block of rows
   * widened at a time (never a float32 copy of the whole matrix); q and the scales go into `storage` and
   * `scaleStorage` when they offer room (the matrix kernel's memory, so the weight is held once), else into new arrays.
   */
  static quantize(w: Tensor, storage?: (n: number) => Int8Array | null, scaleStorage?: (n: number) => Float32Array | null): Int8Matrix {
    if (w.rank !== 2) throw new QkvError(`Int8Matrix.quantize: weight must be 2-D [out, in], got ${fmtShape(w.shape)}`);
    const [rows, cols] = w.shape;
    const q = storage?.(rows * cols) ?? new Int8Array(rows * cols);
    const scales = scaleStorage?.(rows) ?? new Float32Array(rows);
    const block = Math.max(1, Math.floor(2 ** 16 / Math.max(1, cols))); // rows per widened block (~256 KiB of f32)
    for (let j0 = 0; j0 < rows; j0 += block) {
      const j1 = Math.min(rows, j0 + block);
      const x = w.slice(0, j0, j1).toFloat32();
      for (let j = j0; j < j1; j++) {
        scales[j] = quantizeRow(x, (j - j0) * cols, cols, q, j * cols);
        if (!Number.isFinite(scales[j])) throw new QkvError(`Int8Matrix.quantize: row ${j} holds a non-finite value`);
      }
    }
    return new Int8Matrix(markConstant(q, scales), scales, [rows, cols]); // qkv's own arrays: the kernels may keep them
  }

  /** Row j, scale_j · q_jk, into out[at …]. */
  row(j: number, out: Float32Array, at = 0): void {
    const cols = checkRowArgs(this.shape, j, out, at, 'Int8Matrix.row');
    for (let k = 0; k < cols; k++) out[at + k] = this.scales[j] * this.q[j * cols + k];
  }

  /** scale_j · q_jk as a float32 tensor. */
  dequantize(): Tensor {
    const [rows, cols] = this.shape;
    const out = new Float32Array(rows * cols);
    for (let j = 0; j < rows; j++) this.row(j, out, j * cols);
    return Tensor.from(out, [rows, cols]);
  }
}

/**
 * Int4 weights in blocks of 32 along each row, one scale per block (the rule of llama.cpp's Q4_0, with an f32 scale):
 *   m = the block's weight of largest magnitude (with its sign),  s = m / −8,
 *   q_k = min(15, ⌊w_k / s + 8.5⌋) ∈ [0, 15],  w_k ≈ (q_k − 8) · s
 * so the largest weight is exact (q = 0) and the other sign reaches 7|s|. Byte i of a block holds weight i in its low
 * nibble and weight i + 16 in its high nibble. An eighth of f32's bytes (plus a scale per 32 weights).
 */
export class Int4Matrix {
  readonly dtype = 'int4' as const;
  /** q [rows, cols / 2] bytes, scales [rows, cols / 32]. */
  constructor(readonly q: Uint8Array, readonly scales: Float32Array, readonly shape: readonly [number, number]) {
    const [rows, cols] = checkMatrixShape(shape, 'Int4Matrix');
    checkArrays([['q', q, Uint8Array], ['scales', scales, Float32Array]], 'Int4Matrix');
    if (cols % 32 !== 0 || q.length !== (rows * cols) / 2 || scales.length !== (rows * cols) / 32) {
      throw new QkvError(`Int4Matrix: cols must be a multiple of 32, q hold ${rows}×${cols}/2 bytes and scales ${rows}×${cols}/32 ` +
        `values, got cols ${cols}, ${q.length} and ${scales.length}`);
    }
  }

  /**
   * Rounds a 2-D float tensor [rows, cols] (cols a multiple of 32), a block of rows at a time; q and the scales into
   * `storage` and `scaleStorage` when they offer room (a fifth of the bytes are scales: held once too).
   */
  static quantize(w: Tensor, storage?: (n: number) => Uint8Array | null, scaleStorage?: (n: number) => Float32Array | null): Int4Matrix {
    if (w.rank !== 2 || w.shape[1] % 32 !== 0) {
      throw new QkvError(`Int4Matrix.quantize: weight must be 2-D [out, in] with in a multiple of 32, got ${fmtShape(w.shape)}`);
    }
    const [rows, cols] = w.shape;
    const q = storage?.((rows * cols) / 2) ?? new Uint8Array((rows * cols) / 2);
    const scales = scaleStorage?.((rows * cols) / 32) ?? new Float32Array((rows * cols) / 32);
    const block = Math.max(1, Math.floor(2 ** 16 / cols));
    for (let j0 = 0; j0 < rows; j0 += block) {
      const j1 = Math.min(rows, j0 + block);
      const x = w.slice(0, j0, j1).toFloat32();
      for (let g = 0; g < ((j1 - j0) * cols) / 32; g++) {
        const at = j0 * cols / 32 + g;
        scales[at] = quantizeBlock4(x, g * 32, q, at * 16);
        const row = Math.floor((at * 32) / cols);
        if (!Number.isFinite(scales[at])) throw new QkvError(`Int4Matrix.quantize: row ${row} holds a non-finite value`);
      }
    }
    return new Int4Matrix(markConstant(q, scales), scales, [rows, cols]);
  }

  /** Row j, (q − 8) · s, into out[at …]. */
  row(j: number, out: Float32Array, at = 0): void {
    const cols = checkRowArgs(this.shape, j, out, at, 'Int4Matrix.row');
    widenInt4(this.q, this.scales, j * cols, cols, out, at);
  }

  /** (q − 8) · s as a float32 tensor. */
  dequantize(): Tensor {
    const out = new Float32Array(this.shape[0] * this.shape[1]);
    widenInt4(this.q, this.scales, 0, out.length, out, 0);
    return Tensor.from(out, [...this.shape]);
  }
}

/**
 * Weights from..from + n − 1 of int4 data (counted row-major over the whole matrix) widened into out[at …]:
 *   w_i = (q_i − 8) · s_⌊i/32⌋, q_i the low nibble of byte i mod 16 of block ⌊i/32⌋ when i mod 32 < 16, else the high one
 */
export function widenInt4(q: Uint8Array, scales: Float32Array, from: number, n: number, out: Float32Array, at: number): void {
  for (let i = from; i < from + n; i++) {
    const byte = q[(i >> 5) * 16 + (i & 15)];
    out[at + i - from] = scales[i >> 5] * ((i & 16 ? byte >> 4 : byte & 15) - 8);
  }
}

// one block of 32 weights x[at …] → 16 bytes of q at qAt; returns the scale (NaN or ∞ for a non-finite block)
function quantizeBlock4(x: Float32Array, at: number, q: Uint8Array, qAt: number): number {
  let m = 0;
  for (let k = 0; k < 32; k++) {
    if (Number.isNaN(x[at + k])) return NaN;
    if (Math.abs(x[at + k]) > Math.abs(m)) m = x[at + k];
  }
  const s = Math.fround(m / -8);
  const inv = s === 0 ? 0 : 1 / s;
  const level = (w: number) => Math.min(15, Math.trunc(w * inv + 8.5));
  for (let i = 0; i < 16; i++) q[qAt + i] = level(x[at + i]) | (level(x[at + i + 16]) << 4);
  return s;
}

/** A linear layer's weight: a float tensor in any float dtype (kept as stored), int8 with row scales, int4, or f16
 *  scaled for the WebAssembly kernel (F16Matrix). */
export type LinearWeight = Tensor | Int8Matrix | Int4Matrix | F16Matrix;
