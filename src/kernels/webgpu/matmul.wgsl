// Tiled matrix product in WGSL: C[M, N] = A[M, K] · B[N, K]ᵀ (+ bias[N]) — torch's Linear layout, B is the weight.
// A workgroup computes a BLOCK_M × BLOCK_N tile of C; each step stages a BLOCK_K-wide slice of A's rows and B's rows
// in workgroup memory (k-major, so the inner loop reads rows of 8 consecutive values) and every invocation
// accumulates its 8 × 8 block of C in registers:
//   acc[r][c] += Σ_kk As[kk][8·ty + r] · Bs[kk][8·tx + c]
// Loads past M, N or K read 0, so any shape works; stores past M or N are skipped.
// Bindings: 0 a [M, K], 1 b [N, K], 2 bias [N] (ignored unless useBias), 3 c [M, N], 4 P.
// The weight b is stored as E: f32, or f16 in the host's variant where shader-f16 exists (storageVariant) — half the
// bytes on the GPU and per read; it is widened as it is staged, and everything else is f32.

struct Params { M: u32, K: u32, N: u32, useBias: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
alias E = f32;
@group(0) @binding(1) var<storage, read> b: array<E>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;

const BLOCK_M: u32 = 64u;
const BLOCK_N: u32 = 64u;
const BLOCK_K: u32 = 16u;

var<workgroup> As: array<f32, 1024>; // [BLOCK_K][BLOCK_M]
var<workgroup> Bs: array<f32, 1024>; // [BLOCK_K][BLOCK_N]

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid3: vec3u, @builtin(local_invocation_index) lid: u32) {
  let m0 = wg.y * BLOCK_M;
  let n0 = wg.x * BLOCK_N;
  let tx = lid3.x;
  let ty = lid3.y;
  var acc: array<f32, 64>;
  for (var x = 0u; x < 64u; x++) { acc[x] = 0.0; }
  for (var k0 = 0u; k0 < P.K; k0 += BLOCK_K) {
    // 1. stage A[m0.., k0..] and B[n0.., k0..]: 16 values each per invocation, consecutive invocations along k
    for (var x = 0u; x < 16u; x++) {
      let e = lid + 64u * x;
      let row = e / BLOCK_K;
      let kk = e % BLOCK_K;
      let k = k0 + kk;
      var av: f32 = 0.0;
      var bv: f32 = 0.0;
      if (m0 + row < P.M && k < P.K) { av = a[(m0 + row) * P.K + k]; }
      if (n0 + row < P.N && k < P.K) { bv = f32(b[(n0 + row) * P.K + k]); }
      As[kk * BLOCK_M + row] = av;
      Bs[kk * BLOCK_N + row] = bv;
    }
    workgroupBarrier();
    // 2. the 8 × 8 register block
    for (var kk = 0u; kk < BLOCK_K; kk++) {
      var ar: array<f32, 8>;
      var br: array<f32, 8>;
      for (var r = 0u; r < 8u; r++) { ar[r] = As[kk * BLOCK_M + 8u * ty + r]; br[r] = Bs[kk * BLOCK_N + 8u * tx + r]; }
      for (var r = 0u; r < 8u; r++) {
        for (var cc = 0u; cc < 8u; cc++) { acc[r * 8u + cc] += ar[r] * br[cc]; }
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < 8u; r++) {
    let m = m0 + 8u * ty + r;
    if (m >= P.M) { break; }
    for (var cc = 0u; cc < 8u; cc++) {
      let n = n0 + 8u * tx + cc;
      if (n < P.N) { c[m * P.N + n] = acc[r * 8u + cc] + select(0.0, bias[n], P.useBias == 1u); }
    }
  }
}

// The same product for a few rows of A (decoding: M ≤ GEMV_M), where 64 × 64 tiles would leave nearly every
// invocation idle and too few workgroups to keep a GPU's memory busy: a workgroup per GEMV_N output columns, 64
// invocations per column striding along K (consecutive invocations read consecutive weights), each summing
//   part[m] = Σ_{k ≡ lane (mod 64)} a[m][k] · b[n][k]
// for every row m, then a tree reduction of the 64 partial sums in workgroup memory.
const GEMV_M: u32 = 8u;   // rows of A at most
const GEMV_N: u32 = 2u;   // output columns per workgroup (64 invocations each: 128, within every device's limits)

var<workgroup> part: array<f32, 1024>; // [GEMV_N · 64 lanes][GEMV_M]

@compute @workgroup_size(128)
fn gemv(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = (wg.x + wg.y * 65535u) * GEMV_N + lid / 64u;
  let lane = lid % 64u;
  var acc: array<f32, GEMV_M>;
  for (var m = 0u; m < GEMV_M; m++) { acc[m] = 0.0; }
  if (n < P.N) {
    for (var k = lane; k < P.K; k += 64u) {
      let w = f32(b[n * P.K + k]);
      for (var m = 0u; m < P.M; m++) { acc[m] += a[m * P.K + k] * w; }
    }
  }
  for (var m = 0u; m < GEMV_M; m++) { part[lid * GEMV_M + m] = acc[m]; }
  workgroupBarrier();
  for (var half = 32u; half > 0u; half /= 2u) { // lanes [0, half) add in lanes [half, 2·half) of their column
    if (lane < half) {
      for (var m = 0u; m < P.M; m++) { part[lid * GEMV_M + m] += part[(lid + half) * GEMV_M + m]; }
    }
    workgroupBarrier();
  }
  if (lane == 0u && n < P.N) {
    for (var m = 0u; m < P.M; m++) { c[m * P.N + n] = part[lid * GEMV_M + m] + select(0.0, bias[n], P.useBias == 1u); }
  }
}
