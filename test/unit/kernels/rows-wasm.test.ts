// The CPU's elementwise layer kernels (kernels/wasm/rows-wasm.ts) over arrays in a layer's arena (tensor/arena.ts) equal
// the TypeScript loops of nn/ that run elsewhere: the residual add bit for bit (an f32 sum is the f64 sum rounded), RMSNorm
// to a few ulps (both in f64; the sum of squares in another order). Arrays outside the kernels' memory are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { add, rmsNorm, Tensor } from '../../../src/index.js';
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
  const got = withArena(arena, () => { const a = arena.floats(16); a.set(x.toFloat32()); return rmsNorm(Tensor.from(a, [2, 8]), g, 1e-6); });
  assertClose(got, want, 0, 1e-6, 'zeros and ±3e38 (squares past f32, not past f64)');
  assert.ok(got.toFloat32().every(Number.isFinite));
  arena.release();
});
