// linear() with weights as stored — f32, f16, bf16, int8 with row scales, int4 in blocks — equals x·Wᵀ computed in
// f64 from the widened (dequantized) weight, on random shapes including K not a multiple of the SIMD width (the
// TypeScript path). Decode with int8/int4 weights (M = 1, K a multiple of 32) is defined with x rounded to 16 bits per
// block of 32 — to 8 bits for int4 in the relaxed-SIMD build (kernels/wasm/asm/gemv-q.ts); the brute force below rounds
// x by that rule for the columns it covers. variants.test.ts runs this file with each build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gatedLinear, Int4Matrix, Int8Matrix, kernelVariant, linear, setKernelThreads, Tensor, Weights } from '../../../src/index.js';
import { residentOffset } from '../../../src/kernels/wasm/runtime.js';
import { isConstant } from '../../../src/tensor/constant.js';
import { assertClose, randint, randn, rng } from '../../helpers.js';

// y = x Wᵀ in float64 from the f32 values of W
function brute(x: Tensor, w: Tensor): Float32Array {
  const [N, K] = w.shape;
  const [xa, wa] = [x.toFloat32(), w.toFloat32()];
  const M = xa.length / K;
  const y = new Float32Array(M * N);
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += xa[i * K + k] * wa[j * K + k];
    y[i * N + j] = s;
  }
  return y;
}

/**
 * The x an int8/int4 product uses, one thread: x rounded per block of 32 (dx = max|x| / Q, xq = round(x · Q / max),
 * x̂ = xq · dx, all as the kernel computes them in f32; Q = 32767, or 127 for int4 in the relaxed-SIMD build) for the
 * columns of whole groups of four when M = 1 and K is a multiple of 32; x itself elsewhere (prefill, the column tail,
 * the TypeScript kernel's shapes).
 */
function decodeInput(x: Tensor, N: number, j: number, int4 = false): Tensor {
  const [M, K] = x.shape;
  // int4 with N not a multiple of 4 goes to the TypeScript kernel, which uses x as it is
  if (M !== 1 || K % 32 !== 0 || N < 4 || j >= N - (N % 4) || (int4 && N % 4 !== 0)) return x;
  const [xa, out] = [x.toFloat32(), new Float64Array(K)];
  for (let b = 0; b < K; b += 32) {
    let amax = 0;
    for (let k = b; k < b + 32; k++) amax = Math.max(amax, Math.abs(xa[k]));
    const Q = int4 && kernelVariant() === 'relaxed-simd' ? 127 : 32767;
    const [dx, inv] = [Math.fround(amax / Q), amax > 0 ? Math.fround(Q / amax) : 0];
    for (let k = b; k < b + 32; k++) {
      const v = Math.fround(xa[k] * inv);
      const q = Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v); // round half to even, as f32x4.nearest
      out[k] = q * dx;
    }
  }
  return new Tensor('float32', Float32Array.from(out), [1, K]); // x̂ to f32: within 2^−24 of q·dx, far inside the tolerance
}

/** brute() of a quantized weight column by column, each column with the x decodeInput gives it. */
function bruteQuantized(x: Tensor, q: Int8Matrix | Int4Matrix): Float32Array {
  const [N, M] = [q.shape[0], x.shape[0]];
  const w = q.dequantize();
  const y = new Float32Array(M * N);
  for (let j = 0; j < N; j++) {
    const col = brute(decodeInput(x, N, j, q instanceof Int4Matrix), w.slice(0, j, j + 1).contiguous());
    for (let i = 0; i < M; i++) y[i * N + j] = col[i];
  }
  return y;
}

test('the WebAssembly build under test', (t) => {
  t.diagnostic(`kernels: ${kernelVariant()}`);
  if (process.env.QKV_EXPECT_VARIANT) assert.equal(kernelVariant(), process.env.QKV_EXPECT_VARIANT);
});

