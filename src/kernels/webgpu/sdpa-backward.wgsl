// Backward pass of attention in WGSL, float32 (FlashAttention-2 §3.2; src/kernels/cpu/sdpa-backward.ts on the CPU).
// forward was:  s_ij = f(scale · q_i·k_j) (+ bias, ALiBi, masks);  p_ij = e^{s_ij − lse_i};  o_i = Σ_j p_ij v_j
// so:           dv_j = Σ_i p_ij do_i;   dp_ij = do_i·v_j;   ds_ij = p_ij (dp_ij − D_i) · f'(·),   D_i = do_i·o_i
//               dq_i = scale Σ_j ds_ij k_j;   dk_j = scale Σ_i ds_ij q_i        (f' = 1 − tanh² under soft-capping)
// p is recomputed from lse, never stored. Two entry points, so no two workgroups ever add into one gradient row:
//   dqMain:  a workgroup per 64 query rows of a head, walking the keys its rows may see in tiles of 32;
//   dkvMain: a workgroup per 64 key rows of a kv head, walking the rows of all G query heads that read it (GQA sums
//            here) in tiles of 32.
// Every product is register-blocked as in sdpa-flash.wgsl: 8 × 16 invocations, each a 4 × 4 block of the 64 × 32
// tile (S, dP), the head dims staged in slices of 16; the gradient rows accumulate as 4 rows × ⌈D/8⌉ (or ⌈Dv/8⌉)
// columns per invocation, columns tx + 8c, over staged slices of VK keys (or rows). The masks are the forward's
// (sdpa-masks.wgsl, prepended by the host): maskedScore is −∞ where row i may not see key j, and then p = ds = 0.
// Bindings: 0 q [BH, L, D], 1 k [BHkv, S, D], 2 v [BHkv, S, Dv], 3 dout [BH, L, Dv], 4 stats (lse [BH·L], then
//           D [BH·L]), 5–7 the masks' tables and P, 8 dq [BH, L, D], 9 dkv (dk [BHkv, S, D], then dv [BHkv, S, Dv]).

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(8) var<storage, read_write> dq: array<f32>;
@group(0) @binding(9) var<storage, read_write> dkv: array<f32>;

// The host specialises OCD, OCV and VK (their `const … = …u;` lines).
const OCD: u32 = 16u;             // gradient columns of D per invocation: ⌈D/8⌉
const OCV: u32 = 16u;             // of Dv: ⌈Dv/8⌉
const VK: u32 = 8u;               // rows per staged slice of the second products: VK · 8 · max(OCD, OCV) ≤ STAGE
const BM: u32 = 64u;              // the rows a workgroup owns: query rows (dq) or key rows (dk, dv)
const BN: u32 = 32u;              // the other side's tile: keys (dq) or query rows (dk, dv)
const BK: u32 = 16u;              // head-dim slice of one staging step
const LANES: u32 = 128u;          // 8 × 16 invocations
const STAGE: u32 = BK * (BM + BN);
const SW: u32 = BN + 1u;          // row stride of the tile: + 1, so a column's reads hit distinct banks

var<workgroup> stage: array<f32, STAGE>;
var<workgroup> tile: array<f32, BM * SW>;   // dS (dq), or Pᵀ then dSᵀ (dk, dv)
var<workgroup> colPos: array<i32, BN>;      // dk, dv: the query tile's rows — positions,
var<workgroup> colRange: array<vec2i, BN>;  // key ranges,
var<workgroup> colKeep: array<u32, BN>;     // offsets in the dense mask and bias,
var<workgroup> colStat: array<vec2f, BN>;   // and (lse, D)

