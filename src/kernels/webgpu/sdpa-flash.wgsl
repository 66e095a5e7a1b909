// FlashAttention forward in WGSL, float32 (Dao et al. 2022; Triton's fused-attention tutorial). A workgroup owns
// BLOCK_M query rows of one head, one invocation per row holding m_i, l_i and acc in registers; the workgroup walks
// the keys in tiles of BLOCK_N, loading each K and V tile once into workgroup memory for all its rows. Structured
// masks are key ranges, so masked tiles are never loaded (no dense L×S mask exists anywhere).
//   s_j = scale · q·k_j;  s_j ← softcap · tanh(s_j / softcap);  s_j += bias;  s_j −= slope_h · |i' − j|   (ALiBi)
//   m' = max(m, s_j);  acc = acc · e^{m − m'} + e^{s_j − m'} v_j;  l likewise;  o = acc / l,  lse = m + log l
// Masks, as on the CPU: causal, key padding, documents (cu_seqlens) and prefix-LM bound each row's key range; inside
// it a key must pass the sparse pattern — window (dilated) and block-sparse table, ORed with global tokens — and a
// dense keep mask when one was given. Only user-given dense masks and biases are L×S arrays.
// Bindings: 0 q [BH, L, D], 1 k [BHkv, S, D], 2 v [BHkv, S, Dv], 3 out [BH, L, Dv], 4 lse [BH, L]; 5–7 and the
// mask functions come from sdpa-masks.wgsl, which the host prepends.
// q, k, v and out are stored as E: f32, or f16 in the variant the host makes where shader-f16 exists (storageVariant);
// every product, the softmax statistics and lse stay f32.

alias E = f32;
@group(0) @binding(0) var<storage, read> q: array<E>;
@group(0) @binding(1) var<storage, read> k: array<E>;
@group(0) @binding(2) var<storage, read> v: array<E>;
@group(0) @binding(3) var<storage, read_write> out: array<E>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;

const BLOCK_M: u32 = 64u;          // rows per workgroup = invocations
const TILE_FLOATS: u32 = 4000u;   // workgroup memory for one K and one V tile (16 000 bytes of the 16 KiB guaranteed)
const MAX_DV4: u32 = 64u;         // vec4 lanes of the accumulator: the host specialises this to ⌈Dv/4⌉ (≤ 64)
const MAX_D4: u32 = 64u;          // vec4 lanes of the query row kept in registers: specialised to ⌈D/4⌉ (≤ 64)

