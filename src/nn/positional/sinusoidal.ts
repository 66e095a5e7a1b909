// Sinusoidal positional encoding (Vaswani et al. 2017, §3.5):
//   PE(pos, 2i) = sin(pos / base^(2i/d)),   PE(pos, 2i+1) = cos(pos / base^(2i/d))
import { QkvError } from '../../errors.js';
import { allocStorage } from '../../tensor/dtype.js';
import { Tensor } from '../../tensor/tensor.js';

/**
 * The [maxLen, dModel] table of sinusoidal encodings.
 * @example sinusoidalEncoding(4, 2).get(1, 0) // sin(1)
 */
export function sinusoidalEncoding(maxLen: number, dModel: number, base = 10000): Tensor {
  if (typeof base !== 'number' || !(base > 0)) throw new QkvError(`sinusoidalEncoding: base must be a number > 0, got ${String(base)}`);
  if (!Number.isInteger(maxLen) || maxLen < 0 || !Number.isInteger(dModel) || dModel < 1) {
    throw new QkvError(`sinusoidalEncoding: maxLen and dModel must be positive integers, got ${String(maxLen)}, ${String(dModel)}`);
  }
  // a table of at most 2^28 numbers (1 GiB; 2 × 10⁹ had been minutes of filling, then out of memory)
  if (maxLen * dModel > 2 ** 28) throw new QkvError(`sinusoidalEncoding: maxLen · dModel must be ≤ 2^28, got ${maxLen} · ${dModel}`);
  const pe = allocStorage('float32', maxLen * dModel) as Float32Array;
  for (let pos = 0; pos < maxLen; pos++) {
    for (let i = 0; 2 * i < dModel; i++) {
      const angle = pos / base ** ((2 * i) / dModel);
      pe[pos * dModel + 2 * i] = Math.sin(angle);
      if (2 * i + 1 < dModel) pe[pos * dModel + 2 * i + 1] = Math.cos(angle);
    }
  }
  return Tensor.from(pe, [maxLen, dModel]);
}
