// Dense float32 matrix products for the nn layers (projections, feature maps). The plain i-k-j loop order keeps the
// inner loop contiguous in both B and C; the transposed form is a row of dot products. matmulTs is the registry's
// TypeScript product of linear layers (the WebAssembly one, wasm/matmul-wasm.ts, takes what it covers).
import type { MatmulKernel, MatrixData } from '../contract.js';
import { widen16 } from '../../tensor/f16.js';
import { widenInt4 } from '../../tensor/quantize.js';

/** C[M, N] = A[M, K] · B[K, N] (row-major), optionally + C's previous contents when `accumulate`. */
export function matmul(a: Float32Array, b: Float32Array, M: number, K: number, N: number, out = new Float32Array(M * N)): Float32Array {
  // c_ij = Σ_k a_ik b_kj, walking k outside j so both b and c stream along rows
  for (let i = 0; i < M; i++) {
    const c0 = i * N;
    for (let k = 0; k < K; k++) {
      const aik = a[i * K + k];
      if (aik === 0) continue;
      const b0 = k * N;
      for (let j = 0; j < N; j++) out[c0 + j] += aik * b[b0 + j];
    }
  }
  return out;
}

/**
 * C[M, N] = A[M, K] · B[N, K]ᵀ — the torch Linear layout, where each output is a dot of two rows.
 * Register-blocked 2 rows × 4 columns: each loaded a and b element feeds 4 or 2 multiply-adds, which takes V8 from
 * ~1.2 to ~4.3 GFLOP/s on this machine. Every c_ij still sums over k in order, so results are bit-identical to the
 * plain loop. (SIMD and threads: issue #7.)
 */
export function matmulTransB(a: Float32Array, b: Float32Array, M: number, K: number, N: number, out = new Float32Array(M * N)): Float32Array {
  let i = 0;
  for (; i + 1 < M; i += 2) {
    const a0 = i * K;
    const a1 = a0 + K;
    let j = 0;
    // c_ij = Σ_k a_ik b_jk for a 2×4 block of C
    for (; j + 3 < N; j += 4) {
      const [b0, b1, b2, b3] = [j * K, (j + 1) * K, (j + 2) * K, (j + 3) * K];
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      for (let k = 0; k < K; k++) {
        const x0 = a[a0 + k];
        const x1 = a[a1 + k];
        const y0 = b[b0 + k], y1 = b[b1 + k], y2 = b[b2 + k], y3 = b[b3 + k];
        c00 += x0 * y0; c01 += x0 * y1; c02 += x0 * y2; c03 += x0 * y3;
        c10 += x1 * y0; c11 += x1 * y1; c12 += x1 * y2; c13 += x1 * y3;
      }
      const o0 = i * N + j;
      const o1 = o0 + N;
      out[o0] = c00; out[o0 + 1] = c01; out[o0 + 2] = c02; out[o0 + 3] = c03;
      out[o1] = c10; out[o1 + 1] = c11; out[o1 + 2] = c12; out[o1 + 3] = c13;
    }
    for (; j < N; j++) {
      const b0 = j * K;
      let c0 = 0, c1 = 0;
      for (let k = 0; k < K; k++) { c0 += a[a0 + k] * b[b0 + k]; c1 += a[a1 + k] * b[b0 + k]; }
      out[i * N + j] = c0;
      out[(i + 1) * N + j] = c1;
    }
  }
  // the last odd row (and decode's single row, a GEMV): 1 × 4 blocks
  for (; i < M; i++) {
    const a0 = i * K;
    let j = 0;
    for (; j + 3 < N; j += 4) {
      const [b0, b1, b2, b3] = [j * K, (j + 1) * K, (j + 2) * K, (j + 3) * K];
      let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
      for (let k = 0; k < K; k++) {
        const x = a[a0 + k];
        c0 += x * b[b0 + k]; c1 += x * b[b1 + k]; c2 += x * b[b2 + k]; c3 += x * b[b3 + k];
      }
      out[i * N + j] = c0; out[i * N + j + 1] = c1; out[i * N + j + 2] = c2; out[i * N + j + 3] = c3;
    }
    for (; j < N; j++) {
      const b0 = j * K;
      let c = 0;
      for (let k = 0; k < K; k++) c += a[a0 + k] * b[b0 + k];
      out[i * N + j] = c;
    }
  }
  return out;
}

// rows [j0, j1) of B widened to float32
function widenRows(b: MatrixData, K: number, j0: number, j1: number, out = new Float32Array((j1 - j0) * K)): Float32Array {
  if (b.dtype === 'float32') { out.set(b.data.subarray(j0 * K, j1 * K)); return out; }
  if (b.dtype === 'int4') { widenInt4(b.data, b.scales, j0 * K, (j1 - j0) * K, out, 0); return out; }
  if (b.dtype !== 'int8') {
    widen16(b.data.subarray(j0 * K, j1 * K), out, b.dtype);
    const unscale = 2 ** -(b.shift ?? 0); // an F16Matrix holds w · 2^shift (exactly)
    if (unscale !== 1) for (let i = 0; i < (j1 - j0) * K; i++) out[i] *= unscale;
    return out;
  }
  for (let j = j0; j < j1; j++) {
    const [scale, row] = [b.scales[j], j * K];
    for (let k = 0; k < K; k++) out[(j - j0) * K + k] = scale * b.data[row + k];
  }
  return out;
}

/**
 * The TypeScript matrix product of linear layers, any weight format. A 16-bit or int8 weight is widened a block of
 * rows (~256 KiB of f32) at a time into a scratch panel — never as a whole f32 copy, which would hold a big checkpoint
 * three times over — and each block's columns of C are computed from it (the same sums, in the same order).
 */
export const matmulTs: MatmulKernel = {
  name: 'matmul',
  forward: (p) => {
    if (p.b.dtype === 'float32') return matmulTransB(p.a, p.b.data, p.M, p.K, p.N);
    const rows = Math.max(4, Math.floor(65536 / p.K / 4) * 4);
    const panel = new Float32Array(rows * p.K);
    const c = new Float32Array(p.M * p.N);
    for (let j0 = 0; j0 < p.N; j0 += rows) {
      const n = Math.min(rows, p.N - j0);
      const part = matmulTransB(p.a, widenRows(p.b, p.K, j0, j0 + n, panel), p.M, p.K, n); // C[:, j0 … j0 + n)
      for (let i = 0; i < p.M; i++) c.set(part.subarray(i * n, (i + 1) * n), i * p.N + j0);
    }
    return c;
  },
};
