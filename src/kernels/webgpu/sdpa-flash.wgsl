// FlashAttention forward in WGSL, float32 (Dao et al. 2022; Triton's fused-attention tutorial): one invocation per
// query row keeps the online-softmax state m_i, l_i and acc in registers and walks the keys the masks allow —
// structured masks are ranges, so masked keys are never read (no dense L×S mask exists anywhere).
//   s_j = scale · q·k_j;  s_j ← softcap · tanh(s_j / softcap);  s_j −= slope_h · |i' − j|   (ALiBi)
//   m' = max(m, s_j);  acc = acc · e^{m − m'} + e^{s_j − m'} v_j;  l likewise;  o = acc / l,  lse = m + log l
// Bindings: 0 q [BH, L, D], 1 k [BHkv, S, D], 2 v [BHkv, S, Dv], 3 out [BH, L, Dv], 4 lse [BH, L],
//           5 per-batch key lengths [B], 6 per-head ALiBi slopes [Hq], 7 the uniform parameters below.

struct Params {
  BH: u32, Hq: u32, Hkv: u32, L: u32,
  S: u32, D: u32, Dv: u32, causal: u32,
  scale: f32, softcap: f32, shift: i32, useAlibi: u32,
  windowLeft: i32, windowRight: i32, dilation: i32, useKeyLengths: u32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<storage, read> keyLengths: array<u32>;
@group(0) @binding(6) var<storage, read> slopes: array<f32>;
@group(0) @binding(7) var<uniform> P: Params;

const MAX_DV4: u32 = 64u; // value head_dim ≤ 256, held as vec4 lanes
const NEG_INF: f32 = bitcast<f32>(0xff7fffffu); // the most negative f32: WGSL has no infinity literal

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let row = gid.x; // (bh, i) flattened
  if (row >= P.BH * P.L) { return; }
  let bh = row / P.L;
  let i = i32(row % P.L);
  let b = bh / P.Hq;
  let h = bh % P.Hq;
  let kvh = b * P.Hkv + h / (P.Hq / P.Hkv); // GQA: query head h reads kv head h / G
  let pos = i + P.shift; // the query's position among the keys
  // the key range the masks allow: causal and window bound it; key padding cuts it
  var lo: i32 = 0;
  var hi: i32 = i32(P.S) - 1;
  if (P.causal == 1u) { hi = min(hi, pos); }
  if (P.windowLeft >= 0) { lo = max(lo, pos - P.windowLeft); }
  if (P.windowRight >= 0) { hi = min(hi, pos + P.windowRight); }
  if (P.useKeyLengths == 1u) { hi = min(hi, i32(keyLengths[b]) - 1); }
  var acc: array<vec4f, MAX_DV4>;
  let dv4 = (P.Dv + 3u) / 4u;
  for (var c = 0u; c < dv4; c++) { acc[c] = vec4f(0.0); }
  var m: f32 = NEG_INF;
  var l: f32 = 0.0;
  let qBase = row * P.D;
  for (var j = lo; j <= hi; j++) {
    if (P.dilation > 1 && (pos - j) % P.dilation != 0) { continue; }
    let kBase = (kvh * P.S + u32(j)) * P.D;
    var s: f32 = 0.0;
    for (var d = 0u; d < P.D; d++) { s += q[qBase + d] * k[kBase + d]; }
    s *= P.scale;
    if (P.softcap > 0.0) { s = P.softcap * tanh(s / P.softcap); }
    if (P.useAlibi == 1u) { s -= slopes[h] * f32(abs(pos - j)); }
    // online softmax update
    let mNew = max(m, s);
    let alpha = exp(m - mNew);
    let p = exp(s - mNew);
    l = l * alpha + p;
    let vBase = (kvh * P.S + u32(j)) * P.Dv;
    for (var c = 0u; c < dv4; c++) {
      let d = 4u * c;
      let vv = vec4f(v[vBase + d], select(0.0, v[vBase + min(d + 1u, P.Dv - 1u)], d + 1u < P.Dv),
                     select(0.0, v[vBase + min(d + 2u, P.Dv - 1u)], d + 2u < P.Dv), select(0.0, v[vBase + min(d + 3u, P.Dv - 1u)], d + 3u < P.Dv));
      acc[c] = acc[c] * alpha + p * vv;
    }
    m = mNew;
  }
  let oBase = row * P.Dv;
  if (l == 0.0) { // no allowed key: o = 0 and lse = −∞ (written as the host's sentinel, see sdpa-flash.ts)
    for (var d = 0u; d < P.Dv; d++) { out[oBase + d] = 0.0; }
    lse[row] = NEG_INF;
    return;
  }
  for (var d = 0u; d < P.Dv; d++) { out[oBase + d] = acc[d / 4u][d % 4u] / l; }
  lse[row] = m + log(l);
}
