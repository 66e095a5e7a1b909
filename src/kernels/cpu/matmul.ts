// Dense float32 matrix products for the nn layers (projections, feature maps). The plain i-k-j loop order keeps the
// inner loop contiguous in both B and C; the transposed form is a row of dot products. SIMD/threads: issue #7.

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

/** C[M, N] = A[M, K] · B[N, K]ᵀ — the torch Linear layout, where each output is a dot of two rows. */
export function matmulTransB(a: Float32Array, b: Float32Array, M: number, K: number, N: number, out = new Float32Array(M * N)): Float32Array {
  // c_ij = Σ_k a_ik b_jk
  for (let i = 0; i < M; i++) {
    const a0 = i * K;
    for (let j = 0; j < N; j++) {
      const b0 = j * K;
      let acc = 0;
      for (let k = 0; k < K; k++) acc += a[a0 + k] * b[b0 + k];
      out[i * N + j] = acc;
    }
  }
  return out;
}
