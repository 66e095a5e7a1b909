// FlashAttention forward in WGSL (Dao 2023, FlashAttention-2), both products register-blocked like matmul.wgsl.
// A workgroup owns BLOCK_M query rows of one head (64 by default) and walks the keys in tiles of BLOCK_N (32):
//   1. S = Q·Kᵀ for the tile: each of the TX × TY invocations a 4 × 4 block of S, the head dim in slices of BLOCK_K
//      staged in workgroup memory (k-major, so each step reads a vec4 of rows and a vec4 of keys)
//   2. online softmax, one invocation per row, scalar f32, with the masks and score modifiers of sdpa-masks.wgsl:
//        s_j = scale · q·k_j;  s_j ← softcap · tanh(s_j / softcap);  s_j += bias;  s_j −= slope_h · |i' − j|  (ALiBi)
//        m' = max(m, max_j s_j);  p_j = e^{s_j − m'} (0 where masked);  l ← l · e^{m − m'} + Σ_j p_j
//   3. O ← O · e^{m − m'} + P·V: each invocation 4 rows × OC columns of O in registers (columns tx + TX·c), V staged
//      in slices of VK keys
// and at the end o = O / l, lse = m + log l. Structured masks are key ranges: tiles outside the workgroup's rows'
// ranges are never loaded, and no dense L×S mask exists anywhere (only user-given dense masks and biases are arrays).
// Loads past L, S, D or Dv read 0, so any shape works; so do keys past the last one any row of the workgroup may see
// (a KV cache's unwritten slots: p = 0 there, but 0 · NaN would not be 0).
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

// The host specialises the first three and OC, VK (the `const … = …u;` lines, like Triton's constexprs).
const BLOCK_M: u32 = 64u;         // query rows per workgroup: TY row groups of 4 (≤ LANES: a row per softmax invocation)
const BLOCK_N: u32 = 32u;         // keys per tile: TX column groups of 4
const OC: u32 = 16u;              // O columns per invocation: ⌈Dv / TX⌉
const VK: u32 = 8u;               // keys per staged V slice: the largest power of 2 ≤ BLOCK_N with VK · DVP ≤ STAGE
const BLOCK_K: u32 = 16u;         // head-dim slice of one staging step of Q·Kᵀ
const TX: u32 = BLOCK_N / 4u;
const TY: u32 = BLOCK_M / 4u;
const LANES: u32 = TX * TY;       // invocations
const DVP: u32 = TX * OC;         // Dv padded to the TX column groups
const STAGE: u32 = BLOCK_K * (BLOCK_M + BLOCK_N); // the Q and K slices, or one V slice
const SW: u32 = BLOCK_N + 1u;     // row stride of the S/P tile: + 1, so a column's reads hit distinct banks

var<workgroup> stage: array<f32, STAGE>;
var<workgroup> sp: array<f32, BLOCK_M * SW>;  // the tile's S, then its P
var<workgroup> rowScale: array<f32, BLOCK_M>; // e^{m − m'} of each row this tile; 1/l at the end

