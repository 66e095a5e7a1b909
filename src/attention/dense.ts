// Dense masks and biases given as tensors, read through broadcast strides as [B, Hq, L, S] — never expanded.
import { QkvError } from '../errors.js';
import { fmtShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { Mask, type Row } from './masks.js';
import type { SimdMask } from '../kernels/contract.js';
import type { Strided4 } from './score-mods.js';

/** The broadcast view of `t` as `shape` (rank ≤ 4, NumPy rules), with a message naming `what` on failure. */
function broadcast4(t: Tensor, shape: readonly number[], what: string): Tensor {
  if (t.rank > 4) throw new QkvError(`attention: ${what} must have rank ≤ 4, got shape ${fmtShape(t.shape)}`);
  try {
    return t.broadcastTo(shape);
  } catch {
    throw new QkvError(`attention: ${what} shape ${fmtShape(t.shape)} cannot broadcast to [B, Hq, L, S] = ${fmtShape(shape)}`);
  }
}

/** A float tensor as a Strided4 view for the score modifiers (converted to float32 once if needed). */
export function denseBias(t: Tensor, shape: readonly number[], what: string): Strided4 {
  if (t.dtype !== 'float32' && t.dtype !== 'float16' && t.dtype !== 'bfloat16') {
    throw new QkvError(`attention: ${what} must be a float tensor, got dtype ${t.dtype}`);
  }
  const f = t.dtype === 'float32' ? t : t.to('float32');
  const b = broadcast4(f, shape, what);
  return { data: b.data as Float32Array, strides: b.strides as [number, number, number, number], offset: b.offset };
}

class DenseMask extends Mask {
  readonly name = 'dense mask';
  constructor(private readonly data: Uint8Array, private readonly shape: readonly number[], private readonly strides: readonly number[],
    private readonly offset: number) { super(); }
  /** A key padding mask (the same for every head and query: [B, 1, 1, S]) as the SIMD kernels' bytes [B, S]. */
  override simdPlan(): SimdMask | null {
    const [B, H, L, S] = this.shape;
    const [sb, sh, si, sj] = this.strides;
    if ((sh !== 0 && H > 1) || (si !== 0 && L > 1)) return null; // it differs between heads or queries
    const keep = new Uint8Array(B * S);
    for (let b = 0; b < B; b++) for (let j = 0; j < S; j++) keep[b * S + j] = this.data[this.offset + b * sb + j * sj] ? 1 : 0;
    return { causal: false, shift: 0, window: -1, keep };
  }
  allows(b: number, h: number, i: number, j: number): boolean {
    const [sb, sh, si, sj] = this.strides;
    return this.data[this.offset + b * sb + h * sh + i * si + j * sj] !== 0;
  }
  override maskRow(row: Row, b: number, h: number, i: number, j0: number, n: number): void {
    const [sb, sh, si, sj] = this.strides;
    const base = this.offset + b * sb + h * sh + i * si + j0 * sj;
    for (let c = 0; c < n; c++) if (this.data[base + c * sj] === 0) row[c] = -Infinity;
  }
}

/** A bool keep-mask tensor (true = may attend) as a Mask over [B, Hq, L, S]. */
export function denseMask(t: Tensor, shape: readonly number[]): Mask {
  if (t.dtype !== 'bool') throw new QkvError(`attention: a keep mask must have dtype bool, got ${t.dtype} (use a float tensor for an additive mask)`);
  const b = broadcast4(t, shape, 'mask');
  return new DenseMask(b.data as Uint8Array, b.shape, b.strides, b.offset);
}
