// Attention across worker threads equals attention on one thread, for MHA, GQA and batches; bad options are refused.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { attention } from '../../../src/index.js';
import { AttentionPool } from '../../../src/node/threads.js';
import { assertClose, randn, rng } from '../../helpers.js';

const pool = new AttentionPool(2);
after(() => pool.close());

test('2 workers give exactly the single-thread result (MHA, GQA, B = 2, causal, window, odd head_dim)', async () => {
  const rand = rng(1);
  for (const [B, Hq, Hkv, L, S, D, opts] of [
    [1, 8, 8, 70, 70, 16, { causal: true }], [2, 8, 2, 33, 50, 12, { causal: 'bottom-right' }], [2, 3, 1, 9, 9, 7, { window: [3, 0] }],
  ] as const) {
    const q = randn([B, Hq, L, D], rand);
    const k = randn([B, Hkv, S, D], rand);
    const v = randn([B, Hkv, S, D], rand);
    const one = attention(q, k, v, opts as object);
    const two = await pool.attention(q, k, v, opts as object);
    assertClose(two.out, one.out, 0, 0, `B=${B} Hq=${Hq} Hkv=${Hkv} out`);
    assertClose(two.lse, one.lse, 0, 0, 'lse');
  }
});

test('options that cannot cross to a worker are refused with the reason', async () => {
  const q = randn([1, 1, 2, 4], rng(2));
  await assert.rejects(pool.attention(q, q, q, { maskMod: () => true } as object), /option 'maskMod' cannot cross to a worker/);
});

test('useThreads: the WebAssembly kernels on 2 threads give bit-identical attention and linear results', async () => {
  const { useThreads, setKernelThreads, kernelThreads } = await import('../../../src/node/index.js');
  const { add, applyRope, gatedLinear, linear, Int4Matrix, Int8Matrix, rmsNorm, Tensor } = await import('../../../src/index.js');
  const { KernelArena } = await import('../../../src/kernels/wasm/storage.js');
  const { withArena } = await import('../../../src/tensor/arena.js');
  const arena = new KernelArena();
  assert.equal(await useThreads(2), 2);
  const rand = rng(9);
  const q = randn([2, 4, 77, 32], rand), k = randn([2, 2, 90, 32], rand), v = randn([2, 2, 90, 32], rand);
  // (K 128: every job here at least runtime.ts's SMALL_WORK, which smaller ones run alone)
  const x = randn([3, 128], rand), w = randn([37, 128], rand), u = randn([37, 128], rand), w4 = randn([44, 128], rand);
  const qDecode = randn([2, 6, 1, 32], rand), kLong = randn([2, 2, 700, 32], rand), x35 = randn([35, 128], rand);
  const run = () => [attention(q, k, v).out, attention(q, k, v, { causal: true }).out, attention(qDecode, kLong, kLong).out, linear(x, w), linear(x.slice(0, 0, 1), w.to('float16')),
    linear(x, w.to('bfloat16')), linear(x.slice(0, 0, 1), Int8Matrix.quantize(w)),
    gatedLinear(x, w, u, 'silu'), gatedLinear(x.slice(0, 0, 1), w.to('float16'), u.to('float16'), 'gelu_pytorch_tanh'),
    // decode (M = 1) in every format: each thread's rows read as four streams, and the rows past them one by one
    linear(x.slice(0, 0, 1), w), linear(x.slice(0, 0, 1), w.to('bfloat16')), linear(x.slice(0, 0, 1), Int4Matrix.quantize(w4)),
    // prefill from M = 32 (the outer-product tile): threads claim panels of 12 columns in turn, the last unit the rest
    linear(x35, w), linear(x35, w.to('float16')), gatedLinear(x35, w, u, 'silu'), linear(x35, Int8Matrix.quantize(w)),
    linear(x35, Int4Matrix.quantize(w4)),
    // a layer's elementwise kernels over its arena (units of rows claimed in turn: 3 each here), copied out before the next run empties it
    ...withArena(arena, () => {
      arena.reset();
      const a = Tensor.from(arena.floats(x35.size), x35.shape);
      a.toFloat32().set(x35.toFloat32());
      const heads = Tensor.from(arena.floats(q.size), q.shape);
      heads.toFloat32().set(q.toFloat32());
      return [rmsNorm(a, w.slice(0, 0, 1).reshape([128]).contiguous(), 1e-5), add(a, a), applyRope(heads, { offset: 3 })]
        .map((t) => Tensor.from(t.toFloat32().slice(), t.shape));
    })];
  const two = run();
  setKernelThreads(1);
  assert.equal(kernelThreads(), 1);
  const one = run();
  setKernelThreads(2);
  two.forEach((t, i) => assertClose(t, one[i], 0, 0, `result ${i}`));
});

test('calls that find the worker asleep: the same results whether it joins late or the caller does every part', async () => {
  const { useThreads, kernelThreads } = await import('../../../src/node/index.js');
  const { linear, Tensor } = await import('../../../src/index.js');
  assert.equal(await useThreads(2), 2);
  assert.equal(kernelThreads(), 2);
  const rand = rng(11);
  // M 40: the outer-product GEMM, claimed panels; M 8: column ranges, two fixed shares taken in turn. Either way the job
  // is announced at once, and the worker joins when it wakes, or the caller takes every part and shuts it out.
  for (const M of [40, 8]) {
    const x = randn([M, 96], rand), w = randn([50, 96], rand);
    const want = linear(x, w).toFloat32().slice();
    for (let round = 0; round < 4; round++) {
      await new Promise((ok) => setTimeout(ok, 20)); // past SPIN_MS: the worker sleeps
      for (let i = 0; i < 50; i++) assertClose(linear(x, w), Tensor.from(want, [M, 50]), 0, 0, `M ${M}, round ${round}, call ${i}`);
    }
  }
});