@compute @workgroup_size(TX, TY)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid3: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tilesPerHead = (P.L + BLOCK_M - 1u) / BLOCK_M;
  let bh = wg.x / tilesPerHead;                    // uniform in the workgroup
  let i0 = (wg.x % tilesPerHead) * BLOCK_M;
  let b = bh / P.Hq;
  let h = bh % P.Hq;
  let kvh = b * P.Hkv + h / (P.Hq / P.Hkv);        // GQA: query head h reads kv head h / G
  let tx = lid3.x;                                 // S columns 4tx.., O columns tx + TX·c
  let ty = lid3.y;                                 // rows 4ty..4ty+3 of the workgroup's
  // the softmax state of row i0 + lid lives in invocation lid < BLOCK_M
  let owner = lid < BLOCK_M;
  let i = i0 + lid;
  let live = owner && i < P.L;                     // the last tile may be partial: its idle rows see no key
  let pos = i32(i) + P.shift;
  let range = keyRange(pos, b);
  let keepRow = (bh * P.L + min(i, P.L - 1u)) * P.S; // this row's offset in the dense [B, Hq, L, S] mask and bias
  var m: f32 = NEG_INF;
  var l: f32 = 0.0;
  var acc: array<f32, 4u * OC>;                    // O[4ty + r][tx + TX·c] at r·OC + c
  // the keys of the whole tile of rows: from the first row's lo to the last row's hi (uniform)
  let first = keyRange(i32(i0) + P.shift, b);
  let last = keyRange(i32(min(i0 + BLOCK_M, P.L) - 1u) + P.shift, b);
  var jStart = max(first.x, 0);
  var jEnd = last.y;
  if (P.useDocs == 1u) { jEnd = max(jEnd, first.y); } // documents: a later row may end earlier than an earlier one
  if (P.useGlobal == 1u || P.useBlocks == 1u) { jStart = 0; } // global keys and blocks may sit anywhere
  var j0 = jStart;
  loop {
    if (j0 > jEnd) { break; }
    let j0u = u32(j0);
    // 1. S = Q·Kᵀ: s[4r + c] = Σ_d Q[4ty + r][d] · K[4tx + c][d]
    var s: array<f32, 16>;
    // zeroed by hand: WGSL re-initialises a loop's `var` on every iteration, but through Dawn's SPIR-V on Mesa's
    // lavapipe the second tile started from the first tile's sums (seen with Dawn 0.6.2, Mesa 25 and 26)
    for (var x = 0u; x < 16u; x++) { s[x] = 0.0; }
    for (var d0 = 0u; d0 < P.D; d0 += BLOCK_K) {
      for (var x = lid; x < BLOCK_K * BLOCK_M; x += LANES) {
        let row = x / BLOCK_K;
        let d = d0 + x % BLOCK_K;
        let ok = i0 + row < P.L && d < P.D;
        stage[(x % BLOCK_K) * BLOCK_M + row] = select(0.0, f32(q[(bh * P.L + min(i0 + row, P.L - 1u)) * P.D + min(d, P.D - 1u)]), ok);
      }
      for (var x = lid; x < BLOCK_K * BLOCK_N; x += LANES) {
        let c = x / BLOCK_K;
        let d = d0 + x % BLOCK_K;
        let ok = i32(j0u + c) <= jEnd && j0u + c < P.S && d < P.D;
        stage[BLOCK_K * BLOCK_M + (x % BLOCK_K) * BLOCK_N + c] = select(0.0, f32(k[(kvh * P.S + min(j0u + c, P.S - 1u)) * P.D + min(d, P.D - 1u)]), ok);
      }
      workgroupBarrier();
      for (var dd = 0u; dd < BLOCK_K; dd++) {
        let qa = dd * BLOCK_M + 4u * ty;
        let ka = BLOCK_K * BLOCK_M + dd * BLOCK_N + 4u * tx;
        let qv = vec4f(stage[qa], stage[qa + 1u], stage[qa + 2u], stage[qa + 3u]);
        let kv = vec4f(stage[ka], stage[ka + 1u], stage[ka + 2u], stage[ka + 3u]);
        for (var r = 0u; r < 4u; r++) {
          for (var c = 0u; c < 4u; c++) { s[4u * r + c] += qv[r] * kv[c]; }
        }
      }
      workgroupBarrier(); // the slices are overwritten next
    }
    for (var r = 0u; r < 4u; r++) {
      for (var c = 0u; c < 4u; c++) { sp[(4u * ty + r) * SW + 4u * tx + c] = s[4u * r + c]; }
    }
    workgroupBarrier();
    // 2. the online softmax of each row over the keys of the tile it may see
    if (owner) {
      var mNew = m;
      for (var c = 0u; c < BLOCK_N; c++) {
        var sc = NEG_INF; // rows past L see nothing
        if (live) { sc = maskedScore(sp[lid * SW + c], h, pos, j0 + i32(c), range, keepRow); }
        sp[lid * SW + c] = sc;
        mNew = max(mNew, sc);
      }
      var sum: f32 = 0.0;
      for (var c = 0u; c < BLOCK_N; c++) {
        let sc = sp[lid * SW + c];
        let p = select(exp(sc - mNew), 0.0, sc == NEG_INF);
        sp[lid * SW + c] = p;
        sum += p;
      }
      let alpha = exp(m - mNew);
      l = l * alpha + sum;
      m = mNew;
      rowScale[lid] = alpha;
    }
    workgroupBarrier();
    // 3. O ← O · e^{m − m'} + P·V:  acc[r·OC + c] = acc · alpha_r + Σ_j P[4ty + r][j] · V[j][tx + TX·c]
    for (var r = 0u; r < 4u; r++) {
      let alpha = rowScale[4u * ty + r];
      for (var c = 0u; c < OC; c++) { acc[r * OC + c] *= alpha; }
    }
    for (var k0 = 0u; k0 < BLOCK_N; k0 += VK) {
      for (var x = lid; x < VK * DVP; x += LANES) {
        let j = j0u + k0 + x / DVP;
        let d = x % DVP;
        stage[x] = select(0.0, f32(v[(kvh * P.S + min(j, P.S - 1u)) * P.Dv + min(d, P.Dv - 1u)]), i32(j) <= jEnd && j < P.S && d < P.Dv);
      }
      workgroupBarrier();
      for (var kk = 0u; kk < VK; kk++) {
        let pa = 4u * ty * SW + k0 + kk;
        let p = vec4f(sp[pa], sp[pa + SW], sp[pa + 2u * SW], sp[pa + 3u * SW]);
        for (var c = 0u; c < OC; c++) {
          let vv = stage[kk * DVP + tx + TX * c];
          for (var r = 0u; r < 4u; r++) { acc[r * OC + c] += p[r] * vv; }
        }
      }
      workgroupBarrier(); // the slice is overwritten next
    }
    j0 += i32(BLOCK_N);
  }
  // 4. o = O / l and lse = m + log l; a row with no allowed key gets o = 0 and lse = −∞ (written as the most
  //    negative f32; the host restores −∞)
  if (owner) {
    rowScale[lid] = select(0.0, 1.0 / l, l > 0.0);
    if (live) { lse[bh * P.L + i] = select(NEG_INF, m + log(l), l > 0.0); }
  }
  workgroupBarrier();
  for (var r = 0u; r < 4u; r++) {
    let row = i0 + 4u * ty + r;
    if (row >= P.L) { break; }
    for (var c = 0u; c < OC; c++) {
      let d = tx + TX * c;
      if (d < P.Dv) { out[(bh * P.L + row) * P.Dv + d] = E(acc[r * OC + c] * rowScale[4u * ty + r]); }
    }
  }
}
