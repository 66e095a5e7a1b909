// qkv's WebAssembly SIMD matrix product for linear layers, in AssemblyScript (compiled by `npm run build:wasm`):
//   C[M, N] = A[M, K] · B[N, K]ᵀ      (torch's Linear layout: each output is a dot of two rows)
// Four columns of C at a time, each dot product four lanes wide (f32x4): a row of A is loaded once per four rows of
// B. K must be a multiple of 4 (the host checks). Weights (B) stay resident in linear memory between calls.

export function gemmTransB(aPtr: usize, bPtr: usize, cPtr: usize, M: i32, K: i32, N: i32): void {
  const rowA = <usize>K << 2;
  for (let i = 0; i < M; i++) {
    const a = aPtr + <usize>i * rowA;
    const c = cPtr + (<usize>i * <usize>N << 2);
    let j = 0;
    // c_ij = Σ_k a_ik b_jk for four j at once
    for (; j + 3 < N; j += 4) {
      const b0 = bPtr + <usize>j * rowA;
      const b1 = b0 + rowA;
      const b2 = b1 + rowA;
      const b3 = b2 + rowA;
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      for (let k = 0; k < K; k += 4) {
        const off = <usize>k << 2;
        const x = v128.load(a + off);
        s0 = f32x4.add(s0, f32x4.mul(x, v128.load(b0 + off)));
        s1 = f32x4.add(s1, f32x4.mul(x, v128.load(b1 + off)));
        s2 = f32x4.add(s2, f32x4.mul(x, v128.load(b2 + off)));
        s3 = f32x4.add(s3, f32x4.mul(x, v128.load(b3 + off)));
      }
      store<f32>(c + (<usize>j << 2), hsum(s0));
      store<f32>(c + (<usize>(j + 1) << 2), hsum(s1));
      store<f32>(c + (<usize>(j + 2) << 2), hsum(s2));
      store<f32>(c + (<usize>(j + 3) << 2), hsum(s3));
    }
    for (; j < N; j++) {
      const b0 = bPtr + <usize>j * rowA;
      let s = f32x4.splat(0);
      for (let k = 0; k < K; k += 4) { const off = <usize>k << 2; s = f32x4.add(s, f32x4.mul(v128.load(a + off), v128.load(b0 + off))); }
      store<f32>(c + (<usize>j << 2), hsum(s));
    }
  }
}

@inline
function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}