test('f32, f16 and bf16 weights give x·Wᵀ of the stored values (decode M = 1 and prefill M > 1)', () => {
  const rand = rng(5);
  for (let trial = 0; trial < 24; trial++) {
    const K = trial % 3 === 2 ? randint(rand, 1, 40) : 16 * randint(rand, 1, 12);
    const [M, N] = [trial % 2 === 0 ? 1 : randint(rand, 2, 9), randint(rand, 1, 70)];
    const x = randn([M, K], rand);
    for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
      const w = randn([N, K], rand, 0.5).to(dtype);
      assertClose(linear(x, w), brute(x, w), 1e-5, 1e-5, `${dtype} M=${M} K=${K} N=${N}`);
      assert.equal(w.dtype, dtype); // used as stored, not widened in place
    }
  }
});

test('f16 weights at M = 1 with an activation the fast decode path cannot scale (|x| ≥ 2^15, or NaN) give x·Wᵀ', () => {
  // found on 2026-11-30: this case fell into the int8 decode loop and returned zeros
  const rand = rng(9);
  for (const [K, N] of [[64, 8], [576, 36], [1536, 20]]) {
    const w = randn([N, K], rand, 0.05).to('float16');
    const x = randn([1, K], rand);
    const big = x.toFloat32().slice();
    big[3] = 40000;
    assertClose(linear(Tensor.from(big, [1, K]), w), brute(Tensor.from(big, [1, K]), w), 1e-5, 1e-5, `K=${K} N=${N} |x| = 4e4`);
    big[3] = NaN;
    assert.ok(linear(Tensor.from(big, [1, K]), w).toFloat32().every(Number.isNaN), 'a NaN in x makes every output NaN');
  }
});

test('f16 subnormals and signed zeros widen exactly; ±∞ in an f16 weight falls back to the exact path', () => {
  const h = new Uint16Array(8 * 16);
  for (let i = 0; i < h.length; i++) h[i] = [0x0001, 0x8001, 0x03ff, 0x0000, 0x8000, 0x3c00, 0xbc00, 0x7bff][i % 8];
  const w = new Tensor('float16', h, [8, 16]);
  const x = Tensor.from(Float32Array.from({ length: 16 }, (_, i) => (i % 3) - 1), [1, 16]);
  assertClose(linear(x, w), brute(x, w), 0, 0, 'subnormals');
  const inf = new Tensor('float16', Uint16Array.from(h, (v, i) => (i === 5 ? 0x7c00 : v)), [8, 16]);
  assert.deepEqual([...linear(Tensor.from(new Float32Array(16).fill(1), [1, 16]), inf).toFloat32()].slice(0, 1), [Infinity]);
});

test('int8 with per-row scales: x·(scale·q)ᵀ, and quantization error within half a step per weight', () => {
  const rand = rng(6);
  setKernelThreads(1);
  for (const [M, K, N] of [[1, 64, 33], [1, 576, 36], [5, 48, 20], [3, 20, 7], [1, 48, 8]]) {
    const w = randn([N, K], rand, 0.3);
    const q = Int8Matrix.quantize(w);
    const x = randn([M, K], rand);
    assertClose(linear(x, q), bruteQuantized(x, q), 1e-5, 1e-5, `int8 M=${M} K=${K}`);
    const [wf, dq] = [w.toFloat32(), q.dequantize().toFloat32()];
    for (let j = 0; j < N; j++) for (let k = 0; k < K; k++) assert.ok(Math.abs(wf[j * K + k] - dq[j * K + k]) <= q.scales[j] / 2 + 1e-7);
  }
});

