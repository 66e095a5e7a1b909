// Weights that do not fit WebAssembly's memory (a 7B checkpoint in bf16 is 13.5 GB; wasm32 addresses 4 GiB) are
// copied into it for each call instead of failing or staying resident: the same numbers, nothing kept. Checked with
// the resident limit lowered, so no test has to allocate gigabytes. The TypeScript kernel (no SIMD) widens 16-bit
// weights a block of rows at a time, with the same sums.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matmulFor } from '../../../src/attention/dispatch.js';
import { linear, Tensor } from '../../../src/index.js';
import { matrixData } from '../../../src/nn/linear.js';
import { matmulTs, matmulTransB } from '../../../src/kernels/cpu/matmul.js';
import { kernelRuntime, setResidentLimit } from '../../../src/kernels/wasm/runtime.js';
import { assertClose, randn, rng } from '../../helpers.js';

test('a weight past the resident limit is copied in for each call: same numbers, nothing stays resident', () => {
  const rand = rng(3);
  const x = randn([3, 64], rand);
  const fits = randn([32, 64], rand).to('bfloat16');
  const problem = (w: Tensor) => ({ a: x.toFloat32(), b: matrixData(w), M: 3, K: 64, N: 32 });
  const want = linear(x, fits.to('float32')); // f32 reference
  assert.equal(matmulFor(problem(fits)).name, 'matmul-wasm');
  assertClose(linear(x, fits), want, 1e-5, 1e-4, 'resident');
  const r = kernelRuntime()!;
  const previous = setResidentLimit(0); // nothing new may become resident …
  try {
    const top = r.top;
    const big = randn([32, 64], rand).to('bfloat16');
    assert.equal(matmulFor(problem(big)).name, 'matmul-wasm', 'a new weight still runs on WebAssembly …');
    assertClose(linear(x, big), linear(x, big.to('float32')), 1e-5, 1e-4, 'not resident');
    assert.equal(r.top, top, '… copied in for the call, not kept');
    assertClose(linear(x, fits), want, 1e-5, 1e-4, 'resident ones stay resident');
  } finally {
    setResidentLimit(previous);
  }
});

test('the TypeScript kernel widens 16-bit and int8 weights block by block, with the same sums as a whole f32 copy', () => {
  const rand = rng(4);
  for (const [M, K, N] of [[1, 8, 5], [3, 1000, 203], [2, 24, 4100]] as const) {
    const a = randn([M, K], rand).toFloat32();
    const w = randn([N, K], rand);
    for (const dtype of ['bfloat16', 'float16'] as const) {
      const b = w.to(dtype);
      const got = matmulTs.forward({ a, b: matrixData(b), M, K, N });
      assert.deepEqual(got, matmulTransB(a, b.toFloat32(), M, K, N), `${dtype} ${M}×${K}×${N}`);
    }
  }
});
