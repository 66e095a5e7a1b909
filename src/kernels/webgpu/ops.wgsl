// The small kernels a transformer layer needs between its matrix products and its attention, so that a whole model
// runs on the GPU without reading back: RMSNorm, RoPE (rotate-half or interleaved, cos/sin from a host table),
// SiLU(gate) ⊙ up and GELU-tanh(gate) ⊙ up, and a residual add (the transpose that moves heads is transpose.wgsl).
// Mirrors src/nn/norm.ts, src/nn/positional/rope.ts and src/nn/activations.ts.
// Bindings: 0 x, 1 y (a second operand or table), 2 out, 3 P (the meaning of a…e per entry point, below).

struct Params { n: u32, a: u32, b: u32, c: u32, d: u32, e: u32, pad: u32, eps: f32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;

var<workgroup> partial: array<f32, 64>;

// RMSNorm, a workgroup per row of a = E values:  out = x / sqrt(mean(x²) + eps) · (e + y)   (e = 1: Gemma's offset)
@compute @workgroup_size(64)
fn rmsNorm(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wg.x + wg.y * 65535u;
  if (row >= P.n) { return; } // uniform: the whole workgroup leaves
  let base = row * P.a;
  var s: f32 = 0.0;
  for (var d = lid; d < P.a; d += 64u) { s += x[base + d] * x[base + d]; }
  partial[lid] = s;
  workgroupBarrier();
  for (var w = 32u; w > 0u; w = w / 2u) {
    if (lid < w) { partial[lid] += partial[lid + w]; }
    workgroupBarrier();
  }
  let inv = 1.0 / sqrt(partial[0] / f32(P.a) + P.eps);
  for (var d = lid; d < P.a; d += 64u) { out[base + d] = x[base + d] * inv * (f32(P.e) + y[d]); }
}

// RoPE on x [T, H, D] (a = T, b = H, c = D, d = half = rotary pairs, e = 1 for interleaved pairs); y = the host's
// table [T, 2, half] of cos θ and sin θ (θ = position · inv_freq_k, times the attention factor). One invocation per pair:
//   (x_a, x_b)' = (x_a cos θ − x_b sin θ, x_b cos θ + x_a sin θ); dims past the rotary ones are copied
@compute @workgroup_size(64)
fn rope(@builtin(global_invocation_id) gid: vec3u) {
  let id = gid.x + gid.y * 65535u * 64u;
  if (id >= P.a * P.b * (P.c / 2u)) { return; }
  let pairs = P.c / 2u;
  let k = id % pairs;
  let th = id / pairs; // t · H + h
  let t = th / P.b;
  let row = th * P.c;
  if (k >= P.d) { // past the rotary dims: copy the pair as it is
    let at = row + 2u * P.d + 2u * (k - P.d);
    out[at] = x[at];
    out[at + 1u] = x[at + 1u];
    return;
  }
  var ia = row + k;
  var ib = row + k + P.d;
  if (P.e == 1u) { ia = row + 2u * k; ib = ia + 1u; }
  let cosT = y[(t * 2u) * P.d + k];
  let sinT = y[(t * 2u + 1u) * P.d + k];
  out[ia] = x[ia] * cosT - x[ib] * sinT;
  out[ib] = x[ib] * cosT + x[ia] * sinT;
}

// out = SiLU(x) ⊙ y = x / (1 + e^{−x}) · y over n values
@compute @workgroup_size(64)
fn siluMul(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x + gid.y * 65535u * 64u;
  if (i >= P.n) { return; }
  out[i] = x[i] / (1.0 + exp(-x[i])) * y[i];
}

// out = GELU-tanh(x) ⊙ y = x · σ(2u) · y,  u = √(2/π) (x + 0.044715 x³)   (½(1 + tanh u) = σ(2u); Gemma's GeGLU)
@compute @workgroup_size(64)
fn geluTanhMul(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x + gid.y * 65535u * 64u;
  if (i >= P.n) { return; }
  let v = x[i];
  out[i] = v / (1.0 + exp(-1.5957691216057308 * (v + 0.044715 * v * v * v))) * y[i];
}

// out = x + y over n values (residual connections)
@compute @workgroup_size(64)
fn add(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x + gid.y * 65535u * 64u;
  if (i >= P.n) { return; }
  out[i] = x[i] + y[i];
}

// out = c · tanh(x / c) over n values, c = P.eps (soft-capping of logits, Gemma 2's final_logit_softcapping);
// tanh u = 1 − 2 / (e^{2u} + 1), which stays ±1 where e^{2u} overflows or underflows
@compute @workgroup_size(64)
fn softcap(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x + gid.y * 65535u * 64u;
  if (i >= P.n) { return; }
  out[i] = P.eps * (1.0 - 2.0 / (exp(2.0 * x[i] / P.eps) + 1.0));
}
