// The ROWS jobs of asm/kernels.ts: a decoder layer's elementwise work, over arrays in the kernels' memory (a layer's arena,
// tensor/arena.ts), so that the host copies nothing in or out. Rows (or elements) are split among the threads.
import { ptr, word } from './common';

// RMSNORM (RMSNORM_JOB in jobs.ts): [kind, x, g, y, rows, C, eps, offset] — for each row x_r of C floats
//   y_r = x_r / √(mean(x_r²) + ε) · (offset + g)           (Zhang & Sennrich 2019; offset 1: Gemma's 1 + γ)
// in f64, as the TypeScript loop it stands in for (nn/norm.ts): the products of one row in the same order, its sum of
// squares in four partial sums instead of one.
export function rmsNorm(job: usize, t: i32, T: i32): void {
  const x = ptr(job, 1), g = ptr(job, 2), y = ptr(job, 3);
  const rows = word(job, 4), C = word(job, 5);
  const eps = <f64>reinterpret<f32>(word(job, 6)), offset = f64x2.splat(<f64>reinterpret<f32>(word(job, 7)));
  const per = (rows + T - 1) / T;
  for (let r = t * per; r < min(rows, (t + 1) * per); r++) {
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
      const lo = f64x2.mul(f64x2.mul(f64x2.promote_low_f32x4(v), iv), f64x2.add(offset, f64x2.promote_low_f32x4(w)));
      const hi = f64x2.mul(f64x2.mul(f64x2.promote_low_f32x4(high(v)), iv), f64x2.add(offset, f64x2.promote_low_f32x4(high(w))));
      v128.store(yr + (<usize>c << 2), v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5));
    }
    for (; c < C; c++) {
      const v = <f64>load<f32>(xr + (<usize>c << 2)), w = <f64>load<f32>(g + (<usize>c << 2));
      store<f32>(yr + (<usize>c << 2), <f32>(v * inv * (f64x2.extract_lane(offset, 0) + w)));
    }
  }
}

// the upper two floats of v in the lower lanes
@inline function high(v: v128): v128 { return v128.shuffle<f32>(v, v, 2, 3, 2, 3); }

// ADD (ADD_JOB in jobs.ts): [kind, a, b, y, n] — y = a + b over n floats (a residual connection), in runs of 16 floats (a
// cache line) per thread; an f32 sum is the f64 sum rounded to f32, so this equals the TypeScript loop bit for bit.
export function add(job: usize, t: i32, T: i32): void {
  const a = ptr(job, 1), b = ptr(job, 2), y = ptr(job, 3), n = word(job, 4);
  const per = ((n + 15) / 16 + T - 1) / T * 16;
  const end = min(n, (t + 1) * per);
  let i = t * per;
  for (; i + 4 <= end; i += 4) {
    const at = <usize>i << 2;
    v128.store(y + at, f32x4.add(v128.load(a + at), v128.load(b + at)));
  }
  for (; i < end; i++) store<f32>(y + (<usize>i << 2), load<f32>(a + (<usize>i << 2)) + load<f32>(b + (<usize>i << 2)));
}
