// Split-K decoding in WGSL (FlashDecoding, Dao et al. 2023) reading keys and values through a block table (paged
// attention, Kwon et al. 2023): the GPU counterpart of src/kernels/cpu/sdpa-decode.ts and sdpa-paged.ts.
// A decode step has one query row per head — far too few rows to fill a GPU one row per invocation — so the keys
// of each row are cut into `splits` chunks and every (row, chunk) gets a workgroup; a second pass merges the chunks.
//   pass 1 (partial), per (row, chunk), tiles of BLOCK_N keys, one key per invocation:
//     s_j = scale · q·k_j (softcap · tanh(s/softcap));  m' = max(m, max_j s_j);  p_j = e^{s_j − m'}
//     l = l·e^{m − m'} + Σ_j p_j;  acc = acc·e^{m − m'} + Σ_j p_j v_j   (invocation t owns lanes t, t + 64, … of acc)
//   pass 2 (merge), per row:  M = max_c m_c;  l = Σ_c e^{m_c − M} l_c;  o = Σ_c e^{m_c − M} acc_c / l;  lse = M + log l
// Keys: row b's key j lives in block table_b[⌊j / BLOCK⌋], slot j mod BLOCK, of a pool [blocks, Hkv, BLOCK, D]
// (a dense cache [B, Hkv, S, D] is the pool with one block of S slots per row). Row b has seqLen_b keys; its T
// queries sit at positions seqLen_b − T … seqLen_b − 1; causal: keys ≤ i; window W: keys > i − W; keyMask 0: skip.
// Bindings: 0 q [B, Hq, T, D], 1 k pool, 2 v pool, 3 aux (u32: seqLens [B], tables [B, maxBlocks], keyMask
//           [B, maxS]), 4 part [rows, splits, Dv + 2] (m, l, acc), 5 out [rows, Dv], 6 lse [rows], 7 P.
// q, k, v and out are stored as E: f32, or f16 in the host's variant where shader-f16 exists (storageVariant);
// the arithmetic, part and lse are f32.

struct Params {
  B: u32, Hq: u32, Hkv: u32, T: u32,
  D: u32, Dv: u32, blockSize: u32, maxBlocks: u32,
  splits: u32, chunk: u32, causal: u32, window: i32,
  scale: f32, softcap: f32, useKeyMask: u32, maxS: u32,
}

alias E = f32;
@group(0) @binding(0) var<storage, read> q: array<E>;
@group(0) @binding(1) var<storage, read> k: array<E>;
@group(0) @binding(2) var<storage, read> v: array<E>;
@group(0) @binding(3) var<storage, read> aux: array<u32>;
@group(0) @binding(4) var<storage, read_write> part: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<E>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;
@group(0) @binding(7) var<uniform> P: Params;

const BLOCK_N: u32 = 64u; // keys per tile = invocations per workgroup
const MAX_D: u32 = 256u;
const NEG_INF: f32 = bitcast<f32>(0xff7fffffu); // the most negative f32: WGSL has no infinity literal
// NaN and +∞ scores become POISON, which wins every max; a row whose merged max is POISON is NaN (sdpa-masks.wgsl
// says why: WGSL lets compilers assume no NaN, so they are found by their bits)
const POISON: f32 = bitcast<f32>(0x7f7fffffu);
fn unfinite(s: f32) -> bool { let b = bitcast<u32>(s); return (b & 0x7fffffffu) > 0x7f800000u || b == 0x7f800000u; }
fn nanValue() -> f32 { return bitcast<f32>(0x7fc00000u | (P.B & 0u)); }

var<workgroup> qs: array<f32, MAX_D>;    // the query row
var<workgroup> ps: array<f32, BLOCK_N>;  // the tile's scores, then probabilities
var<workgroup> slots: array<u32, BLOCK_N>; // the tile's key slots in the pool (slot · D is the key's offset)

// the pool slot of key j of row b for kv head kvh
fn slotOf(b: u32, kvh: u32, j: u32) -> u32 {
  let block = aux[P.B + b * P.maxBlocks + j / P.blockSize];
  return (block * P.Hkv + kvh) * P.blockSize + j % P.blockSize;
}

