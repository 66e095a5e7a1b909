// The ROWS jobs of asm/kernels.ts: a decoder layer's elementwise work, over arrays in the kernels' memory (a layer's arena,
// tensor/arena.ts), so that the host copies nothing in or out. Rows (or elements) are cut into units of about UNIT
// floats, which the threads claim in turn (claim(), common.ts): the caller can finish a job alone while a worker wakes
// (gate.ts), and each element comes out the same whichever thread takes it.
import { claim, ptr, word } from './common';

const UNIT: i32 = 2048;
// rows of C floats a unit holds (at least one)
@inline function rowsPerUnit(C: i32): i32 { return max(1, UNIT / max(1, C)); }

// RMSNORM (RMSNORM_JOB in jobs.ts): [kind, x, g, y, rows, C, eps, offset] — for each row x_r of C floats
//   y_r = x_r / √(mean(x_r²) + ε) · (offset + g)           (Zhang & Sennrich 2019; offset 1: Gemma's 1 + γ)
// in f64, as the TypeScript loop it stands in for (nn/norm.ts): the products of one row in the same order, its sum of
// squares in four partial sums instead of one.
export function rmsNorm(job: usize, t: i32, T: i32): void {
  const x = ptr(job, 1), g = ptr(job, 2), y = ptr(job, 3);
  const rows = word(job, 4), C = word(job, 5);
  const eps = <f64>reinterpret<f32>(word(job, 6)), offset = <f64>reinterpret<f32>(word(job, 7));
  const off = f64x2.splat(offset);
  const per = rowsPerUnit(C), units = (rows + per - 1) / per;
  for (let u = claim(-1, T); u < units; u = claim(u, T)) for (let r = u * per; r < min(rows, (u + 1) * per); r++) {
    const xr = x + (<usize>r * <usize>C << 2), yr = y + (<usize>r * <usize>C << 2);
    let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
    let c = 0;
    for (; c + 4 <= C; c += 4) {
      const v = v128.load(xr + (<usize>c << 2));
      const lo = f64x2.promote_low_f32x4(v), hi = f64x2.promote_low_f32x4(high(v));
      s0 = f64x2.add(s0, f64x2.mul(lo, lo));
      s1 = f64x2.add(s1, f64x2.mul(hi, hi));
    }
    let ms = (f64x2.extract_lane(s0, 0) + f64x2.extract_lane(s0, 1)) + (f64x2.extract_lane(s1, 0) + f64x2.extract_lane(s1, 1));
    for (let k = c; k < C; k++) { const v = <f64>load<f32>(xr + (<usize>k << 2)); ms += v * v; }
    const inv = 1 / Math.sqrt(ms / <f64>C + eps);
    const iv = f64x2.splat(inv);
    for (c = 0; c + 4 <= C; c += 4) {
      const v = v128.load(xr + (<usize>c << 2)), w = v128.load(g + (<usize>c << 2));
      const lo = f64x2.mul(f64x2.mul(f64x2.promote_low_f32x4(v), iv), f64x2.add(off, f64x2.promote_low_f32x4(w)));
      const hi = f64x2.mul(f64x2.mul(f64x2.promote_low_f32x4(high(v)), iv), f64x2.add(off, f64x2.promote_low_f32x4(high(w))));
      v128.store(yr + (<usize>c << 2), demote4(lo, hi));
    }
    for (; c < C; c++) {
      const v = <f64>load<f32>(xr + (<usize>c << 2)), w = <f64>load<f32>(g + (<usize>c << 2));
      store<f32>(yr + (<usize>c << 2), <f32>(v * inv * (offset + w)));
    }
  }
}

// the upper two floats of v in the lower lanes
@inline function high(v: v128): v128 { return v128.shuffle<f32>(v, v, 2, 3, 2, 3); }
// two f64x2 (lanes 0–1, 2–3) rounded to one f32x4
@inline function demote4(lo: v128, hi: v128): v128 {
  return v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}

