// Backward pass of attention in WGSL, float32 (FlashAttention-2 §3.2; src/kernels/cpu/sdpa-backward.ts on the CPU).
// forward was:  s_ij = f(scale · q_i·k_j) (+ bias, ALiBi, masks);  p_ij = e^{s_ij − lse_i};  o_i = Σ_j p_ij v_j
// so:           dv_j = Σ_i p_ij do_i;   dp_ij = do_i·v_j;   ds_ij = p_ij (dp_ij − D_i) · f'(·),   D_i = do_i·o_i
//               dq_i = scale Σ_j ds_ij k_j;   dk_j = scale Σ_i ds_ij q_i        (f' = 1 − tanh² under soft-capping)
// p is recomputed from lse, never stored. Two entry points, so no two invocations ever add into one gradient row:
//   dq:  one invocation per query row i, over the keys its masks allow;
//   dkv: one invocation per key row j of a kv head, over the rows of all G query heads that read it (GQA sums here).
// The masks are the forward's (sdpa-masks.wgsl, prepended by the host): row i sees key j when j is in keyRange(i)
// and allowed(i, j). Operands are read from storage, not staged in workgroup memory: this is the correct baseline.
// Bindings: 0 q [BH, L, D], 1 k [BHkv, S, D], 2 v [BHkv, S, Dv], 3 dout [BH, L, Dv], 4 stats (lse [BH·L], then
//           D [BH·L]), 5–7 the masks' tables and P, 8 dq [BH, L, D], 9 dkv (dk [BHkv, S, D], then dv [BHkv, S, Dv]).

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(8) var<storage, read_write> dq: array<f32>;
@group(0) @binding(9) var<storage, read_write> dkv: array<f32>;

const MAX_D: u32 = 256u;  // register rows of the gradients: the host specialises these to D and Dv
const MAX_DV: u32 = 256u;

// The pair (row i of head h, key j), recomputed: p_ij and ds_ij / scale's factor — returns (p, ds).
fn pairGrad(qBase: u32, kBase: u32, vBase: u32, oBase: u32, h: u32, pos: i32, j: i32, keepRow: u32, lseI: f32, dI: f32) -> vec2f {
  var qk: f32 = 0.0;
  for (var d = 0u; d < P.D; d++) { qk += q[qBase + d] * k[kBase + d]; }
  let raw = P.scale * qk;
  let s = modScore(raw, h, pos, j, keepRow);
  let p = exp(s - lseI);
  var dp: f32 = 0.0;
  for (var d = 0u; d < P.Dv; d++) { dp += dout[oBase + d] * v[vBase + d]; }
  var slope: f32 = 1.0;
  if (P.softcap > 0.0) { let t = tanh(raw / P.softcap); slope = 1.0 - t * t; }
  return vec2f(p, p * (dp - dI) * slope);
}

@compute @workgroup_size(64)
fn dqMain(@builtin(global_invocation_id) gid: vec3u) {
  let row = gid.x; // (bh, i)
  if (row >= P.BH * P.L) { return; }
  let bh = row / P.L;
  let i = row % P.L;
  let b = bh / P.Hq;
  let h = bh % P.Hq;
  let kvh = b * P.Hkv + h / (P.Hq / P.Hkv);
  let pos = i32(i) + P.shift;
  let range = keyRange(pos, b);
  let keepRow = row * P.S;
  let lseI = stats[row];
  let dI = stats[P.BH * P.L + row];
  var acc: array<f32, MAX_D>;
  for (var d = 0u; d < P.D; d++) { acc[d] = 0.0; }
  if (lseI > NEG_INF) { // a row with no allowed key has no gradient
    // dq_i = scale Σ_j ds_ij k_j
    for (var j = max(range.x, 0); j <= range.y; j++) {
      if (!allowed(pos, j, keepRow)) { continue; }
      let kBase = (kvh * P.S + u32(j)) * P.D;
      let g = pairGrad(row * P.D, kBase, (kvh * P.S + u32(j)) * P.Dv, row * P.Dv, h, pos, j, keepRow, lseI, dI);
      for (var d = 0u; d < P.D; d++) { acc[d] += P.scale * g.y * k[kBase + d]; }
    }
  }
  for (var d = 0u; d < P.D; d++) { dq[row * P.D + d] = acc[d]; }
}

@compute @workgroup_size(64)
fn dkvMain(@builtin(global_invocation_id) gid: vec3u) {
  let key = gid.x; // (b, kv head, j)
  let BHkv = P.BH / P.Hq * P.Hkv;
  if (key >= BHkv * P.S) { return; }
  let kvh = key / P.S;  // b · Hkv + kv head
  let j = i32(key % P.S);
  let b = kvh / P.Hkv;
  let G = P.Hq / P.Hkv;
  var dk: array<f32, MAX_D>;
  var dv: array<f32, MAX_DV>;
  for (var d = 0u; d < P.D; d++) { dk[d] = 0.0; }
  for (var d = 0u; d < P.Dv; d++) { dv[d] = 0.0; }
  let kBase = key * P.D;
  let vBase = key * P.Dv;
  // dv_j = Σ_i p_ij do_i,  dk_j = scale Σ_i ds_ij q_i, over the G query heads of this kv head and their rows
  for (var g = 0u; g < G; g++) {
    let h = (kvh % P.Hkv) * G + g;
    let bh = b * P.Hq + h;
    var i0 = 0u;
    if (P.causal == 1u) { i0 = u32(max(j - P.causalShift, 0)); } // earlier rows never see key j
    for (var i = i0; i < P.L; i++) {
      let pos = i32(i) + P.shift;
      let range = keyRange(pos, b);
      let row = bh * P.L + i;
      let keepRow = row * P.S;
      let lseI = stats[row];
      if (j < range.x || j > range.y || lseI <= NEG_INF || !allowed(pos, j, keepRow)) { continue; }
      let g2 = pairGrad(row * P.D, kBase, vBase, row * P.Dv, h, pos, j, keepRow, lseI, stats[P.BH * P.L + row]);
      for (var d = 0u; d < P.Dv; d++) { dv[d] += g2.x * dout[row * P.Dv + d]; }
      for (var d = 0u; d < P.D; d++) { dk[d] += P.scale * g2.y * q[row * P.D + d]; }
    }
  }
  for (var d = 0u; d < P.D; d++) { dkv[kBase + d] = dk[d]; }
  for (var d = 0u; d < P.Dv; d++) { dkv[BHkv * P.S * P.D + vBase + d] = dv[d]; }
}