test('int4 in blocks of 32: the largest weight of each block exact, the rest within half a step (or at the clamp)', () => {
  const rand = rng(10);
  const w = randn([6, 96], rand, 0.4);
  const q = Int4Matrix.quantize(w);
  const [wf, dq] = [w.toFloat32(), q.dequantize().toFloat32()];
  for (let g = 0; g < q.scales.length; g++) {
    const s = q.scales[g];
    let m = 0;
    for (let k = 0; k < 32; k++) if (Math.abs(wf[g * 32 + k]) > Math.abs(m)) m = wf[g * 32 + k];
    assert.equal(s, Math.fround(m / -8), `block ${g}: scale = m / −8`);
    for (let k = 0; k < 32; k++) {
      const i = g * 32 + k;
      const reach = Math.min(Math.max(wf[i], Math.min(-8 * s, 7 * s)), Math.max(-8 * s, 7 * s)); // levels (q − 8)·s, q ∈ 0…15
      assert.ok(Math.abs(dq[i] - reach) <= Math.abs(s) / 2 + 1e-7, `block ${g} weight ${k}: ${dq[i]} for ${wf[i]}`);
    }
  }
  // byte i of a block: weight i in the low nibble, weight i + 16 in the high one
  const one = new Float32Array(32);
  one[3] = -1;
  one[19] = 0.5;
  const b = Int4Matrix.quantize(Tensor.from(one, [1, 32]));
  assert.deepEqual([b.q[3] & 15, b.q[3] >> 4, b.scales[0]], [0, 12, 0.125]); // −1 = (0 − 8)·⅛, 0.5 = (12 − 8)·⅛
  assert.throws(() => Int4Matrix.quantize(Tensor.from(new Float32Array(48), [1, 48])), /in a multiple of 32, got \[1, 48\]/);
  assert.throws(() => Int4Matrix.quantize(Tensor.from(Float32Array.from({ length: 32 }, (_, i) => (i === 7 ? NaN : 1)), [1, 32])), /row 0 holds a non-finite/);
});

test('int4 products: decode (integer dot products) and prefill, linear and gated, N a multiple of 4 or not', () => {
  const rand = rng(11);
  setKernelThreads(1);
  for (const [M, K, N] of [[1, 32, 4], [1, 576, 44], [1, 96, 7], [4, 64, 12], [3, 128, 9], [1, 1536, 20], [1, 128, 8], [1, 224, 12]]) {
    const [g, u] = [randn([N, K], rand, 0.3), randn([N, K], rand, 0.3)];
    const [gq, uq] = [Int4Matrix.quantize(g), Int4Matrix.quantize(u)];
    const x = randn([M, K], rand, 2);
    assertClose(linear(x, gq), bruteQuantized(x, gq), 1e-5, 1e-5, `int4 M=${M} K=${K} N=${N}`);
    const up = bruteQuantized(x, uq);
    assertClose(gatedLinear(x, gq, uq, 'silu'), bruteQuantized(x, gq).map((v, i) => ACTS.silu(v) * up[i]), 1e-5, 1e-5, `gated int4 M=${M} K=${K}`);
  }
});

test('prefill from M = 32 (the outer-product tile: A in threes of rows, B in panels of 12) in every format, linear and gated', () => {
  const rand = rng(13);
  setKernelThreads(1);
  // M not a multiple of 3, N whole panels of 12 or not (the 1–11 columns after them take the 2×4 tile), N not a multiple of 4
  for (const [M, K, N] of [[32, 64, 24], [33, 96, 36], [34, 128, 44], [47, 64, 13], [64, 256, 31], [40, 32, 12]]) {
    const x = randn([M, K], rand);
    const [w, u] = [randn([N, K], rand, 0.3), randn([N, K], rand, 0.3)];
    for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
      const [wd, ud] = [w.to(dtype), u.to(dtype)];
      assertClose(linear(x, wd), brute(x, wd), 1e-5, 1e-5, `${dtype} M=${M} K=${K} N=${N}`);
      const up = brute(x, ud);
      assertClose(gatedLinear(x, wd, ud, 'silu'), brute(x, wd).map((v, i) => ACTS.silu(v) * up[i]), 1e-5, 1e-5, `gated ${dtype} M=${M} N=${N}`);
    }
    if (K % 16 === 0) {
      const q = Int8Matrix.quantize(w);
      assertClose(linear(x, q), bruteQuantized(x, q), 1e-5, 1e-5, `int8 M=${M} K=${K} N=${N}`);
    }
    if (K % 32 === 0 && N % 4 === 0) {
      const [gq, uq] = [Int4Matrix.quantize(w), Int4Matrix.quantize(u)];
      assertClose(linear(x, gq), bruteQuantized(x, gq), 1e-5, 1e-5, `int4 M=${M} K=${K} N=${N}`);
      const up = bruteQuantized(x, uq);
      assertClose(gatedLinear(x, gq, uq, 'silu'), bruteQuantized(x, gq).map((v, i) => ACTS.silu(v) * up[i]), 1e-5, 1e-5, `gated int4 M=${M}`);
    }
  }
});

