// Linear layer y = x Wᵀ + b with torch's weight layout [out_features, in_features].
import { QkvError } from '../errors.js';
import { matmulTransB } from '../kernels/cpu/matmul.js';
import { wasmMatmulTransB } from '../kernels/wasm/matmul-wasm.js';
import { fmtShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

/**
 * y = x Wᵀ + b over the last dimension of x.
 * @example linear(Tensor.from([1, 2], [1, 2]), Tensor.from([1, 0, 0, 1, 1, 1], [3, 2])).toArray() // [1, 2, 3]
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null, what = 'linear'): Tensor {
  const [outF, inF] = weight.shape;
  if (weight.rank !== 2) throw new QkvError(`${what}: weight must be [out_features, in_features], got ${fmtShape(weight.shape)}`);
  if (x.shape[x.rank - 1] !== inF) {
    throw new QkvError(`${what}: input's last dim must be in_features=${inF}, got x ${fmtShape(x.shape)}, weight ${fmtShape(weight.shape)}`);
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outF)) throw new QkvError(`${what}: bias must be [${outF}], got ${fmtShape(bias.shape)}`);
  const rows = x.size / inF;
  const [xa, wa] = [x.toFloat32(), weight.toFloat32()];
  // WebAssembly SIMD where it applies (the weight stays resident in wasm memory), else the TypeScript loops
  const y = wasmMatmulTransB(xa, wa, rows, inF, outF) ?? matmulTransB(xa, wa, rows, inF, outF); // [rows, out]
  if (bias) {
    const b = bias.toFloat32();
    for (let r = 0; r < rows; r++) for (let o = 0; o < outF; o++) y[r * outF + o] += b[o];
  }
  return Tensor.from(y, [...x.shape.slice(0, -1), outF]);
}

/** A torch.nn.Linear: weight [out, in] and an optional bias [out]. */
export class Linear {
  constructor(readonly weight: Tensor, readonly bias: Tensor | null = null) {}
  get inFeatures(): number { return this.weight.shape[1]; }
  get outFeatures(): number { return this.weight.shape[0]; }
  forward(x: Tensor): Tensor { return linear(x, this.weight, this.bias); }
}