// s[4r + c] = Σ_d A[a0 + 4ty + r][d] · B[b0 + 4tx + c][d] over the first `n` of the rows' `width` values, for A rows
// < aRows and B rows < bRows (the others read 0): the register-blocked product of both passes. `which` picks the
// operands: 0 = q·k (dq), 1 = do·v (dq), 2 = k·q (dk, dv), 3 = v·do (dk, dv); aBase, bBase are row-0 offsets.
fn blockProduct(which: u32, aBase: u32, aRows: u32, bBase: u32, bRows: u32, width: u32, tx: u32, ty: u32, lid: u32) -> array<f32, 16> {
  var s: array<f32, 16>;
  for (var x = 0u; x < 16u; x++) { s[x] = 0.0; }
  for (var d0 = 0u; d0 < width; d0 += BK) {
    for (var x = lid; x < BK * BM; x += LANES) {
      let row = x / BK;
      let d = d0 + x % BK;
      var a = 0.0;
      if (row < aRows && d < width) {
        let at = aBase + row * width + d;
        switch (which) { case 0u: { a = q[at]; } case 1u: { a = dout[at]; } case 2u: { a = k[at]; } default: { a = v[at]; } }
      }
      stage[(x % BK) * BM + row] = a;
    }
    for (var x = lid; x < BK * BN; x += LANES) {
      let c = x / BK;
      let d = d0 + x % BK;
      var b = 0.0;
      if (c < bRows && d < width) {
        let at = bBase + c * width + d;
        switch (which) { case 0u: { b = k[at]; } case 1u: { b = v[at]; } case 2u: { b = q[at]; } default: { b = dout[at]; } }
      }
      stage[BK * BM + (x % BK) * BN + c] = b;
    }
    workgroupBarrier();
    for (var dd = 0u; dd < BK; dd++) {
      let qa = dd * BM + 4u * ty;
      let ka = BK * BM + dd * BN + 4u * tx;
      let av = vec4f(stage[qa], stage[qa + 1u], stage[qa + 2u], stage[qa + 3u]);
      let bv = vec4f(stage[ka], stage[ka + 1u], stage[ka + 2u], stage[ka + 3u]);
      for (var r = 0u; r < 4u; r++) {
        for (var c = 0u; c < 4u; c++) { s[4u * r + c] += av[r] * bv[c]; }
      }
    }
    workgroupBarrier(); // the slices are overwritten next
  }
  return s;
}

// ds and p of one pair from its raw q·k, dp and the row's lse and D (p = ds = 0 where masked)
fn pairGrad(qk: f32, dp: f32, h: u32, pos: i32, j: i32, range: vec2i, keepRow: u32, lseI: f32, dI: f32) -> vec2f {
  let sc = maskedScore(qk, h, pos, j, range, keepRow);
  if (sc == NEG_INF || lseI <= NEG_INF) { return vec2f(0.0); }
  let p = exp(sc - lseI);
  var slope: f32 = 1.0;
  if (P.softcap > 0.0) { let t = tanh(P.scale * qk / P.softcap); slope = 1.0 - t * t; }
  return vec2f(p, p * (dp - dI) * slope);
}