test('the outer-product tile (M ≥ 32) rounds no worse than the 2×4 tile (M < 32) on the same rows: K summed in blocks', () => {
  // one running sum over all of K (biased inputs, where rounding errors add up) was 3–4× further from the exact sums
  setKernelThreads(1);
  for (const K of [1536, 4096]) {
    const [M, N] = [64, 48];
    const x = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i * 1.3) + 0.3);
    const w = Tensor.from(Float32Array.from({ length: N * K }, (_, i) => Math.cos(i * 0.7) * 0.05 + 0.01), [N, K]).to('float16');
    const wf = w.toFloat32();
    const exact = Float64Array.from({ length: M * N }, (_, e) => { // in f64, not rounded to f32
      let s = 0;
      for (let k = 0; k < K; k++) s += x[Math.floor(e / N) * K + k] * wf[(e % N) * K + k];
      return s;
    });
    const maxErr = (y: Float32Array) => y.reduce((m, v, i) => Math.max(m, Math.abs(v - exact[i])), 0);
    const outer = linear(Tensor.from(x, [M, K]), w).toFloat32();
    const tile = new Float32Array(M * N); // the same rows 16 at a time
    for (let i = 0; i < M; i += 16) tile.set(linear(Tensor.from(x.subarray(i * K, (i + 16) * K), [16, K]), w).toFloat32(), i * N);
    assert.ok(maxErr(outer) <= maxErr(tile), `K=${K}: outer tile ${maxErr(outer)} against the 2×4 tile's ${maxErr(tile)}`);
  }
});

test('int8 and int4 decode with x the integer path cannot round (NaN, ±∞, blocks of tiny values) take the exact path', () => {
  const rand = rng(12);
  for (const Q of [Int8Matrix, Int4Matrix]) {
    const w = Q.quantize(randn([8, 64], rand, 0.3));
    const x = randn([1, 64], rand).toFloat32();
    x.fill(1e-35, 0, 32); // a block whose largest |x| is below 2^−100
    assertClose(linear(Tensor.from(x, [1, 64]), w), brute(Tensor.from(x, [1, 64]), w.dequantize()), 1e-5, 1e-5, `${Q.name} tiny block`);
    x[40] = Infinity;
    assert.ok(linear(Tensor.from(x, [1, 64]), w).toFloat32().every((v) => !Number.isFinite(v)), `${Q.name}: ∞ in x`);
    x[40] = NaN;
    assert.ok(linear(Tensor.from(x, [1, 64]), w).toFloat32().every(Number.isNaN), `${Q.name}: NaN in x`);
  }
});

test('embedding() over an int8 or int4 table (a tied output projection\'s copy) gives the dequantized rows', async () => {
  const { embedding } = await import('../../../src/nn/positional/learned.js');
  const table = randn([10, 64], rng(13));
  for (const q of [Int8Matrix.quantize(table), Int4Matrix.quantize(table)]) {
    const rows = q.dequantize().toFloat32();
    const got = embedding(q, [7, 0, 7]).toFloat32();
    for (const [n, id] of [7, 0, 7].entries()) assert.deepEqual(got.subarray(n * 64, (n + 1) * 64), rows.subarray(id * 64, (id + 1) * 64));
    assert.throws(() => embedding(q, [10]), /embedding: index 10 out of range \[0, 10\)/);
  }
});

