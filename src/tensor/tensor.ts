// Tensor: a strided view (shape, strides, offset) over a typed-array storage of one dtype.
// Views (reshape of contiguous data, permute/transpose, slice, broadcastTo) share storage; contiguous() and
// to(dtype) copy. Kernels compute in float32: toFloat32() hands them a dense row-major Float32Array.
import { describeValue, QkvError } from '../errors.js';
import { allocStorage, DTYPES, DTYPE_SIZE, isFloat, type DType, type Storage } from './dtype.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, widen16 } from './f16.js';
import { checkShape, contiguousStrides, fmtShape, forEachOffset, numel, type Shape } from './shape.js';

const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  int8: [-128, 127], uint8: [0, 255], int32: [-2147483648, 2147483647],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], bool: [0, 1],
};

/** Reads element `i` of `data` (stored as `dtype`) as a JS number. int64 must be a safe integer. */
function readAt(dtype: DType, data: Storage, i: number): number {
  switch (dtype) {
    case 'float16': return f16ToF32((data as Uint16Array)[i]);
    case 'bfloat16': return bf16ToF32((data as Uint16Array)[i]);
    case 'int64': {
      const v = (data as BigInt64Array)[i];
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new QkvError(`int64 value ${v} does not fit a JS number exactly (|x| <= 2^53 - 1)`);
      }
      return Number(v);
    }
    default: return (data as Float32Array)[i];
  }
}

/** Writes number `x` into element `i` of `data`: floats round to nearest even, integers are range-checked. */
function writeAt(dtype: DType, data: Storage, i: number, x: number): void {
  switch (dtype) {
    case 'float32': (data as Float32Array)[i] = x; return;
    case 'float16': (data as Uint16Array)[i] = f32ToF16(x); return;
    case 'bfloat16': (data as Uint16Array)[i] = f32ToBf16(x); return;
    case 'bool': (data as Uint8Array)[i] = x ? 1 : 0; return;
    default: {
      const [lo, hi] = INT_RANGE[dtype]!;
      if (!Number.isInteger(x) || x < lo || x > hi) {
        throw new QkvError(`cannot store ${x} as ${dtype}: expected an integer in [${lo}, ${hi}]`);
      }
      if (dtype === 'int64') (data as BigInt64Array)[i] = BigInt(x);
      else (data as Int32Array)[i] = x;
    }
  }
}

/** An n-dimensional array: shape, strides (in elements), offset and dtype over a typed-array storage. */
// a dtype given from outside TypeScript's checks must be one qkv stores
function checkDType(dtype: unknown, what: string): void {
  if (!DTYPES.includes(dtype as DType)) {
    throw new QkvError(`${what}: dtype must be one of ${DTYPES.join(', ')}, got ${describeValue(dtype)}`);
  }
}

export class Tensor {
  readonly dtype: DType;
  readonly data: Storage;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;

  /** Wraps `data` without copying; strides default to row-major. Prefer the static constructors. */
  constructor(dtype: DType, data: Storage, shape: Shape, strides?: readonly number[], offset = 0) {
    checkShape(shape, 'Tensor');
    this.dtype = dtype;
    this.data = data;
    this.shape = [...shape];
    this.strides = strides ? [...strides] : contiguousStrides(shape);
    this.offset = offset;
    if (!strides && offset + numel(shape) > data.length) {
      throw new QkvError(`Tensor: shape ${fmtShape(shape)} needs ${numel(shape)} elements, storage has ${data.length - offset}`);
    }
  }