@compute @workgroup_size(8, 16)
fn dqMain(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid3: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tilesPerHead = (P.L + BM - 1u) / BM;
  let bh = wg.x / tilesPerHead;
  let i0 = (wg.x % tilesPerHead) * BM;
  let b = bh / P.Hq;
  let h = bh % P.Hq;
  let kvh = b * P.Hkv + h / (P.Hq / P.Hkv);
  let tx = lid3.x;
  let ty = lid3.y;
  let rows = min(BM, P.L - i0);
  // this invocation's 4 rows: position, key range, mask row, lse and D
  var pos: array<i32, 4>;
  var range: array<vec2i, 4>;
  var keepRow: array<u32, 4>;
  var lseR: array<f32, 4>;
  var dR: array<f32, 4>;
  for (var r = 0u; r < 4u; r++) {
    let i = i0 + 4u * ty + r;
    let row = bh * P.L + min(i, P.L - 1u);
    pos[r] = i32(i) + P.shift;
    range[r] = select(vec2i(0, -1), keyRange(pos[r], b), i < P.L);
    keepRow[r] = row * P.S;
    lseR[r] = stats[row];
    dR[r] = stats[P.BH * P.L + row];
  }
  var acc: array<f32, 4u * OCD>;                   // dq[4ty + r][tx + 8c] / scale at r·OCD + c
  let keyBounds = blockKeys(i0, rows, b); // the keys the workgroup's rows may see (uniform)
  let jEnd = keyBounds.y;
  var j0 = keyBounds.x;
  loop {
    if (j0 > jEnd) { break; }
    let j0u = u32(j0);
    let keys = u32(min(i32(BN), jEnd - j0 + 1)); // keys past jEnd read 0 (a KV cache's unwritten slots may hold NaN)
    // 1. S = Q·Kᵀ and dP = dO·Vᵀ for the tile; 2. dS into the tile
    let s = blockProduct(0u, (bh * P.L + i0) * P.D, rows, (kvh * P.S + j0u) * P.D, keys, P.D, tx, ty, lid);
    let dp = blockProduct(1u, (bh * P.L + i0) * P.Dv, rows, (kvh * P.S + j0u) * P.Dv, keys, P.Dv, tx, ty, lid);
    for (var r = 0u; r < 4u; r++) {
      for (var c = 0u; c < 4u; c++) {
        let g = pairGrad(s[4u * r + c], dp[4u * r + c], h, pos[r], j0 + i32(4u * tx + c), range[r], keepRow[r], lseR[r], dR[r]);
        tile[(4u * ty + r) * SW + 4u * tx + c] = g.y;
      }
    }
    workgroupBarrier();
    // 3. dq += dS·K, K staged VK keys at a time
    for (var k0 = 0u; k0 < BN; k0 += VK) {
      for (var x = lid; x < VK * 8u * OCD; x += LANES) {
        let jj = k0 + x / (8u * OCD);
        let d = x % (8u * OCD);
        stage[x] = select(0.0, k[(kvh * P.S + min(j0u + jj, P.S - 1u)) * P.D + min(d, P.D - 1u)], jj < keys && d < P.D);
      }
      workgroupBarrier();
      for (var kk = 0u; kk < VK; kk++) {
        let pa = 4u * ty * SW + k0 + kk;
        let ds = vec4f(tile[pa], tile[pa + SW], tile[pa + 2u * SW], tile[pa + 3u * SW]);
        for (var c = 0u; c < OCD; c++) {
          let kv = stage[kk * 8u * OCD + tx + 8u * c];
          for (var r = 0u; r < 4u; r++) { acc[r * OCD + c] += ds[r] * kv; }
        }
      }
      workgroupBarrier();
    }
    j0 += i32(BN);
  }
  for (var r = 0u; r < 4u; r++) {
    let i = i0 + 4u * ty + r;
    if (i >= P.L) { break; }
    for (var c = 0u; c < OCD; c++) {
      let d = tx + 8u * c;
      if (d < P.D) { dq[(bh * P.L + i) * P.D + d] = P.scale * acc[r * OCD + c]; }
    }
  }
}

