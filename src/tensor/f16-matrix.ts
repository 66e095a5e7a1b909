// An f16 weight matrix held for the WebAssembly matrix kernel, every weight times 2^10 — exactly: a power of two, and
// every |w| < 64 so that w·2^10 stays below f16's largest finite value (65,504).
// Why: the kernel widens an f16 by moving its bits into an f32 (asm/gemm.ts); a subnormal f16 (|w| < 2^−14: 0.1–0.3%
// of a trained or random model's weights) becomes a subnormal f32, and an x86 core multiplies a subnormal through a
// microcode assist (~100+ cycles). One in every few hundred vectors then costs as much as the rest: the 135M model's f16
// products ran at half speed. Times 2^10 no nonzero f16 is subnormal (the smallest, 2^−24, becomes 2^−14), and the
// kernel takes x · 2^−10 in its place, so every product x·w is the same f32 as before.
// Nothing outside the kernels sees the scaled bits: rows and dequantize() give the true values, unscaled() the true f16.
import { QkvError } from '../errors.js';
import { markConstant } from './constant.js';
import { widen16 } from './f16.js';
import { checkArrays, checkRowArgs } from './quantize.js';
import { checkMatrixShape, fmtShape } from './shape.js';
import { Tensor } from './tensor.js';

/** The power of two an F16Matrix's bits hold its weights scaled by. */
export const F16_SHIFT = 10;

// f16 bits of m · 2^−24 · 2^10 (the subnormal with mantissa m, scaled), for m = 0 … 1023: normal f16 (zero stays zero)
let subnormalScaled: Uint16Array | null = null;

// (h & 0x7c00) ≥ 21 << 10: |w| ≥ 64 (or ±∞/NaN), which times 2^10 would not fit
const TOO_BIG = 21 << 10;

export class F16Matrix {
  readonly dtype = 'float16' as const;
  readonly shift = F16_SHIFT;
  /** h [rows, cols] row-major: the f16 bits of w · 2^shift. */
  constructor(readonly h: Uint16Array, readonly shape: readonly [number, number]) {
    const [rows, cols] = checkMatrixShape(shape, 'F16Matrix');
    checkArrays([['h', h, Uint16Array]], 'F16Matrix');
    if (h.length !== rows * cols) throw new QkvError(`F16Matrix: h must hold ${rows}×${cols} values, got ${h.length}`);
  }

  /**
   * Scales a 2-D contiguous f16 tensor's own storage in place and wraps it, or returns null — leaving the tensor as it
   * was — when some |w| ≥ 64 (or ±∞/NaN) would not fit. The caller gives up the tensor: its data now hold w · 2^10.
   * (Matrices without subnormals are scaled too, so that a model's matrices share one scale: the gated feed-forward's
   * gate and up products take one x, prepared once.) `fast`: a backend's faster pass over the same rule (the
   * WebAssembly job over its own memory, several times this loop's speed), null where it does not take h.
   */
  static scaleInPlace(t: Tensor, fast?: (h: Uint16Array) => boolean | null): F16Matrix | null {
    if (t.dtype !== 'float16' || t.rank !== 2 || !t.isContiguous() || t.data.length !== t.size) {
      throw new QkvError(`F16Matrix.scaleInPlace: needs a contiguous 2-D float16 tensor, got ${t.dtype} ${fmtShape(t.shape)}`);
    }
    const h = t.data as Uint16Array;
    const done = fast?.(h) ?? null;
    if (done !== null) return done ? new F16Matrix(markConstant(h), [t.shape[0], t.shape[1]]) : null;
    for (let i = 0; i < h.length; i++) if ((h[i] & 0x7c00) >= TOO_BIG) return null;
    for (let i = 0; i < h.length; i++) h[i] = scaled(h[i]);
    return new F16Matrix(markConstant(h), [t.shape[0], t.shape[1]]); // given up by its caller: the kernels may keep it
  }

  /** Row j, the true weights as f32, into out[at …] (an embedding lookup): widened through f16's table, then × 2^−shift
   *  (the same values as f16ToF32 per element, ~25× faster: a 512-token prompt's rows of a 576-wide table in 1.6 ms). */
  row(j: number, out: Float32Array, at = 0): void {
    const cols = checkRowArgs(this.shape, j, out, at, 'F16Matrix.row');
    const dst = out.subarray(at, at + cols);
    widen16(this.h.subarray(j * cols, (j + 1) * cols), dst, 'float16');
    const unscale = 2 ** -this.shift;
    for (let k = 0; k < cols; k++) dst[k] *= unscale;
  }

  /** The true weights as a float32 tensor. */
  dequantize(): Tensor {
    const [rows, cols] = this.shape;
    const out = new Float32Array(rows * cols);
    for (let j = 0; j < rows; j++) this.row(j, out, j * cols);
    return Tensor.from(out, [rows, cols]);
  }

  /** The true f16 bits (a new array: w · 2^−10 is exact back in f16, subnormals included). */
  unscaled(): Uint16Array {
    const out = new Uint16Array(this.h.length);
    for (let i = 0; i < out.length; i++) {
      const x = this.h[i];
      const e = (x & 0x7c00) >> 10;
      // exponent field e > 10: e − 10 (still normal); else the value is subnormal (or zero) in f16: mantissa by shifting
      out[i] = e > F16_SHIFT ? x - (F16_SHIFT << 10) : (x & 0x8000) | subnormalBits(x & 0x7fff);
    }
    return out;
  }
}

// the f16 bits of w · 2^10 for the f16 bits x of w (|w| < 64): a normal w's exponent field + 10 (at most 20 + 10 = 30,
// no carry into the sign); zero and subnormals from the table
function scaled(x: number): number {
  if (x & 0x7c00) return x + (F16_SHIFT << 10);
  return (x & 0x8000) | (subnormalScaled ??= makeSubnormalTable())[x & 0x3ff];
}

// f16 bits (no sign) of the value with bits `x` (exponent field ≤ 10: a scaled subnormal) times 2^−10: the subnormal
// m' · 2^−24, exact (the bits shifted out are zero)
function subnormalBits(x: number): number {
  if (x === 0) return 0;
  const e = x >> 10, m = x & 0x3ff;
  // value = (1024 + m) · 2^(e − 25) for e ≥ 1; times 2^−10 = (1024 + m) · 2^(e − 35) = m' · 2^−24,
  // m' = (1024 + m) >> (11 − e)
  return e === 0 ? m >> F16_SHIFT : (1024 + m) >> (11 - e);
}

function makeSubnormalTable(): Uint16Array {
  const t = new Uint16Array(1024);
  for (let m = 1; m < 1024; m++) {
    // m · 2^−24 · 2^10 = m · 2^−14: m = 2^p · (1 + f), p = ⌊log2 m⌋ ≤ 9, so the value is (1 + f) · 2^(p − 14): exponent
    // field p + 1, mantissa the bits of m below its leading one, moved up to 10 bits
    const p = 31 - Math.clz32(m);
    t[m] = ((p + 1) << 10) | ((m << (10 - p)) & 0x3ff);
  }
  return t;
}
