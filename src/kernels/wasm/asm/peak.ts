// The WebAssembly SIMD128 ceiling of this machine for `npm run bench:cpu`: twelve independent f32x4 mul+add chains
// (no FMA in SIMD128; a mul then an add is ~6 cycles of latency, so twelve chains keep both the multiply and the add
// units busy), bound by arithmetic throughput, not latency or memory.
export const CHAINS: i32 = 12;

export function mulAddLoop(iterations: i32): f32 {
  let a0 = f32x4.splat(1), a1 = f32x4.splat(1), a2 = f32x4.splat(1), a3 = f32x4.splat(1);
  let a4 = f32x4.splat(1), a5 = f32x4.splat(1), a6 = f32x4.splat(1), a7 = f32x4.splat(1);
  let a8 = f32x4.splat(1), a9 = f32x4.splat(1), a10 = f32x4.splat(1), a11 = f32x4.splat(1);
  const m = f32x4.splat(0.999999), c = f32x4.splat(0.000001);
  for (let i = 0; i < iterations; i++) {
    a0 = f32x4.add(f32x4.mul(a0, m), c); a1 = f32x4.add(f32x4.mul(a1, m), c);
    a2 = f32x4.add(f32x4.mul(a2, m), c); a3 = f32x4.add(f32x4.mul(a3, m), c);
    a4 = f32x4.add(f32x4.mul(a4, m), c); a5 = f32x4.add(f32x4.mul(a5, m), c);
    a6 = f32x4.add(f32x4.mul(a6, m), c); a7 = f32x4.add(f32x4.mul(a7, m), c);
    a8 = f32x4.add(f32x4.mul(a8, m), c); a9 = f32x4.add(f32x4.mul(a9, m), c);
    a10 = f32x4.add(f32x4.mul(a10, m), c); a11 = f32x4.add(f32x4.mul(a11, m), c);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)));
  const t = f32x4.add(f32x4.add(a8, a9), f32x4.add(a10, a11));
  return f32x4.extract_lane(f32x4.add(s, t), 0) + f32x4.extract_lane(s, 3);
}