// ADD (ADD_JOB in jobs.ts): [kind, a, b, y, n] — y = a + b over n floats (a residual connection), in units of UNIT floats
// (whole cache lines); an f32 sum is the f64 sum rounded to f32, so this equals the TypeScript loop bit for bit.
export function add(job: usize, t: i32, T: i32): void {
  const a = ptr(job, 1), b = ptr(job, 2), y = ptr(job, 3), n = word(job, 4);
  for (let u = claim(-1, T); u < (n + UNIT - 1) / UNIT; u = claim(u, T)) {
    const end = min(n, (u + 1) * UNIT);
    let i = u * UNIT;
    for (; i + 4 <= end; i += 4) {
      const at = <usize>i << 2;
      v128.store(y + at, f32x4.add(v128.load(a + at), v128.load(b + at)));
    }
    for (; i < end; i++) store<f32>(y + (<usize>i << 2), load<f32>(a + (<usize>i << 2)) + load<f32>(b + (<usize>i << 2)));
  }
}

// ROPE (ROPE_JOB in jobs.ts): [kind, x, y, cos, sin, B, H, L, D, half, sB, sH, sT, perBatch] — RoPE (Su et al. 2021) on
// rows x[b, h, t] at strides sB, sH, sT floats (a projection's [B, T, H, D] as it lies, or [B, H, T, D]) into y
// [B, H, L, D]; pairs (k, k + half) for k < half, the dims from 2·half on copied:
//   (a, b)' = (a cos θ − b sin θ, b cos θ + a sin θ)      cos, sin: f64 [L (or B·L when perBatch), half]
// in f64 and in the order of the TypeScript loop it stands in for (nn/positional/rope.ts): the same bits. half and the
// dims past 2·half come in fours (the host checks).
export function rope(job: usize, t: i32, T: i32): void {
  const x = ptr(job, 1), y = ptr(job, 2), cos = ptr(job, 3), sin = ptr(job, 4);
  const B = word(job, 5), H = word(job, 6), L = word(job, 7), D = word(job, 8), half = word(job, 9);
  const sB = word(job, 10), sH = word(job, 11), sT = word(job, 12), perBatch = word(job, 13);
  const rows = B * H * L, per = rowsPerUnit(D), units = (rows + per - 1) / per;
  for (let u = claim(-1, T); u < units; u = claim(u, T)) for (let r = u * per; r < min(rows, (u + 1) * per); r++) {
    const b = r / (H * L), h = (r / L) % H, i = r % L;
    const src = x + (<usize>(b * sB + h * sH + i * sT) << 2), dst = y + (<usize>r * <usize>D << 2);
    const at = (perBatch ? <usize>(b * L + i) : <usize>i) * <usize>half << 3; // this position's row of the tables
    for (let k = 0; k < half; k += 4) {
      const va = v128.load(src + (<usize>k << 2)), vb = v128.load(src + (<usize>(k + half) << 2));
      const c0 = v128.load(cos + at + (<usize>k << 3)), c1 = v128.load(cos + at + (<usize>k << 3), 16);
      const s0 = v128.load(sin + at + (<usize>k << 3)), s1 = v128.load(sin + at + (<usize>k << 3), 16);
      const a0 = f64x2.promote_low_f32x4(va), a1 = f64x2.promote_low_f32x4(high(va));
      const b0 = f64x2.promote_low_f32x4(vb), b1 = f64x2.promote_low_f32x4(high(vb));
      const ya0 = f64x2.sub(f64x2.mul(a0, c0), f64x2.mul(b0, s0)), ya1 = f64x2.sub(f64x2.mul(a1, c1), f64x2.mul(b1, s1));
      const yb0 = f64x2.add(f64x2.mul(b0, c0), f64x2.mul(a0, s0)), yb1 = f64x2.add(f64x2.mul(b1, c1), f64x2.mul(a1, s1));
      v128.store(dst + (<usize>k << 2), demote4(ya0, ya1));
      v128.store(dst + (<usize>(k + half) << 2), demote4(yb0, yb1));
    }
    for (let d = 2 * half; d < D; d += 4) v128.store(dst + (<usize>d << 2), v128.load(src + (<usize>d << 2)));
  }
}