var<workgroup> tile: array<f32, TILE_FLOATS>; // K tile [BLOCK_N, D], then V tile [BLOCK_N, Dv]

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tilesPerHead = (P.L + BLOCK_M - 1u) / BLOCK_M;
  let bh = wg.x / tilesPerHead;                   // uniform in the workgroup
  let i0 = (wg.x % tilesPerHead) * BLOCK_M;
  let i = i0 + lid;
  let live = i < P.L;                           // the last tile may be partial; its idle rows still load tiles
  let b = bh / P.Hq;
  let h = bh % P.Hq;
  let kvh = b * P.Hkv + h / (P.Hq / P.Hkv);        // GQA: query head h reads kv head h / G
  let pos = i32(i) + P.shift;
  let range = keyRange(pos, b);
  let keepRow = (bh * P.L + min(i, P.L - 1u)) * P.S; // this row's offset in the dense [B, Hq, L, S] mask and bias
  // the keys of the whole tile of rows: from the first row's lo to the last row's hi (uniform)
  let first = keyRange(i32(i0) + P.shift, b);
  let last = keyRange(i32(min(i0 + BLOCK_M, P.L) - 1u) + P.shift, b);
  var jStart = max(first.x, 0);
  var jEnd = last.y;
  if (P.useDocs == 1u) { jEnd = max(jEnd, first.y); } // documents: a later row may end earlier than an earlier one
  if (P.useGlobal == 1u || P.useBlocks == 1u) { jStart = 0; } // global keys and blocks may sit anywhere
  let BLOCK_N = min(32u, TILE_FLOATS / (P.D + P.Dv));
  var acc: array<vec4f, MAX_DV4>;
  let dv4 = (P.Dv + 3u) / 4u;
  for (var c = 0u; c < dv4; c++) { acc[c] = vec4f(0.0); }
  var m: f32 = NEG_INF;
  var l: f32 = 0.0;
  let qBase = (bh * P.L + min(i, P.L - 1u)) * P.D;
  // the query row, in registers for the whole key loop (zero-padded to whole vec4s)
  var qr: array<vec4f, MAX_D4>;
  let d4 = (P.D + 3u) / 4u;
  for (var c4 = 0u; c4 < d4; c4++) {
    let d = 4u * c4;
    qr[c4] = vec4f(f32(q[qBase + d]), select(0.0, f32(q[qBase + min(d + 1u, P.D - 1u)]), d + 1u < P.D),
                   select(0.0, f32(q[qBase + min(d + 2u, P.D - 1u)]), d + 2u < P.D), select(0.0, f32(q[qBase + min(d + 3u, P.D - 1u)]), d + 3u < P.D));
  }
  var j0 = jStart;
  loop {
    if (j0 > jEnd) { break; }
    let n = u32(min(i32(BLOCK_N), jEnd - j0 + 1));
    // 1. load the K and V tiles cooperatively
    let kOff = (kvh * P.S + u32(j0)) * P.D;
    let vOff = (kvh * P.S + u32(j0)) * P.Dv;
    for (var x = lid; x < n * P.D; x += BLOCK_M) { tile[x] = f32(k[kOff + x]); }
    for (var x = lid; x < n * P.Dv; x += BLOCK_M) { tile[n * P.D + x] = f32(v[vOff + x]); }
    workgroupBarrier();
    // 2. each row folds the keys of the tile it may see into its online softmax
    if (live) {
      for (var c = 0u; c < n; c++) {
        let j = j0 + i32(c);
        if (j < range.x || j > range.y || !allowed(pos, j, keepRow)) { continue; }
        var s: f32 = 0.0;
        let kb = c * P.D;
        for (var c4 = 0u; c4 < d4; c4++) {
          let d = 4u * c4;
          s += dot(qr[c4], vec4f(tile[kb + d], select(0.0, tile[kb + min(d + 1u, P.D - 1u)], d + 1u < P.D),
                                 select(0.0, tile[kb + min(d + 2u, P.D - 1u)], d + 2u < P.D), select(0.0, tile[kb + min(d + 3u, P.D - 1u)], d + 3u < P.D)));
        }
        s = modScore(s * P.scale, h, pos, j, keepRow);
        let mNew = max(m, s);
        let alpha = exp(m - mNew);
        let p = exp(s - mNew);
        l = l * alpha + p;
        let vBase = n * P.D + c * P.Dv;
        for (var c4 = 0u; c4 < dv4; c4++) {
          let d = 4u * c4;
          let vv = vec4f(tile[vBase + d], select(0.0, tile[vBase + min(d + 1u, P.Dv - 1u)], d + 1u < P.Dv),
                         select(0.0, tile[vBase + min(d + 2u, P.Dv - 1u)], d + 2u < P.Dv), select(0.0, tile[vBase + min(d + 3u, P.Dv - 1u)], d + 3u < P.Dv));
          acc[c4] = acc[c4] * alpha + p * vv;
        }
        m = mNew;
      }
    }
    workgroupBarrier(); // the tile is overwritten next
    j0 += i32(BLOCK_N);
  }
  if (!live) { return; }
  let row = bh * P.L + i;
  let oBase = row * P.Dv;
  if (l == 0.0) { // no allowed key: o = 0 and lse = −∞ (written as the most negative f32; the host restores −∞)
    for (var d = 0u; d < P.Dv; d++) { out[oBase + d] = E(0.0); }
    lse[row] = NEG_INF;
    return;
  }
  for (var d = 0u; d < P.Dv; d++) { out[oBase + d] = E(acc[d / 4u][d % 4u] / l); }
  lse[row] = m + log(l);
}