  /**
   * A tensor from values, copied into `dtype` storage (float32 by default). A Float32Array given for a float32
   * tensor is wrapped without copying (the tensor shares it).
   * @example Tensor.from([1, 2, 3, 4], [2, 2]).get(1, 0) // 3
   */
  static from(values: ArrayLike<number> | readonly number[], shape: Shape, dtype: DType = 'float32'): Tensor {
    checkShape(shape, 'Tensor.from');
    checkDType(dtype, 'Tensor.from');
    if (!Array.isArray(values) && !ArrayBuffer.isView(values)) {
      throw new QkvError(`Tensor.from: values must be an array or a typed array, got ${describeValue(values)}`);
    }
    if (values.length !== numel(shape)) {
      throw new QkvError(`Tensor.from: ${values.length} values do not fill shape ${fmtShape(shape)} (${numel(shape)} elements)`);
    }
    if (dtype === 'float32' && values instanceof Float32Array) return new Tensor(dtype, values, shape);
    const data = allocStorage(dtype, values.length);
    for (let i = 0; i < values.length; i++) writeAt(dtype, data, i, values[i]);
    return new Tensor(dtype, data, shape);
  }

  /** A zero-filled tensor. */
  static zeros(shape: Shape, dtype: DType = 'float32'): Tensor {
    checkShape(shape, 'Tensor.zeros');
    checkDType(dtype, 'Tensor.zeros');
    return new Tensor(dtype, allocStorage(dtype, numel(shape)), shape);
  }

  get rank(): number { return this.shape.length; }
  get size(): number { return numel(this.shape); }
  /** Bytes the elements of this view take when stored densely. */
  get byteLength(): number { return this.size * DTYPE_SIZE[this.dtype]; }

  /** True when the elements are laid out row-major without gaps (offset may be non-zero). */
  isContiguous(): boolean {
    const want = contiguousStrides(this.shape);
    return this.shape.every((d, i) => d <= 1 || this.strides[i] === want[i]);
  }

