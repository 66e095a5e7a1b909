// Storage dtypes. qkv computes in float32; the other dtypes are for storage and files.
// float16/bfloat16 are kept as raw 16-bit patterns in a Uint16Array and widened on read (see f16.ts);
// int64 is a BigInt64Array, read as a JS number only when it is exactly representable.
import { QkvError } from '../errors.js';

/** The element types a Tensor can hold. */
export type DType = 'float32' | 'float16' | 'bfloat16' | 'int8' | 'uint8' | 'int32' | 'int64' | 'bool';

/** The typed array that backs each dtype. */
export interface StorageOf {
  float32: Float32Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int32: Int32Array;
  int64: BigInt64Array;
  bool: Uint8Array;
}

/** Any storage array. */
export type Storage = StorageOf[DType];

export const DTYPES: readonly DType[] = ['float32', 'float16', 'bfloat16', 'int8', 'uint8', 'int32', 'int64', 'bool'];

/** Bytes per element. */
export const DTYPE_SIZE: Record<DType, number> = {
  float32: 4, float16: 2, bfloat16: 2, int8: 1, uint8: 1, int32: 4, int64: 8, bool: 1,
};

/** True for the dtypes that hold real numbers. */
export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16';
}

/**
 * A zero-filled storage array of `n` elements; a size no typed array can have, or memory the engine will not give, is a
 * QkvError naming it (sizes often come from files and requests).
 */
export function allocStorage(dtype: DType, n: number): Storage {
  try {
    return newStorage(dtype, n);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new QkvError(`cannot allocate ${n} ${dtype} elements (${n * DTYPE_SIZE[dtype]} bytes): ${e.message}`);
  }
}

function newStorage(dtype: DType, n: number): Storage {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'float16': case 'bfloat16': return new Uint16Array(n);
    case 'int8': return new Int8Array(n);
    case 'uint8': case 'bool': return new Uint8Array(n);
    case 'int32': return new Int32Array(n);
    case 'int64': return new BigInt64Array(n);
  }
}

/** A storage view over `buffer` (no copy): `byteOffset` must be aligned to the dtype size. */
export function storageView(dtype: DType, buffer: ArrayBufferLike, byteOffset: number, n: number): Storage {
  switch (dtype) {
    case 'float32': return new Float32Array(buffer, byteOffset, n);
    case 'float16': case 'bfloat16': return new Uint16Array(buffer, byteOffset, n);
    case 'int8': return new Int8Array(buffer, byteOffset, n);
    case 'uint8': case 'bool': return new Uint8Array(buffer, byteOffset, n);
    case 'int32': return new Int32Array(buffer, byteOffset, n);
    case 'int64': return new BigInt64Array(buffer, byteOffset, n);
  }
}

/** The dtype whose storage class `data` is, for the unambiguous classes. */
export function dtypeOfArray(data: ArrayLike<number> | BigInt64Array): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  return 'float32';
}
