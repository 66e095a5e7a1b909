// FlashAttention forward on subgroup matrices (tensor cores; `chromium_experimental_subgroup_matrix`), f16 storage:
// the algorithm of sdpa-flash.wgsl (Dao 2023, FlashAttention-2) with its two products on the matrix units.
//   S = Q·Kᵀ        subgroup matrices: f16 × f16 → f32, a subgroup owns SM query rows × BLOCK_N keys
//   s_ij ← mods(scale · S_ij) or −∞ where masked   (scalar, f32: the mask and score functions of sdpa-masks.wgsl)
//   m' = max(m, max_j s_ij);  p_ij = e^{s_ij − m'} (rounded to f16, the operand type of P·V);  l = l·e^{m − m'} + Σ p
//   O ← O · e^{m − m'} + P·V   subgroup matrices: f16 × f16 → f32
//   o = O / l,  lse = m + log l
// A workgroup owns NSG·SM query rows of one head (NSG subgroups of SG lanes); it walks the keys in tiles of BLOCK_N,
// staging each K and V tile once in workgroup memory, zero-padded past the last key and past the head dims — so any
// L, S, D and Dv work, and a matrix load never reads outside a tile. The matrix shape (SM × SK times SK × SN) is the
// adapter's f16 → f32 configuration (16×16×16 on NVIDIA, 8×8×8 on Mesa's lavapipe); the host writes it, the tile
// sizes and the padded head dims into the `const` lines below (this shader's only specialisation).
// Bindings as sdpa-flash.wgsl: 0 q [BH, L, D], 1 k [BHkv, S, D], 2 v [BHkv, S, Dv], 3 out [BH, L, Dv], 4 lse [BH, L];
// 5–7 and the mask functions from sdpa-masks.wgsl, which the host prepends (with `enable f16;`).

enable chromium_experimental_subgroup_matrix;

@group(0) @binding(0) var<storage, read> q: array<f16>;
@group(0) @binding(1) var<storage, read> k: array<f16>;
@group(0) @binding(2) var<storage, read> v: array<f16>;
@group(0) @binding(3) var<storage, read_write> out: array<f16>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;

const SM: u32 = 16u;      // matrix rows (query rows of a subgroup)
const SN: u32 = 16u;      // matrix columns
const SK: u32 = 16u;      // the inner dimension of one matrix product
const SG: u32 = 32u;      // lanes per subgroup
const NSG: u32 = 4u;      // subgroups per workgroup
const BLOCK_N: u32 = 64u; // keys per tile: a multiple of SN and of SK
const DP: u32 = 128u;     // D padded to a multiple of SK
const DVP: u32 = 128u;    // Dv padded to a multiple of SN
const W: u32 = 128u;      // scratch row width: max(BLOCK_N, DVP)

const LANES: u32 = NSG * SG;
const BLOCK_M: u32 = NSG * SM;

alias Left = subgroup_matrix_left<f16, SK, SM>;
alias Right = subgroup_matrix_right<f16, SN, SK>;
alias Acc = subgroup_matrix_result<f32, SN, SM>;

var<workgroup> kv: array<f16, BLOCK_N * (DP + DVP)>; // K tile [BLOCK_N, DP], then V tile [BLOCK_N, DVP]
var<workgroup> scratch: array<f32, NSG * SM * W>;    // per subgroup: the S tile, then O while it is rescaled
var<workgroup> pt: array<f16, NSG * SM * BLOCK_N>;   // per subgroup: the P tile
var<workgroup> rowScale: array<f32, NSG * SM>;       // per row: e^{m − m'} this tile, then 1/l at the end
var<workgroup> rescale: atomic<u32>;                 // 1 when some row's running max moved this tile