test('Weights: format stored keeps 16-bit matrices, float32 widens them, int8 quantizes those with in_features % 16 = 0', () => {
  const rand = rng(7);
  const m = () => new Map([['a', randn([4, 32], rand).to('bfloat16')], ['b', randn([4, 6], rand).to('float16')], ['c', randn([4, 48], rand)]]);
  const stored = new Weights(m());
  assert.equal((stored.matrix('a', [4, 32]) as Tensor).dtype, 'bfloat16');
  assert.equal((new Weights(m(), 'x', { format: 'float32' }).matrix('a', [4, 32]) as Tensor).dtype, 'float32');
  const int8 = new Weights(m(), 'x', { format: 'int8' });
  assert.ok(int8.matrix('a', [4, 32]) instanceof Int8Matrix);
  assert.equal((int8.matrix('b', [4, 6]) as Tensor).dtype, 'float16');
  const int4 = new Weights(m(), 'x', { format: 'int4' }); // int4 where in_features % 32 = 0, else int8 where % 16 = 0
  assert.ok(int4.matrix('a', [4, 32]) instanceof Int4Matrix);
  assert.ok(int4.matrix('c', [4, 48]) instanceof Int8Matrix);
  assert.equal((int4.matrix('b', [4, 6]) as Tensor).dtype, 'float16');
  assert.equal(int4.summary().parameters, 4 * 32 + 4 * 6 + 4 * 48); // quantized matrices leave the map, still counted
  assert.throws(() => new Weights(m(), 'x', { format: 'int2' as 'int8' }), /format must be one of stored, float32, int8, int4, got "int2"/);
  assert.throws(() => stored.matrix('a', [32, 4]), /tensor 'a' has shape \[4, 32\], but the config implies \[32, 4\]/);
});

// act(x·Gᵀ) ⊙ (x·Uᵀ) in float64 with exact activations
const ACTS: Record<string, (v: number) => number> = {
  silu: (v) => v / (1 + Math.exp(-v)),
  gelu_pytorch_tanh: (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
  relu: (v) => Math.max(v, 0),
};
function bruteGated(x: Tensor, g: Tensor, u: Tensor, act: string): Float32Array {
  const [gx, ux] = [brute(x, g), brute(x, u)];
  return gx.map((v, i) => ACTS[act](v) * ux[i]);
}

// What rounding may add to an element of act(x·Gᵀ) ⊙ (x·Uᵀ) computed in f32: a sum s = Σ x_k w_k is off by about a
// rounding of its terms' magnitude, δs ≈ c · 2⁻²⁴ · Σ |x_k w_k| (c = 2: the most these trials see is 1.05; the worst
// case is K · 2⁻²⁴), and the product carries |act'(g)| · |u| · δg + |act(g)| · δu. A sum with cancellation
// (Σ|x·w| ≫ |s|) makes that more than a fixed relative tolerance of the result: relu, K 80, g = 0.027 of terms summing
// to 28 in magnitude, u = 9.1 — fused multiply-adds (relaxed SIMD) put the element 1.28e-5 off, the plain build 1.07e-5,
// against 2⁻²⁴ · (|u| Σ|x·g|) = 1.5e-5
function gatedRounding(x: Tensor, g: Tensor, u: Tensor, act: string): Float64Array {
  const [xa, ga, ua] = [x.toFloat32(), g.toFloat32(), u.toFloat32()];
  const [N, K] = g.shape;
  const M = xa.length / K;
  const f = ACTS[act];
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
    let [sg, su, mg, mu] = [0, 0, 0, 0];
    for (let k = 0; k < K; k++) {
      const [a, b] = [xa[i * K + k] * ga[j * K + k], xa[i * K + k] * ua[j * K + k]];
      [sg, su, mg, mu] = [sg + a, su + b, mg + Math.abs(a), mu + Math.abs(b)];
    }
    const h = 1e-6 * Math.max(1, Math.abs(sg)); // |act'| near g, the steeper side (relu's kink)
    const slope = Math.max(Math.abs(f(sg + h) - f(sg)), Math.abs(f(sg) - f(sg - h))) / h;
    out[i * N + j] = 2 * 2 ** -24 * (slope * Math.abs(su) * mg + Math.abs(f(sg)) * mu);
  }
  return out;
}

