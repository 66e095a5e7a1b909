// The CPU's elementwise layer kernels (kernels/wasm/rows-wasm.ts) over arrays in a layer's arena (tensor/arena.ts) equal
// the TypeScript loops of nn/ that run elsewhere: the residual add and RoPE bit for bit (an f32 sum is the f64 sum rounded;
// RoPE's products in f64 in the loop's order), RMSNorm to a few ulps (its sum of squares in another order). Arrays
// outside the kernels' memory are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { add, applyRope, rmsNorm, ropeInvFreq, Tensor } from '../../../src/index.js';
import { ropeAngles } from '../../../src/nn/positional/rope.js';
import { rowsWasm } from '../../../src/kernels/wasm/rows-wasm.js';
import { KernelArena } from '../../../src/kernels/wasm/storage.js';
import { withArena } from '../../../src/tensor/arena.js';
import { assertClose, randn, rng } from '../../helpers.js';

test('rows-wasm: RMSNorm (offset 0 and 1) and add over arena arrays equal nn/\'s loops; other arrays are refused', () => {
  const arena = new KernelArena();
  const rand = rng(3);
  for (const [rows, C] of [[1, 576], [7, 64], [33, 256], [5, 30], [2, 3], [4, 1]]) {
    const [x, r, g] = [randn([rows, C], rand, 3), randn([rows, C], rand), randn([C], rand)];
    const want = { norm: rmsNorm(x, g, 1e-5), gemma: rmsNorm(x, g, 1e-6, 1), sum: add(x, r) }; // no arena open: the loops
    arena.reset();
    withArena(arena, () => {
      const inArena = (t: Tensor) => { const a = arena.floats(t.size); a.set(t.toFloat32()); return Tensor.from(a, t.shape); };
      const [xa, ra] = [inArena(x), inArena(r)];
      assertClose(rmsNorm(xa, g, 1e-5), want.norm, 0, 1e-6, `rmsNorm [${rows}, ${C}]`);
      assertClose(rmsNorm(xa, g, 1e-6, 1), want.gemma, 0, 1e-6, `rmsNorm offset 1 [${rows}, ${C}]`);
      assertClose(add(xa, ra), want.sum, 0, 0, `add [${rows}, ${C}]`);
      // the kernel took them (a layer's arrays), and writes where it is told
      const y = arena.floats(rows * C);
      assert.ok(rowsWasm.rmsNorm(xa.toFloat32(), g.toFloat32(), y, C, 1e-5, 0));
      assertClose(Tensor.from(y, [rows, C]), want.norm, 0, 1e-6, 'rowsWasm.rmsNorm');
      assert.ok(rowsWasm.add(xa.toFloat32(), ra.toFloat32(), y));
      assertClose(Tensor.from(y, [rows, C]), want.sum, 0, 0, 'rowsWasm.add');
      assert.equal(rowsWasm.add(x.toFloat32(), ra.toFloat32(), y), false, 'an input outside the kernels\' memory');
    });
  }
  assert.equal(rowsWasm.rmsNorm(new Float32Array(8), new Float32Array(4), new Float32Array(8), 4, 1e-5, 0), false);
  arena.release();
});

test('RMSNorm of a row of zeros and of huge values: finite, as the loop gives them', () => {
  const arena = new KernelArena();
  const x = Tensor.from(Float32Array.from({ length: 16 }, (_, i) => (i < 8 ? 0 : 3e38 * (i % 2 ? 1 : -1))), [2, 8]);
  const g = Tensor.from(new Float32Array(8).fill(0.5), [8]);
  const want = rmsNorm(x, g, 1e-6);
  const got = withArena(arena, () => {
    const a = arena.floats(16);
    a.set(x.toFloat32());
    return rmsNorm(Tensor.from(a, [2, 8]), g, 1e-6);
  });
  assertClose(got, want, 0, 1e-6, 'zeros and ±3e38 (squares past f32, not past f64)');
  assert.ok(got.toFloat32().every(Number.isFinite));
  arena.release();
});

test('rows-wasm RoPE: q or k as the projection left them ([B, T, H, D] viewed as heads), partial rotary, positions per row', () => {
  const arena = new KernelArena();
  const rand = rng(4);
  for (const { B, H, T, D, R, perBatch, style } of [
    { B: 1, H: 3, T: 5, D: 64, R: 64, perBatch: false, style: undefined },
    { B: 2, H: 2, T: 7, D: 32, R: 16, perBatch: true, style: undefined }, // partial rotary, positions per row
    { B: 1, H: 4, T: 1, D: 128, R: 128, perBatch: false, style: undefined }, // a decode step
    { B: 1, H: 2, T: 3, D: 12, R: 12, perBatch: false, style: undefined }, // half 6: not in fours, the loop
    { B: 1, H: 2, T: 4, D: 16, R: 16, perBatch: false, style: 'interleaved' as const }, // DeepSeek's pairs: the loop
  ]) {
    const freqs = ropeInvFreq({ headDim: R, ropeTheta: 10000 });
    const positions = Array.from({ length: perBatch ? B * T : T }, (_, i) => 3 + 2 * i);
    const proj = randn([B, T, H, D], rand); // as a projection leaves it
    const heads = () => proj.transpose(1, 2); // [B, H, T, D]
    const want = applyRope(heads(), { freqs, positions, style }); // no arena open: the loop
    arena.reset();
    withArena(arena, () => {
      const a = arena.floats(proj.size);
      a.set(proj.toFloat32());
      const view = Tensor.from(a, proj.shape).transpose(1, 2);
      const what = `B=${B} H=${H} T=${T} D=${D} R=${R}${perBatch ? ' per row' : ''}${style ? ` ${style}` : ''}`;
      assertClose(applyRope(view, { freqs, positions, style }), want, 0, 0, `${what}: the projection's view`);
      assertClose(applyRope(view.contiguous(), { freqs, positions, style }), want, 0, 0, `${what}: heads (not in the arena)`);
      const { cos, sin } = ropeAngles(freqs, positions); // (the kernel's pairs are rotate-half's; applyRope keeps the rest)
      const taken = rowsWasm.rope(view, arena.floats(proj.size), cos, sin, R / 2, perBatch);
      if (!style) assert.equal(taken, (R / 2) % 4 === 0, `${what}: taken`);
    });
  }
  arena.release();
});
