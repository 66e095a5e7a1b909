// qkv's WebAssembly SIMD attention kernel, in AssemblyScript (compiled by `npm run build:wasm`). The same tiled
// online-softmax algorithm as src/kernels/cpu/sdpa-flash.ts, with its two hot loops in 128-bit SIMD:
//   s_j = scale · q·k_j     four lanes of q and k at a time (f32x4.mul + f32x4.add), head_dim a multiple of 4
//   acc += p_j v_j          four lanes of acc and v at a time
// Masks: none, or causal (query i sees keys 0..i + shift), with whole key tiles past the diagonal skipped. Everything
// else (windows, documents, score mods) runs in the TypeScript kernels. Layout as qkv: q [BH, L, D], k/v [BHkv, S, ·].
// Memory: the host places q, k, v, out, lse and a scratch row of BLOCK_N floats in linear memory and passes offsets.

const BLOCK_N: i32 = 64;

// s[c] = scale · q·k_c for n keys starting at kBase (byte offsets), with f32x4 lanes
@inline
function scoreTile(qPtr: usize, kBase: usize, n: i32, D: i32, scale: f32, sPtr: usize): void {
  const rowBytes = <usize>D << 2;
  for (let c = 0; c < n; c++) {
    const kPtr = kBase + <usize>c * rowBytes;
    let acc = f32x4.splat(0);
    for (let d = 0; d < D; d += 4) {
      const off = <usize>d << 2;
      acc = f32x4.add(acc, f32x4.mul(v128.load(qPtr + off), v128.load(kPtr + off)));
    }
    // horizontal sum of the four lanes
    const dot = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
    store<f32>(sPtr + (<usize>c << 2), scale * dot);
  }
}

/**
 * Flash attention forward for BH query heads. q/out rows are [BH, L, D|Dv]; head h reads kv head
 * (h / Hq) * Hkv + (h % Hq) / G of k/v [BHkv, S, ·]. causal: 1 = query i sees keys 0..i + shift, 0 = every key.
 */
export function flashForward(qPtr: usize, kPtr: usize, vPtr: usize, outPtr: usize, lsePtr: usize, sPtr: usize, accPtr: usize,
  BH: i32, Hq: i32, Hkv: i32, L: i32, S: i32, D: i32, Dv: i32, scale: f32, causal: i32, shift: i32): void {
  const G = Hq / Hkv;
  for (let bh = 0; bh < BH; bh++) {
    const b = bh / Hq;
    const h = bh % Hq;
    const kvh = b * Hkv + h / G;
    const kHead = kPtr + (<usize>kvh * <usize>S * <usize>D << 2);
    const vHead = vPtr + (<usize>kvh * <usize>S * <usize>Dv << 2);
    for (let i = 0; i < L; i++) {
      const qRow = qPtr + ((<usize>bh * <usize>L + <usize>i) * <usize>D << 2);
      const last = causal ? i + shift : S - 1; // keys 0..last are allowed
      let m: f32 = -Infinity;
      let l: f32 = 0;
      for (let d = 0; d < Dv; d += 4) v128.store(accPtr + (<usize>d << 2), f32x4.splat(0));
      // the KV loop: tiles beyond the diagonal are never visited
      for (let j0 = 0; j0 <= last && j0 < S; j0 += BLOCK_N) {
        const n = min(BLOCK_N, min(S, last + 1) - j0);
        scoreTile(qRow, kHead + (<usize>j0 * <usize>D << 2), n, D, scale, sPtr);
        // online softmax: m' = max(m, max s); α = e^{m − m'}; l = α l + Σ e^{s − m'}; acc = α acc + Σ e^{s − m'} v
        let mx = m;
        for (let c = 0; c < n; c++) mx = max(mx, load<f32>(sPtr + (<usize>c << 2)));
        const alpha = Mathf.exp(m - mx);
        l *= alpha;
        const av = f32x4.splat(alpha);
        for (let d = 0; d < Dv; d += 4) { const p = accPtr + (<usize>d << 2); v128.store(p, f32x4.mul(v128.load(p), av)); }
        for (let c = 0; c < n; c++) {
          const pc = Mathf.exp(load<f32>(sPtr + (<usize>c << 2)) - mx);
          l += pc;
          const pv = f32x4.splat(pc);
          const vRow = vHead + ((<usize>(j0 + c) * <usize>Dv) << 2);
          for (let d = 0; d < Dv; d += 4) {
            const off = <usize>d << 2;
            v128.store(accPtr + off, f32x4.add(v128.load(accPtr + off), f32x4.mul(pv, v128.load(vRow + off))));
          }
        }
        m = mx;
      }
      const outRow = outPtr + ((<usize>bh * <usize>L + <usize>i) * <usize>Dv << 2);
      const lseAt = lsePtr + ((<usize>bh * <usize>L + <usize>i) << 2);
      if (l == 0) { // no allowed key: o = 0, lse = −∞
        for (let d = 0; d < Dv; d += 4) v128.store(outRow + (<usize>d << 2), f32x4.splat(0));
        store<f32>(lseAt, -Infinity);
        continue;
      }
      const inv = f32x4.splat(1 / l);
      for (let d = 0; d < Dv; d += 4) { const off = <usize>d << 2; v128.store(outRow + off, f32x4.mul(v128.load(accPtr + off), inv)); }
      store<f32>(lseAt, m + Mathf.log(l));
    }
  }
}