test('gatedLinear: act(x·Gᵀ) ⊙ (x·Uᵀ) for SiLU and GELU-tanh (one SIMD job) and other activations, every weight format', () => {
  const rand = rng(8);
  setKernelThreads(1);
  for (let trial = 0; trial < 18; trial++) {
    const K = trial % 6 === 5 ? randint(rand, 1, 40) : 16 * randint(rand, 1, 8);
    const [M, N] = [trial % 2 === 0 ? 1 : randint(rand, 2, 7), randint(rand, 1, 45)];
    const x = randn([M, K], rand, 2); // |x·w| up to ~10: both tails of the activations
    const [g, u] = [randn([N, K], rand, 0.6), randn([N, K], rand, 0.6)];
    for (const act of Object.keys(ACTS)) {
      for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
        const [gd, ud] = [g.to(dtype), u.to(dtype)];
        const [got, want, rounding] = [gatedLinear(x, gd, ud, act).toFloat32(), bruteGated(x, gd, ud, act), gatedRounding(x, gd, ud, act)];
        want.forEach((e, i) => {
          const ok = Math.abs(got[i] - e) <= 1e-5 + 1e-5 * Math.abs(e) + rounding[i];
          assert.ok(ok, `${act} ${dtype} M=${M} K=${K} N=${N}: element ${i}: got ${got[i]}, expected ${e} (rounding ${rounding[i]})`);
        });
      }
      if (K % 16 === 0) {
        const [gq, uq] = [Int8Matrix.quantize(g), Int8Matrix.quantize(u)];
        const up = bruteQuantized(x, uq);
        const want = bruteQuantized(x, gq).map((g, i) => ACTS[act](g) * up[i]);
        assertClose(gatedLinear(x, gq, uq, act), want, 1e-5, 1e-5, `${act} int8 M=${M} K=${K} N=${N}`);
      }
    }
  }
});

