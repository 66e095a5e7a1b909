// Score modifiers, applied to each scaled score s = scale · q·k in this order (the golden data's convention):
//   soft-capping  s ← softcap · tanh(s / softcap)            (Gemma 2)
//   additive bias s ← s + bias[b, h, i, j]                    (broadcast dense tensor, e.g. T5 relative bias)
//   ALiBi         s ← s − slope_h · |i' − j|,  i' = i + S − L (Press et al. 2022, https://arxiv.org/abs/2108.12409)
//   scoreMod      s ← fn(s, b, h, i, j)                       (FlexAttention style)
// then masking sets disallowed entries to −∞.
import { checkInt } from '../errors.js';
import type { KernelScoreMods, Row, SimdMods, Strided4 } from '../kernels/contract.js';

export type { Strided4 } from '../kernels/contract.js';

/** A FlexAttention-style score function: returns the new score for query i, key j of batch b, head h. */
export type ScoreMod = (score: number, b: number, h: number, i: number, j: number) => number;

/** The score modifiers of one attention call, bound to its sizes. Kernels call `apply` on rows of scores. */
export class ScoreMods implements KernelScoreMods {
  constructor(
    readonly softcap: number, // 0 = off
    readonly bias: Strided4 | null,
    readonly alibiSlopes: Float32Array | null,
    readonly shift: number, // S − L: query i sits at position i + shift
    readonly fn: ScoreMod | null,
  ) {}

  simdMods(): SimdMods | null {
    if (this.fn || (this.softcap !== 0 && !(this.softcap > 0 && Number.isFinite(this.softcap)))) return null;
    return { softcap: this.softcap, bias: this.bias, alibiSlopes: this.alibiSlopes, shift: this.shift };
  }

  /** True when a backward pass can differentiate through these modifiers (user functions cannot be). */
  get differentiable(): boolean { return this.fn === null; }

  /** Modifies scaled scores row[c] for keys j0 + c, c < n, of query i in place. */
  apply(row: Row, b: number, h: number, i: number, j0: number, n: number): void {
    const c0 = this.softcap;
    if (c0 > 0) for (let c = 0; c < n; c++) row[c] = c0 * Math.tanh(row[c] / c0);
    const bias = this.bias;
    if (bias) {
      const [sb, sh, si, sj] = bias.strides;
      const base = bias.offset + b * sb + h * sh + i * si + j0 * sj;
      for (let c = 0; c < n; c++) row[c] += bias.data[base + c * sj];
    }
    if (this.alibiSlopes) {
      const slope = this.alibiSlopes[h];
      const pos = i + this.shift;
      for (let c = 0; c < n; c++) row[c] -= slope * Math.abs(pos - (j0 + c));
    }
    const fn = this.fn;
    if (fn) for (let c = 0; c < n; c++) row[c] = fn(row[c], b, h, i, j0 + c);
  }

  /**
   * ∂s_final/∂s_scaled for the backward pass, written into `dds` from the *scaled* scores in `raw`.
   * Only soft-capping has a derivative other than 1: d/dx [c·tanh(x/c)] = 1 − tanh²(x/c).
   */
  derivative(raw: Row, dds: Row, n: number): void {
    const c0 = this.softcap;
    for (let c = 0; c < n; c++) {
      if (c0 > 0) { const t = Math.tanh(raw[c] / c0); dds[c] = 1 - t * t; } else dds[c] = 1;
    }
  }
}

/**
 * ALiBi slopes for any number of heads, as in the paper's reference code: for a power of two n, slope_h = 2^(−8(h+1)/n);
 * otherwise the slopes of the nearest lower power of two m, then every other slope of 2m for the remaining heads.
 * @example alibiSlopes(8) // [0.5, 0.25, …, 0.00390625]
 */
export function alibiSlopes(heads: number): Float32Array {
  checkInt(heads, 'alibiSlopes: heads', 1, 65536); // (10⁹ heads had built an array of 10⁹ slopes: minutes, then out of memory)
  const pow2 = (n: number) => Array.from({ length: n }, (_, h) => 2 ** (-8 * (h + 1) / n));
  const m = 2 ** Math.floor(Math.log2(heads));
  const slopes = pow2(m);
  if (m < heads) slopes.push(...pow2(2 * m).filter((_, t) => t % 2 === 0).slice(0, heads - m));
  return Float32Array.from(slopes);
}