@compute @workgroup_size(LANES)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
  let tilesPerHead = (P.L + BLOCK_M - 1u) / BLOCK_M;
  let bh = wg.x / tilesPerHead;
  let i0 = (wg.x % tilesPerHead) * BLOCK_M;
  let b = bh / P.Hq;
  let h = bh % P.Hq;
  let kvh = b * P.Hkv + h / (P.Hq / P.Hkv);      // GQA: query head h reads kv head h / G
  // 1. Q fragments: this subgroup's SM rows × DP, staged (zero-padded) through the K/V tile one subgroup at a time
  var qf: array<Left, DP / SK>;
  for (var g = 0u; g < NSG; g++) {
    for (var x = lid; x < SM * DP; x += LANES) {
      let i = i0 + g * SM + x / DP;
      let d = x % DP;
      kv[x] = select(f16(0.0), q[(bh * P.L + min(i, P.L - 1u)) * P.D + min(d, P.D - 1u)], i < P.L && d < P.D);
    }
    workgroupBarrier();
    if (sg == g) {
      for (var s = 0u; s < DP / SK; s++) { qf[s] = subgroupMatrixLoad<Left, row_major>(&kv, s * SK, DP); }
    }
    workgroupBarrier();
  }
  // the softmax state of one row lives in one lane: lane r < SM of subgroup sg owns row i0 + sg·SM + r
  let owner = lane < SM;
  let r = min(lane, SM - 1u);
  let i = i0 + sg * SM + r;
  let live = owner && i < P.L;
  let pos = i32(i) + P.shift;
  let range = keyRange(pos, b);
  let keepRow = (bh * P.L + min(i, P.L - 1u)) * P.S;
  var m: f32 = NEG_INF;
  var l: f32 = 0.0;
  let rowS = (sg * SM + r) * W;          // this row in the scratch
  let rowP = (sg * SM + r) * BLOCK_N;    // this row in the P tile
  var o: array<Acc, DVP / SN>;           // O, f32, in matrix registers for the whole key loop
  // the keys of the whole workgroup (uniform)
  let keys = blockKeys(i0, min(BLOCK_M, P.L - i0), b);
  let jEnd = keys.y;
  var j0 = keys.x;
  loop {
    if (j0 > jEnd) { break; }
    if (lid == 0u) { atomicStore(&rescale, 0u); } // read (below) only after the barriers that follow
    // 2. the K and V tiles, zero past the last key any row here may see (a KV cache's unwritten slots: 0 · NaN is
    //    not 0) and past D, Dv
    for (var x = lid; x < BLOCK_N * DP; x += LANES) {
      let j = u32(j0) + x / DP;
      let d = x % DP;
      kv[x] = select(f16(0.0), k[(kvh * P.S + min(j, P.S - 1u)) * P.D + min(d, P.D - 1u)], i32(j) <= jEnd && j < P.S && d < P.D);
    }
    for (var x = lid; x < BLOCK_N * DVP; x += LANES) {
      let j = u32(j0) + x / DVP;
      let d = x % DVP;
      kv[BLOCK_N * DP + x] = select(f16(0.0), v[(kvh * P.S + min(j, P.S - 1u)) * P.Dv + min(d, P.Dv - 1u)], i32(j) <= jEnd && j < P.S && d < P.Dv);
    }
    workgroupBarrier();
    // 3. S = Q·Kᵀ on the matrix units: Kᵀ's SK × SN blocks are the K tile read column-major
    for (var nb = 0u; nb < BLOCK_N / SN; nb++) {
      var s = Acc();
      for (var ks = 0u; ks < DP / SK; ks++) {
        let kt = subgroupMatrixLoad<Right, col_major>(&kv, nb * SN * DP + ks * SK, DP);
        s = subgroupMatrixMultiplyAccumulate(qf[ks], kt, s);
      }
      subgroupMatrixStore<row_major>(&scratch, sg * SM * W + nb * SN, s, W);
    }
    workgroupBarrier();
    // 4. online softmax, one lane per row: masked keys get p = 0; p is rounded to f16 before l sums it, so o is an
    //    exact weighted mean of v with the weights the matrix units see
    if (owner) {
      var mNew = m;
      for (var c = 0u; c < BLOCK_N; c++) {
        var sc = NEG_INF; // rows past L see nothing
        if (live) { sc = maskedScore(scratch[rowS + c], h, pos, j0 + i32(c), range, keepRow); }
        scratch[rowS + c] = sc;
        mNew = max(mNew, sc);
      }
      let alpha = exp(m - mNew);
      var sum: f32 = 0.0;
      for (var c = 0u; c < BLOCK_N; c++) {
        let sc = scratch[rowS + c];
        let p = select(f16(exp(sc - mNew)), f16(0.0), sc == NEG_INF);
        pt[rowP + c] = p;
        sum += f32(p);
      }
      l = l * alpha + sum;
      m = mNew;
      rowScale[sg * SM + r] = alpha;
      if (alpha != 1.0) { atomicStore(&rescale, 1u); }
    }
    // 5. O ← O · e^{m − m'}: through the scratch, a row scale per element — only in tiles where some row's max moved
    //    (e^0 = 1 exactly elsewhere: once the maxima settle, most tiles skip this round trip)
    if (workgroupUniformLoad(&rescale) == 1u) { // a barrier, and a value the whole workgroup agrees on
      for (var ob = 0u; ob < DVP / SN; ob++) { subgroupMatrixStore<row_major>(&scratch, sg * SM * W + ob * SN, o[ob], W); }
      workgroupBarrier();
      for (var x = lane; x < SM * DVP; x += SG) {
        let rr = x / DVP;
        scratch[(sg * SM + rr) * W + x % DVP] *= rowScale[sg * SM + rr];
      }
      workgroupBarrier();
      for (var ob = 0u; ob < DVP / SN; ob++) { o[ob] = subgroupMatrixLoad<Acc, row_major>(&scratch, sg * SM * W + ob * SN, W); }
    }
    // 6. O += P·V on the matrix units
    for (var ob = 0u; ob < DVP / SN; ob++) {
      var acc = o[ob];
      for (var ks = 0u; ks < BLOCK_N / SK; ks++) {
        let pf = subgroupMatrixLoad<Left, row_major>(&pt, sg * SM * BLOCK_N + ks * SK, BLOCK_N);
        let vf = subgroupMatrixLoad<Right, row_major>(&kv, BLOCK_N * DP + ks * SK * DVP + ob * SN, DVP);
        acc = subgroupMatrixMultiplyAccumulate(pf, vf, acc);
      }
      o[ob] = acc;
    }
    workgroupBarrier(); // the tiles are overwritten next
    j0 += i32(BLOCK_N);
  }
  // 7. o = O / l and lse = m + log l; a row with no allowed key gets o = 0 and lse = −∞ (the most negative f32)
  for (var ob = 0u; ob < DVP / SN; ob++) { subgroupMatrixStore<row_major>(&scratch, sg * SM * W + ob * SN, o[ob], W); }
  if (owner) { // a poisoned row (m = POISON: it saw a NaN or +∞ score) gets NaN through its row scale
    rowScale[sg * SM + r] = select(select(0.0, 1.0 / l, l > 0.0), nanValue(), poisoned(m));
    if (live) { lse[bh * P.L + i] = select(select(NEG_INF, m + log(l), l > 0.0), nanValue(), poisoned(m)); }
  }
  workgroupBarrier();
  for (var x = lane; x < SM * DVP; x += SG) {
    let rr = x / DVP;
    let d = x % DVP;
    let row = i0 + sg * SM + rr;
    if (row < P.L && d < P.Dv) { out[(bh * P.L + row) * P.Dv + d] = f16(scratch[(sg * SM + rr) * W + d] * rowScale[sg * SM + rr]); }
  }
}