test('gatedLinear: large and non-finite gate values, and bad arguments', () => {
  const x = Tensor.from([1, 0, 0, 0, 0, 0, 0, 0], [1, 8]);
  const g = Tensor.from([100, 0, 0, 0, 0, 0, 0, 0, -100, 0, 0, 0, 0, 0, 0, 0, 2 ** 100, 0, 0, 0, 0, 0, 0, 0, -(2 ** 100), 0, 0, 0, 0, 0, 0, 0], [4, 8]);
  const u = Tensor.from(new Float32Array(32).fill(1), [4, 8]);
  for (const act of ['silu', 'gelu_pytorch_tanh']) {
    const h = gatedLinear(x, g, u, act).toFloat32();
    assert.deepEqual([h[0], h[2]], [100, 2 ** 100], act); // act(v) = v far right
    assert.ok(Math.abs(h[1]) < 1e-30 && Math.abs(h[3]) < 1e-30, `${act}: ${h[1]}, ${h[3]}`); // 0 far left, no NaN
  }
  assert.throws(() => gatedLinear(x, g, u, 'tanhh'), /activation: unknown 'tanhh'/);
  assert.throws(() => gatedLinear(x, g, u.reshape([8, 4]), 'silu'), /gatedLinear: gate and up must both be \[out_features, in_features\], got \[4, 8\] and \[8, 4\]/);
  assert.throws(() => gatedLinear(x.reshape([2, 4]), g, u, 'silu'), /gatedLinear: input's last dim must be in_features=8, got x \[2, 4\]/);
});

test('16-bit and int8 weights at any byte offset (as in a safetensors file) give the same products, ±∞ found there too', () => {
  const rand = rng(9);
  for (const [M, K, N] of [[1, 48, 9], [3, 32, 13]]) {
    const x = randn([M, K], rand);
    const w = randn([N, K], rand, 0.5);
    for (const dtype of ['float16', 'bfloat16'] as const) {
      const bits = w.to(dtype).data as Uint16Array;
      const shifted = new Uint16Array(new ArrayBuffer(2 * bits.length + 2), 2, bits.length); // 2 bytes past a word
      shifted.set(bits);
      const odd = new Tensor(dtype, shifted, [N, K]);
      assertClose(linear(x, odd), brute(x, odd), 1e-5, 1e-5, `${dtype} at byte offset 2, M=${M} K=${K} N=${N}`);
    }
    const q = Int8Matrix.quantize(w);
    const moved = new Int8Array(new ArrayBuffer(q.q.length + 1), 1, q.q.length);
    moved.set(q.q);
    const odd = new Int8Matrix(moved, q.scales, [N, K]);
    assertClose(linear(x, odd), brute(x, q.dequantize()), 1e-5, 1e-5, `int8 at byte offset 1, M=${M} K=${K}`);
  }
  const h = new Uint16Array(new ArrayBuffer(2 * 129), 2, 128).fill(0x3c00); // 1.0 at an unaligned offset
  h[127] = 0x7c00; // +∞ in the last (odd) element
  assert.deepEqual([...linear(Tensor.from(new Float32Array(16).fill(1), [1, 16]), new Tensor('float16', h, [8, 16])).toFloat32()].slice(6), [16, Infinity]);
});

// a copy of w the kernels have never seen (no kept copy of it can exist)
const fresh = (w: Tensor) => new Tensor(w.dtype, w.contiguous().data.slice(), w.shape);

test('a weight changed in place between calls gives the new answer: the kernels keep copies of constant arrays only', () => {
  const rand = rng(41);
  for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
    for (const M of [1, 5, 40]) { // decode, the 2×4 tile and the outer-product tile
      const x = randn([M, 64], rand);
      const w = randn([48, 64], rand, 0.5).to(dtype);
      for (let n = 0; n < 3; n++) linear(x, w); // the old rule kept an f32 weight seen twice, f16 and bf16 at once
      (w.data as Float32Array | Uint16Array).set(randn([48, 64], rand, 0.5).to(dtype).data as Float32Array | Uint16Array);
      assert.deepEqual(linear(x, w).toFloat32(), linear(x, fresh(w)).toFloat32(), `${dtype} M=${M}`);
      assertClose(linear(x, w), brute(x, w), 1e-5, 1e-5, `${dtype} M=${M} against the brute force`);
    }
  }
  // a strided weight (a transposed view): its dense copy is made again on each call
  const base = randn([64, 48], rand), x = randn([3, 64], rand);
  const wt = base.transpose(0, 1);
  linear(x, wt); linear(x, wt);
  (base.data as Float32Array)[7] += 1;
  assertClose(linear(x, wt), brute(x, wt), 1e-5, 1e-5, 'strided');
  // the gated product, and an int8 matrix built by hand whose scales and values change
  const [g, u] = [randn([32, 64], rand), randn([32, 64], rand)];
  gatedLinear(x, g, u, 'silu'); gatedLinear(x, g, u, 'silu');
  (u.data as Float32Array).fill(0.25);
  assert.deepEqual(gatedLinear(x, g, u, 'silu').toFloat32(), gatedLinear(x, fresh(g), fresh(u), 'silu').toFloat32());
  const q = Int8Matrix.quantize(randn([16, 64], rand));
  const hand = new Int8Matrix(q.q.slice(), q.scales.slice(), [16, 64]);
  linear(x, hand); linear(x, hand);
  hand.scales[3] *= 2;
  hand.q[5] = -hand.q[5];
  assert.deepEqual(linear(x, hand).toFloat32(), linear(x, new Int8Matrix(hand.q.slice(), hand.scales.slice(), [16, 64])).toFloat32());
});

test('a model\'s weights are constant: Weights marks what it hands out, and the kernel keeps them resident', () => {
  const rand = rng(42);
  const w = new Weights(new Map([['a', randn([8, 32], rand)], ['b', randn([8, 32], rand).to('bfloat16')]]));
  const x = randn([2, 32], rand);
  for (const name of ['a', 'b']) {
    const m = w.matrix(name, [8, 32]) as Tensor;
    assert.ok(isConstant(m.data), name);
    linear(x, m);
    assert.notEqual(residentOffset(m.data), null, `${name}: kept in the kernels' memory after one call`);
  }
  const own = randn([8, 32], rand);
  for (let n = 0; n < 3; n++) linear(x, own);
  assert.equal(residentOffset(own.data), null, 'a tensor built in memory is copied in for each call, never kept');
  assert.ok(isConstant(Int8Matrix.quantize(own).q) && !isConstant(new Int8Matrix(new Int8Array(8 * 32), new Float32Array(8), [8, 32]).q));
});
