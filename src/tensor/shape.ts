// Shape arithmetic shared by tensors and attention: element counts, row-major strides, broadcasting.
import { describeValue, QkvError } from '../errors.js';

/** A tensor shape: one non-negative integer per dimension. */
export type Shape = readonly number[];

/** `[2, 3, 4]` as text, for error messages (anything that is not a list described as what it is). */
export function fmtShape(shape: Shape): string {
  return Array.isArray(shape) ? `[${shape.map((d) => String(d)).join(', ')}]` : describeValue(shape);
}

/** Product of the dimensions (1 for a scalar). */
export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major (C-order) strides in elements. */
export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

/** The most elements a shape may span counting an empty dimension as 1 (a typed array's limit, 2^32). */
export const MAX_SPAN = 2 ** 32;

/**
 * Throws unless `shape` is a list of non-negative safe integers and, when it is empty (some dimension 0), its product
 * with the empty dimensions counted as 1 is at most MAX_SPAN: [2^40, 0] holds nothing, yet a loop over its rows would
 * not end, and no tensor with data could have such a shape (a non-empty one too large is refused where it is allocated).
 */
export function checkShape(shape: Shape, what: string): void {
  if (!Array.isArray(shape)) throw new QkvError(`${what}: shape must be a list of non-negative integers, got ${describeValue(shape)}`);
  let span = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new QkvError(`${what}: shape ${fmtShape(shape)} must hold non-negative integers`);
    span *= Math.max(d, 1);
  }
  if (span > MAX_SPAN && shape.includes(0)) {
    throw new QkvError(`${what}: shape ${fmtShape(shape)} spans ${span} elements counting empty dimensions as 1; at most 2^32`);
  }
}

/** Throws unless `shape` is [rows, cols] of non-negative safe integers (a weight matrix's); returns it. */
export function checkMatrixShape(shape: unknown, what: string): readonly [number, number] {
  if (!Array.isArray(shape) || shape.length !== 2) throw new QkvError(`${what}: shape must be [rows, cols], got ${describeValue(shape)}`);
  checkShape(shape, what);
  return shape as [number, number];
}

/** NumPy broadcasting of two shapes (aligned on the right). */
export function broadcastShapes(a: Shape, b: Shape, what = 'broadcast'): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new QkvError(`${what}: shapes ${fmtShape(a)} and ${fmtShape(b)} cannot be broadcast (dim ${i}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Calls `fn(offset, linearIndex)` for every element of a strided view, in row-major order. */
export function forEachOffset(shape: Shape, strides: readonly number[], offset: number, fn: (off: number, i: number) => void): void {
  const n = numel(shape);
  if (n === 0) return;
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  let off = offset;
  for (let i = 0; i < n; i++) {
    fn(off, i);
    // odometer increment: bump the last dim, carry into earlier ones
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      off += strides[d];
      if (idx[d] < shape[d]) break;
      off -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}
