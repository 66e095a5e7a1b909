// FlashAttention forward in WGSL (Dao 2023, FlashAttention-2), both products register-blocked like matmul.wgsl.
// A workgroup owns BLOCK_M query rows of one head (64 by default) and walks the keys in tiles of BLOCK_N (32):
//   1. S = Q·Kᵀ for the tile: each of the TX × TY invocations a 4 × 4 block of S, the head dim in slices of BLOCK_K
//      staged in workgroup memory (k-major, so each step reads a vec4 of rows and a vec4 of keys)
//   2. online softmax on those register blocks, f32, with the masks and score modifiers of sdpa-masks.wgsl:
//        s_j = scale · q·k_j;  s_j ← softcap · tanh(s_j / softcap);  s_j += bias;  s_j −= slope_h · |i' − j|  (ALiBi)
//        m' = max(m, max_j s_j);  p_j = e^{s_j − m'} (0 where masked);  l ← l · e^{m − m'} + Σ_j p_j
//      a row's max gathers the TX partial maxima of the invocations that share it (through workgroup memory); each
//      keeps the sum of its own columns, gathered once at the end; P goes to workgroup memory for P·V
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

// The host specialises the first four (their `const … = …u;` lines, like Triton's constexprs).
const BLOCK_M: u32 = 64u;         // query rows per workgroup: TY row groups of 4
const BLOCK_N: u32 = 32u;         // keys per tile: TX column groups of 4
const OC: u32 = 16u;              // O columns per invocation: ⌈Dv / TX⌉
const VK: u32 = 8u;               // keys per staged V slice: the largest power of 2 ≤ BLOCK_N with VK · DVP ≤ STAGE
const BLOCK_K: u32 = 16u;         // head-dim slice of one staging step of Q·Kᵀ
const TX: u32 = BLOCK_N / 4u;
const TY: u32 = BLOCK_M / 4u;
const LANES: u32 = TX * TY;       // invocations
const DVP: u32 = TX * OC;         // Dv padded to the TX column groups
const STAGE: u32 = BLOCK_K * (BLOCK_M + BLOCK_N); // the Q and K slices, a V slice, or the rows' TX partials
const SW: u32 = BLOCK_N + 1u;     // row stride of the S/P tile: + 1, so a column's reads hit distinct banks

var<workgroup> stage: array<f32, STAGE>;
var<workgroup> sp: array<f32, BLOCK_M * SW>;  // the tile's P

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
  // the softmax state of this invocation's 4 rows (the TX invocations of a row agree on m; l sums its own columns)
  var pos: array<i32, 4>;
  var range: array<vec2i, 4>;
  var keepRow: array<u32, 4>;
  var m: array<f32, 4>;
  var l: array<f32, 4>;
  for (var r = 0u; r < 4u; r++) {
    let i = i0 + 4u * ty + r;
    pos[r] = i32(i) + P.shift;
    range[r] = select(vec2i(0, -1), keyRange(pos[r], b), i < P.L); // the last tile may be partial: its idle rows see no key
    keepRow[r] = (bh * P.L + min(i, P.L - 1u)) * P.S;               // the row's offset in the dense [B, Hq, L, S] mask and bias
    m[r] = NEG_INF;
    l[r] = 0.0;
  }
  var acc: array<f32, 4u * OC>;                    // O[4ty + r][tx + TX·c] at r·OC + c
  // the keys of the whole tile of rows (uniform)
  let keys = blockKeys(i0, min(BLOCK_M, P.L - i0), b);
  let jEnd = keys.y;
  var j0 = keys.x;
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
    // 2. the online softmax: masks and modifiers on the block, each row's max over its TX invocations' partials
    for (var r = 0u; r < 4u; r++) {
      var mx = NEG_INF;
      for (var c = 0u; c < 4u; c++) {
        let sc = maskedScore(s[4u * r + c], h, pos[r], j0 + i32(4u * tx + c), range[r], keepRow[r]);
        s[4u * r + c] = sc;
        mx = max(mx, sc);
      }
      stage[(4u * ty + r) * TX + tx] = mx;
    }
    workgroupBarrier();
    for (var r = 0u; r < 4u; r++) {
      var mNew = m[r];
      for (var t = 0u; t < TX; t++) { mNew = max(mNew, stage[(4u * ty + r) * TX + t]); }
      // O ← O · e^{m − m'} (this invocation's columns of the row), then p = e^{s − m'} into the P tile
      let alpha = exp(m[r] - mNew);
      for (var c = 0u; c < OC; c++) { acc[r * OC + c] *= alpha; }
      var sum: f32 = 0.0;
      for (var c = 0u; c < 4u; c++) {
        let sc = s[4u * r + c];
        let p = select(exp(sc - mNew), 0.0, sc == NEG_INF);
        sp[(4u * ty + r) * SW + 4u * tx + c] = p;
        sum += p;
      }
      l[r] = l[r] * alpha + sum;
      m[r] = mNew;
    }
    workgroupBarrier(); // P is whole, and the partials are read before V slices overwrite them
    // 3. O += P·V:  acc[r·OC + c] += Σ_j P[4ty + r][j] · V[j][tx + TX·c]
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
  // 4. l = the sum of the row's TX partial sums; o = O / l and lse = m + log l; a row with no allowed key gets o = 0
  //    and lse = −∞ (written as the most negative f32; the host restores −∞); a poisoned row (m = POISON) gets NaN
  for (var r = 0u; r < 4u; r++) { stage[(4u * ty + r) * TX + tx] = l[r]; }
  workgroupBarrier();
  for (var r = 0u; r < 4u; r++) {
    let row = i0 + 4u * ty + r;
    if (row >= P.L) { break; }
    var lRow: f32 = 0.0;
    for (var t = 0u; t < TX; t++) { lRow += stage[(4u * ty + r) * TX + t]; }
    let bad = poisoned(m[r]); // the row saw a NaN or +∞ score: o and lse are NaN
    if (tx == 0u) { lse[bh * P.L + row] = select(select(NEG_INF, m[r] + log(lRow), lRow > 0.0), nanValue(), bad); }
    let inv = select(0.0, 1.0 / lRow, lRow > 0.0);
    for (var c = 0u; c < OC; c++) {
      let d = tx + TX * c;
      if (d < P.Dv) { out[(bh * P.L + row) * P.Dv + d] = E(select(acc[r * OC + c] * inv, nanValue(), bad)); }
    }
  }
}
