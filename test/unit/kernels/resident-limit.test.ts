// Weights that do not fit WebAssembly's memory (a 7B checkpoint in bf16 is 13.5 GB; wasm32 addresses 4 GiB) stay on
// the TypeScript matmul instead of failing: the chooser asks the WebAssembly kernel whether a weight can be resident.
// Checked with the resident limit lowered, so no test has to allocate gigabytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matmulFor } from '../../../src/attention/dispatch.js';
import { linear, Tensor } from '../../../src/index.js';
import { matrixData } from '../../../src/nn/linear.js';
import { setResidentLimit } from '../../../src/kernels/wasm/runtime.js';
import { assertClose, randn, rng } from '../../helpers.js';

test('a weight past the resident limit runs on the TypeScript kernel, with the same numbers', () => {
  const rand = rng(3);
  const x = randn([3, 64], rand);
  const fits = randn([32, 64], rand).to('bfloat16');
  const problem = (w: Tensor) => ({ a: x.toFloat32(), b: matrixData(w), M: 3, K: 64, N: 32 });
  const want = linear(x, fits.to('float32')); // f32 reference
  assert.equal(matmulFor(problem(fits)).name, 'matmul-wasm');
  assertClose(linear(x, fits), want, 1e-5, 1e-4, 'resident');
  const previous = setResidentLimit(0); // nothing new may become resident …
  try {
    const big = randn([32, 64], rand).to('bfloat16');
    assert.equal(matmulFor(problem(big)).name, 'matmul', 'a new weight goes to the TypeScript kernel');
    assertClose(linear(x, big), linear(x, big.to('float32')), 1e-5, 1e-4, 'not resident');
    assert.equal(matmulFor(problem(fits)).name, 'matmul-wasm', '… while resident ones stay on WebAssembly');
  } finally {
    setResidentLimit(previous);
  }
});