@compute @workgroup_size(8, 16)
fn dkvMain(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid3: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tilesPerHead = (P.S + BM - 1u) / BM;
  let kvh = wg.x / tilesPerHead;                   // b · Hkv + kv head
  let j0 = (wg.x % tilesPerHead) * BM;
  let b = kvh / P.Hkv;
  let G = P.Hq / P.Hkv;
  let tx = lid3.x;
  let ty = lid3.y;
  let keys = min(BM, P.S - j0);
  var dk: array<f32, 4u * OCD>;                    // dk[4ty + r][tx + 8c] / scale
  var dv: array<f32, 4u * OCV>;                    // dv[4ty + r][tx + 8c]
  // earlier rows never see these keys under a causal mask: start at the first row that may
  var iFirst = 0u;
  if (P.causal == 1u) { iFirst = u32(max(i32(j0) - P.causalShift, 0)); } // row i sees keys ≤ i + causalShift
  iFirst = min(iFirst - iFirst % BN, P.L);
  for (var g = 0u; g < G; g++) {
    let h = (kvh % P.Hkv) * G + g;
    let bh = b * P.Hq + h;
    for (var i0 = iFirst; i0 < P.L; i0 += BN) {
      let rows = min(BN, P.L - i0);
      // the query tile's rows: position, lse, D, mask row, key range (one invocation each)
      if (lid < BN) {
        let i = i0 + lid;
        let row = bh * P.L + min(i, P.L - 1u);
        colPos[lid] = i32(i) + P.shift;
        colRange[lid] = select(vec2i(0, -1), keyRange(colPos[lid], b), i < P.L);
        colKeep[lid] = row * P.S;
        colStat[lid] = vec2f(stats[row], stats[P.BH * P.L + row]);
      }
      // 1. Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ for the tile (the products wait on their own barriers, after which cols is set)
      let s = blockProduct(2u, (kvh * P.S + j0) * P.D, keys, (bh * P.L + i0) * P.D, rows, P.D, tx, ty, lid);
      let dpT = blockProduct(3u, (kvh * P.S + j0) * P.Dv, keys, (bh * P.L + i0) * P.Dv, rows, P.Dv, tx, ty, lid);
      var ds: array<f32, 16>;
      for (var r = 0u; r < 4u; r++) {
        for (var c = 0u; c < 4u; c++) {
          let i = 4u * tx + c;
          let gr = pairGrad(s[4u * r + c], dpT[4u * r + c], h, colPos[i], i32(j0 + 4u * ty + r), colRange[i], colKeep[i], colStat[i].x, colStat[i].y);
          tile[(4u * ty + r) * SW + 4u * tx + c] = gr.x;   // Pᵀ
          ds[4u * r + c] = gr.y;
        }
      }
      workgroupBarrier();
      // 2. dv += Pᵀ·dO, dO staged VK rows at a time; then 3. dk += dSᵀ·Q the same way
      for (var step = 0u; step < 2u; step++) {
        let width = select(P.Dv, P.D, step == 1u);
        let wp = 8u * select(OCV, OCD, step == 1u);
        for (var k0 = 0u; k0 < BN; k0 += VK) {
          for (var x = lid; x < VK * wp; x += LANES) {
            let ii = k0 + x / wp;
            let d = x % wp;
            let at = (bh * P.L + min(i0 + ii, P.L - 1u)) * width + min(d, width - 1u);
            var val = 0.0;
            if (ii < rows && d < width) { if (step == 1u) { val = q[at]; } else { val = dout[at]; } }
            stage[x] = val;
          }
          workgroupBarrier();
          for (var kk = 0u; kk < VK; kk++) {
            let pa = 4u * ty * SW + k0 + kk;
            let w4 = vec4f(tile[pa], tile[pa + SW], tile[pa + 2u * SW], tile[pa + 3u * SW]);
            if (step == 0u) {
              for (var c = 0u; c < OCV; c++) {
                let x = stage[kk * wp + tx + 8u * c];
                for (var r = 0u; r < 4u; r++) { dv[r * OCV + c] += w4[r] * x; }
              }
            } else {
              for (var c = 0u; c < OCD; c++) {
                let x = stage[kk * wp + tx + 8u * c];
                for (var r = 0u; r < 4u; r++) { dk[r * OCD + c] += w4[r] * x; }
              }
            }
          }
          workgroupBarrier();
        }
        if (step == 0u) { // the tile becomes dSᵀ
          for (var r = 0u; r < 4u; r++) {
            for (var c = 0u; c < 4u; c++) { tile[(4u * ty + r) * SW + 4u * tx + c] = ds[4u * r + c]; }
          }
          workgroupBarrier();
        }
      }
    }
  }
  let BHkv = P.BH / P.Hq * P.Hkv;
  for (var r = 0u; r < 4u; r++) {
    let j = j0 + 4u * ty + r;
    if (j >= P.S) { break; }
    for (var c = 0u; c < OCD; c++) {
      let d = tx + 8u * c;
      if (d < P.D) { dkv[(kvh * P.S + j) * P.D + d] = P.scale * dk[r * OCD + c]; }
    }
    for (var c = 0u; c < OCV; c++) {
      let d = tx + 8u * c;
      if (d < P.Dv) { dkv[BHkv * P.S * P.D + (kvh * P.S + j) * P.Dv + d] = dv[r * OCV + c]; }
    }
  }
}
