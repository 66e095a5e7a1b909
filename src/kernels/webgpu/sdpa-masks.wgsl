// What every attention kernel in WGSL shares (prepended to sdpa-flash.wgsl and sdpa-backward.wgsl): the uniform
// parameters, the mask tables, the masks as key ranges and a per-key test, and the score modifiers. Mirrors the CPU
// spec in src/attention/masks.ts and score-mods.ts.
//   s ← softcap · tanh(s / softcap);  s += bias_ij;  s −= slope_h · |i' − j|   (ALiBi)
// Bindings 5 aux (u32: key lengths, global flags, block table, document bounds, keep mask — offsets in P),
//          6 fl (f32: ALiBi slopes, dense bias), 7 the uniform parameters below.

struct Params {
  BH: u32, Hq: u32, Hkv: u32, L: u32,
  S: u32, D: u32, Dv: u32, causal: u32,
  scale: f32, softcap: f32, shift: i32, useAlibi: u32,
  windowLeft: i32, windowRight: i32, dilation: i32, useKeyLengths: u32,
  prefix: i32, useGlobal: u32, offGlobal: u32, useBlocks: u32,
  blockSize: u32, blockCols: u32, offBlocks: u32, useDocs: u32,
  offDocs: u32, useKeep: u32, offKeep: u32, useBias: u32,
  offBias: u32, causalShift: i32, pad1: u32, pad2: u32,
}

@group(0) @binding(5) var<storage, read> aux: array<u32>;
@group(0) @binding(6) var<storage, read> fl: array<f32>;
@group(0) @binding(7) var<uniform> P: Params;

const NEG_INF: f32 = bitcast<f32>(0xff7fffffu); // the most negative f32: WGSL has no infinity literal

// NaN and +∞ scores. WGSL lets a compiler assume neither occurs, so max() and comparisons may drop a NaN (on the CPU,
// as in torch, a row that sees a NaN or +∞ score is NaN). A score whose bits say NaN or +∞ becomes POISON, the largest
// finite f32, which wins every max; a row whose max is POISON is written as NaN at the end. (A finite score of exactly
// 3.4028235e38 would read as poison too.)
const POISON: f32 = bitcast<f32>(0x7f7fffffu);
fn unfinite(s: f32) -> bool { let b = bitcast<u32>(s); return (b & 0x7fffffffu) > 0x7f800000u || b == 0x7f800000u; }
fn poisoned(m: f32) -> bool { return bitcast<u32>(m) == 0x7f7fffffu; }
// a NaN made at run time (a NaN constant is a shader-creation error)
fn nanValue() -> f32 { return bitcast<f32>(0x7fc00000u | (P.pad1 & 0u)); }

// Positions, as on the CPU (src/attention/masks.ts): row i sits at pos = i + shift (shift = S − L: bottom-right, as
// in KV-cache decoding) for every structured mask, except that a 'top-left' causal mask limits row i to keys ≤ i
// (causalShift = 0; bottom-right: causalShift = S − L).

/** The key range [lo, hi] row position `pos` of batch `b` may see: the masks that bound a row (causal, padding,
 *  documents, prefix-LM), and the window when no global token can widen it. */
fn keyRange(pos: i32, b: u32) -> vec2i {
  var lo: i32 = 0;
  var hi: i32 = i32(P.S) - 1;
  if (P.causal == 1u) { hi = min(hi, pos - P.shift + P.causalShift); } // row i sees keys ≤ i + causalShift
  if (P.useKeyLengths == 1u) { hi = min(hi, i32(aux[b]) - 1); }
  if (P.useDocs == 1u && pos >= 0 && pos < i32(P.S)) { lo = max(lo, i32(aux[P.offDocs + u32(pos)])); hi = min(hi, i32(aux[P.offDocs + P.S + u32(pos)]) - 1); }
  if (P.prefix >= 0) { hi = min(hi, max(pos, P.prefix - 1)); }
  if (P.useGlobal == 0u) {
    if (P.windowLeft >= 0) { lo = max(lo, pos - P.windowLeft); }
    if (P.windowRight >= 0) { hi = min(hi, pos + P.windowRight); }
  }
  return vec2i(lo, hi);
}

/** The keys a block of `rows` query rows from row i0 may see, [first, last], uniform in a workgroup: from the first
 *  row's lo to the last row's hi — any key for global tokens and blocks, which may sit anywhere, and at least the first
 *  row's hi for documents, where a later row may end earlier than an earlier one. */
fn blockKeys(i0: u32, rows: u32, b: u32) -> vec2i {
  let first = keyRange(i32(i0) + P.shift, b);
  let last = keyRange(i32(i0 + rows - 1u) + P.shift, b);
  var keys = vec2i(max(first.x, 0), last.y);
  if (P.useDocs == 1u) { keys.y = max(keys.y, first.y); }
  if (P.useGlobal == 1u || P.useBlocks == 1u) { keys.x = 0; }
  return keys;
}

/** Whether row position `pos` may attend key j inside its range: the sparse pattern (window, blocks, ORed with global
 *  tokens) and the dense keep mask. */
fn allowed(pos: i32, j: i32, keepRow: u32) -> bool {
  // with global tokens alone (no window, no blocks) only global rows and columns are in the pattern, as on the CPU
  let hasPattern = P.windowLeft >= 0 || P.windowRight >= 0 || P.useBlocks == 1u;
  var pattern = hasPattern || P.useGlobal == 0u;
  let d = pos - j;
  if (P.windowLeft >= 0 && d > P.windowLeft) { pattern = false; }
  if (P.windowRight >= 0 && -d > P.windowRight) { pattern = false; }
  if (P.dilation > 1 && d % P.dilation != 0) { pattern = false; }
  if (P.useBlocks == 1u && aux[P.offBlocks + u32(pos) / P.blockSize * P.blockCols + u32(j) / P.blockSize] == 0u) { pattern = false; }
  if (P.useGlobal == 1u && (aux[P.offGlobal + u32(j)] == 1u || (pos >= 0 && pos < i32(P.S) && aux[P.offGlobal + u32(pos)] == 1u))) { pattern = true; }
  if (!pattern) { return false; }
  if (P.useKeep == 1u && aux[P.offKeep + keepRow + u32(j)] == 0u) { return false; }
  return true;
}

/** The score modifiers after scale · q·k: soft-capping, then the dense bias, then ALiBi. */
fn modScore(scaled: f32, h: u32, pos: i32, j: i32, keepRow: u32) -> f32 {
  var s = scaled;
  if (P.softcap > 0.0) { s = P.softcap * tanh(s / P.softcap); }
  if (P.useBias == 1u) { s += fl[P.offBias + keepRow + u32(j)]; }
  if (P.useAlibi == 1u) { s -= fl[h] * f32(abs(pos - j)); }
  return s;
}

/** The score of key j for row position `pos` (raw = q·k): scaled and modified, or NEG_INF where the row may not see
 *  it (outside its key range `range` or the pattern), or POISON where it is NaN or +∞ (before or after the modifiers). */
fn maskedScore(raw: f32, h: u32, pos: i32, j: i32, range: vec2i, keepRow: u32) -> f32 {
  if (j < range.x || j > range.y || !allowed(pos, j, keepRow)) { return NEG_INF; }
  if (unfinite(raw * P.scale)) { return POISON; }
  let s = modScore(raw * P.scale, h, pos, j, keepRow);
  return select(s, POISON, unfinite(s));
}