  #flatOffset(idx: readonly number[]): number {
    if (idx.length !== this.rank) throw new QkvError(`Tensor.get: expected ${this.rank} indices, got ${idx.length}`);
    let off = this.offset;
    for (let d = 0; d < idx.length; d++) {
      const i = idx[d];
      if (!Number.isInteger(i) || i < 0 || i >= this.shape[d]) {
        throw new QkvError(`Tensor.get: index ${String(i)} out of range for dim ${d} of shape ${fmtShape(this.shape)}`);
      }
      off += i * this.strides[d];
    }
    return off;
  }

  /** One element as a number (bounds-checked). */
  get(...idx: number[]): number {
    return readAt(this.dtype, this.data, this.#flatOffset(idx));
  }

  /** Sets one element (bounds- and range-checked). */
  set(value: number, ...idx: number[]): void {
    writeAt(this.dtype, this.data, this.#flatOffset(idx), value);
  }

  /** A view with another shape (one dim may be -1). Copies only when this view is not contiguous. */
  reshape(shape: readonly number[]): Tensor {
    if (!Array.isArray(shape)) throw new QkvError(`reshape: shape must be a list of integers, got ${describeValue(shape)}`);
    const known = shape.filter((d) => d !== -1);
    const inferred = shape.length - known.length;
    if (inferred > 1) throw new QkvError(`reshape: at most one -1 allowed, got ${fmtShape(shape)}`);
    const rest = numel(known);
    const full = shape.map((d) => (d === -1 ? (rest === 0 ? 0 : this.size / rest) : d));
    checkShape(full, 'reshape');
    if (numel(full) !== this.size) {
      throw new QkvError(`reshape: cannot view ${fmtShape(this.shape)} (${this.size} elements) as ${fmtShape(shape)}`);
    }
    const src = this.isContiguous() ? this : this.contiguous();
    return new Tensor(this.dtype, src.data, full, contiguousStrides(full), src.offset);
  }

  /** A view with dimensions reordered: `out.shape[i] = this.shape[dims[i]]`. */
  permute(dims: readonly number[]): Tensor {
    if (!Array.isArray(dims)) throw new QkvError(`permute: dims must be a list, got ${describeValue(dims)}`);
    const sorted = [...dims].sort((a, b) => a - b);
    if (dims.length !== this.rank || sorted.some((d, i) => d !== i)) {
      throw new QkvError(`permute: dims ${fmtShape(dims)} is not a permutation of 0..${this.rank - 1}`);
    }
    return new Tensor(this.dtype, this.data, dims.map((d) => this.shape[d]), dims.map((d) => this.strides[d]), this.offset);
  }

  /** A view with two dimensions swapped (negative dims count from the end). */
  transpose(a: number, b: number): Tensor {
    const dims = [...Array(this.rank).keys()];
    const [x, y] = [this.#dim(a, 'transpose'), this.#dim(b, 'transpose')];
    [dims[x], dims[y]] = [dims[y], dims[x]];
    return this.permute(dims);
  }

  /** A view of `start..end` (exclusive) with `step` along `dim`, Python-style negative indices allowed. */
  slice(dim: number, start: number, end = Infinity, step = 1): Tensor {
    const d = this.#dim(dim, 'slice');
    const n = this.shape[d];
    if (!Number.isInteger(step) || step <= 0) throw new QkvError(`slice: step must be a positive integer, got ${String(step)}`);
    for (const [name, x] of [['start', start], ['end', end]] as const) {
      if (typeof x !== 'number' || Number.isNaN(x)) throw new QkvError(`slice: ${name} must be a number, got ${String(x)}`);
    }
    const clamp = (x: number) => Math.min(Math.max(x < 0 ? x + n : x, 0), n);
    const s = clamp(start);
    const e = Math.max(clamp(end), s);
    const shape = [...this.shape];
    shape[d] = Math.ceil((e - s) / step);
    const strides = [...this.strides];
    strides[d] *= step;
    return new Tensor(this.dtype, this.data, shape, strides, this.offset + s * this.strides[d]);
  }

  /** A view repeated (stride 0) along dims of size 1 to `shape` (NumPy broadcasting). */
  broadcastTo(shape: Shape): Tensor {
    const lead = shape.length - this.rank;
    if (lead < 0) throw new QkvError(`broadcastTo: cannot broadcast ${fmtShape(this.shape)} to smaller rank ${fmtShape(shape)}`);
    const strides = shape.map((d, i) => {
      if (i < lead) return 0;
      const mine = this.shape[i - lead];
      if (mine === d) return this.strides[i - lead];
      if (mine === 1) return 0;
      throw new QkvError(`broadcastTo: cannot broadcast ${fmtShape(this.shape)} to ${fmtShape(shape)}`);
    });
    return new Tensor(this.dtype, this.data, shape, strides, this.offset);
  }

  /** This tensor laid out densely (row-major, offset 0). Returns `this` when it already is. */
  contiguous(): Tensor {
    if (this.isContiguous() && this.offset === 0 && this.data.length === this.size) return this;
    const out = allocStorage(this.dtype, this.size) as Storage;
    const runs = this.#denseRuns();
    if (runs.run > 8) {
      this.#copyRuns(out as Float32Array, 0, runs); // any typed array: set/subarray are shared
      return new Tensor(this.dtype, out, this.shape);
    }
    const src = this.data as unknown as { [i: number]: number | bigint };
    const dst = out as unknown as { [i: number]: number | bigint };
    forEachOffset(this.shape, this.strides, this.offset, (off, i) => { dst[i] = src[off]; });
    return new Tensor(this.dtype, out, this.shape);
  }

  /** A dense copy converted to `dtype` (floats: round to nearest even; integers: exact or an error). */
  to(dtype: DType): Tensor {
    if (dtype === this.dtype) return this.contiguous();
    checkDType(dtype, 'to');
    const out = allocStorage(dtype, this.size);
    // 16-bit floats widened in bulk, run by run (a table row, a whole weight, a KV cache's strided view)
    if (dtype === 'float32' && (this.dtype === 'float16' || this.dtype === 'bfloat16')) {
      this.writeFloat32(out as Float32Array);
      return new Tensor(dtype, out, this.shape);
    }
    forEachOffset(this.shape, this.strides, this.offset, (off, i) => {
      let x = readAt(this.dtype, this.data, off);
      if (dtype === 'bool') x = x !== 0 ? 1 : 0;
      else if (!isFloat(dtype) && isFloat(this.dtype) && !Number.isInteger(x)) {
        throw new QkvError(`to(${dtype}): value ${x} at element ${i} is not an integer`);
      }
      writeAt(dtype, out, i, x);
    });
    return new Tensor(dtype, out, this.shape);
  }

  /**
   * Writes the elements, row-major, into `dst` from index `at` — a float32 view copied block by block (its dense
   * trailing dims at once), without an intermediate dense copy. Returns the number of elements written.
   */
  writeFloat32(dst: Float32Array, at = 0): number {
    if (dst.length - at < this.size) throw new QkvError(`writeFloat32: ${this.size} elements do not fit ${dst.length - at} places`);
    if (this.dtype === 'float32') this.#copyRuns(dst, at, this.#denseRuns());
    else if (this.dtype === 'float16' || this.dtype === 'bfloat16') this.#widenRuns(dst, at, this.#denseRuns());
    else dst.set(this.toFloat32(), at);
    return this.size;
  }

  // The trailing dims laid out densely form runs of `run` elements, one per offset of the `lead` leading dims (a KV
  // cache view [B, H, len, D] is B·H runs of len·D; a head permute, runs of D).
  #denseRuns(): { lead: number; run: number } {
    let lead = this.rank, run = 1;
    while (lead > 0 && (this.strides[lead - 1] === run || this.shape[lead - 1] === 1)) run *= this.shape[--lead];
    return { lead, run };
  }

  // copies the runs whole into dst from index `at`, in row-major order
  #copyRuns(dst: Float32Array, at: number, { lead, run }: { lead: number; run: number }): void {
    const src = this.data as Float32Array;
    forEachOffset(this.shape.slice(0, lead), this.strides.slice(0, lead), this.offset, (off, i) => { dst.set(src.subarray(off, off + run), at + i * run); });
  }

  // the same for 16-bit floats, widened run by run (widen16): an f16 KV cache's strided view without a per-element pass
  #widenRuns(dst: Float32Array, at: number, { lead, run }: { lead: number; run: number }): void {
    const src = this.data as Uint16Array, dtype = this.dtype as 'float16' | 'bfloat16';
    forEachOffset(this.shape.slice(0, lead), this.strides.slice(0, lead), this.offset, (off, i) => {
      widen16(src.subarray(off, off + run), dst.subarray(at + i * run, at + (i + 1) * run), dtype);
    });
  }

  /** The elements as a dense row-major Float32Array (shared when this is already a dense float32 tensor). */
  toFloat32(): Float32Array {
    if (this.dtype === 'float32') return this.contiguous().data as Float32Array;
    return this.to('float32').data as Float32Array;
  }

  /** The elements as a flat array of numbers in row-major order. */
  toArray(): number[] {
    const out = new Array<number>(this.size);
    forEachOffset(this.shape, this.strides, this.offset, (off, i) => { out[i] = readAt(this.dtype, this.data, off); });
    return out;
  }

  #dim(d: number, op: string): number {
    const r = typeof d === 'number' && d < 0 ? d + this.rank : d;
    if (!Number.isInteger(r) || r < 0 || r >= this.rank) throw new QkvError(`${op}: dim ${String(d)} out of range for rank ${this.rank}`);
    return r;
  }

  toString(): string {
    return `Tensor(${this.dtype}, ${fmtShape(this.shape)})`;
  }
}

/** Throws a QkvError naming `what` unless `x` is a Tensor (JavaScript callers are not type-checked). */
export function checkTensor(x: unknown, what: string): asserts x is Tensor {
  if (!(x instanceof Tensor)) throw new QkvError(`${what} must be a Tensor, got ${describeValue(x)}`);
}

/** Throws a QkvError naming `what` unless `w` is a weight matrix: a Tensor, an Int8/Int4Matrix or an F16Matrix. */
export function checkWeight(w: unknown, what: string): void {
  const shape = typeof w === 'object' && w !== null ? (w as { shape?: unknown }).shape : undefined;
  if (!Array.isArray(shape)) throw new QkvError(`${what} must be a weight (a Tensor or a quantized matrix), got ${describeValue(w)}`);
}