@compute @workgroup_size(64)
fn partial(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let split = wg.x;
  let row = wg.y;                            // (b, h, t), uniform in the workgroup
  let t = row % P.T;
  let h = (row / P.T) % P.Hq;
  let b = row / (P.T * P.Hq);
  let kvh = h / (P.Hq / P.Hkv);              // GQA: query head h reads kv head h / G
  let S = i32(aux[b]);                       // this row's keys
  let i = S - i32(P.T) + i32(t);             // the query's position
  var lo: i32 = 0;
  var hi: i32 = S - 1;
  if (P.causal == 1u) { hi = min(hi, i); }
  if (P.window > 0) { lo = max(lo, i - P.window + 1); }
  // this chunk's share of [lo, hi]
  let start = max(lo, i32(split * P.chunk));
  let end = min(hi, i32((split + 1u) * P.chunk) - 1);
  for (var d = lid; d < P.D; d += BLOCK_N) { qs[d] = f32(q[row * P.D + d]); }
  var m: f32 = NEG_INF;
  var l: f32 = 0.0;
  var acc: array<f32, 4>;                    // lanes lid, lid + 64, lid + 128, lid + 192 of acc (Dv ≤ 256)
  for (var r = 0u; r < 4u; r++) { acc[r] = 0.0; }
  workgroupBarrier();
  var j0 = start;
  loop {
    if (j0 > end) { break; }
    // 1. one key per invocation: its slot and its score (NEG_INF past the chunk or masked)
    let j = j0 + i32(lid);
    var s: f32 = NEG_INF;
    var slot: u32 = 0u;
    if (j <= end && (P.useKeyMask == 0u || aux[P.B + P.B * P.maxBlocks + b * P.maxS + u32(j)] != 0u)) {
      slot = slotOf(b, kvh, u32(j));
      var dotqk: f32 = 0.0;
      for (var d = 0u; d < P.D; d++) { dotqk += qs[d] * f32(k[slot * P.D + d]); }
      s = dotqk * P.scale;
      let raw = s;
      if (P.softcap > 0.0) { s = P.softcap * tanh(s / P.softcap); }
      if (unfinite(raw) || unfinite(s)) { s = POISON; }
    }
    ps[lid] = s;
    slots[lid] = slot;
    workgroupBarrier();
    // 2. the tile's max, the new running max, and the probabilities
    var mt: f32 = NEG_INF;
    for (var c = 0u; c < BLOCK_N; c++) { mt = max(mt, ps[c]); }
    let mNew = max(m, mt);
    workgroupBarrier();
    var p: f32 = 0.0;
    if (s > NEG_INF) { p = exp(s - mNew); }
    ps[lid] = p;
    workgroupBarrier();
    // 3. l and acc rescaled by e^{m − m'} and the tile added (every invocation sums l; each owns its acc lanes)
    if (mNew > NEG_INF) {
      let alpha = exp(m - mNew);
      var sum: f32 = 0.0;
      for (var c = 0u; c < BLOCK_N; c++) { sum += ps[c]; }
      l = l * alpha + sum;
      for (var r = 0u; r < 4u; r++) {
        let d = lid + r * BLOCK_N;
        if (d < P.Dv) {
          var a = acc[r] * alpha;
          for (var c = 0u; c < BLOCK_N; c++) {
            if (ps[c] > 0.0) { a += ps[c] * f32(v[slots[c] * P.Dv + d]); }
          }
          acc[r] = a;
        }
      }
      m = mNew;
    }
    workgroupBarrier(); // ps and slots are overwritten next
    j0 += i32(BLOCK_N);
  }
  let base = (row * P.splits + split) * (P.Dv + 2u);
  if (lid == 0u) { part[base] = m; part[base + 1u] = l; }
  for (var r = 0u; r < 4u; r++) {
    let d = lid + r * BLOCK_N;
    if (d < P.Dv) { part[base + 2u + d] = acc[r]; }
  }
}

@compute @workgroup_size(64)
fn merge(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wg.x + wg.y * 65535u;
  if (row >= P.B * P.Hq * P.T) { return; }
  let stride = P.Dv + 2u;
  let first = row * P.splits * stride;
  var M: f32 = NEG_INF;
  for (var c = 0u; c < P.splits; c++) { M = max(M, part[first + c * stride]); }
  var l: f32 = 0.0;
  if (M > NEG_INF) {
    for (var c = 0u; c < P.splits; c++) { l += exp(part[first + c * stride] - M) * part[first + c * stride + 1u]; }
  }
  // no allowed key (l = 0): o = 0 and lse = −∞ (written as the most negative f32; the host restores −∞);
  // a poisoned row (M = POISON): NaN
  let bad = bitcast<u32>(M) == 0x7f7fffffu;
  for (var d = lid; d < P.Dv; d += 64u) {
    var o: f32 = 0.0;
    if (l > 0.0) {
      for (var c = 0u; c < P.splits; c++) {
        let at = first + c * stride;
        o += exp(part[at] - M) * part[at + 2u + d];
      }
      o /= l;
    }
    out[row * P.Dv + d] = E(select(o, nanValue(), bad));
  }
  if (lid == 0u) { lse[row] = select(select(NEG_INF, M + log(l), l > 0.0), nanValue(), bad); }
}
