// The f16 WGSL kernels (shader-f16: storage in f16, arithmetic and softmax statistics in f32) against the CPU on the
// same f16 values: flash attention with every mask, split-K decode, GpuTensors that stay f16, the tiled matmul with
// f16 weights, a whole model with f16 weights, the f16 GPU KV cache and the golden sdpa cases in f16. Needs an adapter with shader-f16: on a machine without a GPU that
// is Mesa's lavapipe through Vulkan (Mesa ≥ 24; .ci/run installs it from bookworm-backports). Skips with the reason
// when there is none. Each output element is rounded to f16 once, so it may differ from the f32 reference by half an
// f16 step (2^−11 relative) plus the f32 error of the rest.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import {
  attention, attentionWebGPU, buildModel, ContiguousKVCache, F16Matrix, generate, linear, linearWebGPU, Tensor, toCpu, toGpu, Weights,
  type AttentionOptions, type CausalLM,
} from '../../src/index.js';
import { gpuDevice, hasF16 } from '../../src/kernels/webgpu/device.js';
import { GpuTensor } from '../../src/kernels/webgpu/gpu-tensor.js';
import { matmulGpu } from '../../src/kernels/webgpu/matmul.js';
import { GpuKVCache } from '../../src/cache/webgpu.js';
import type { Llama } from '../../src/models/llama.js';
import { forwardWebGPU } from '../../src/models/ops-webgpu.js';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import { useDawn } from '../../src/node/webgpu.js';
import { assertClose, randn, rng } from '../helpers.js';
import { checkF16Cache, checkGoldenF16 } from './f16-checks.js';
import { MASK_CASES, maskCase } from './mask-cases.js';
import { assertSame, poisonCases } from '../differential/non-finite-cases.js';

const HALF_STEP = 2 ** -11; // f16 rounding, relative
let skip: string | false = false;
before(async () => {
  if (!(await useDawn('vulkan'))) skip = 'the optional `webgpu` package is not installed';
  else {
    const device = await gpuDevice();
    if (!device || !hasF16(device)) skip = 'no Vulkan adapter with shader-f16 (no GPU: apt-get install -t bookworm-backports mesa-vulkan-drivers for lavapipe)';
  }
});

const f16 = (t: Tensor) => t.to('float16');

test('f16 flash attention equals the CPU on the same f16 inputs, with every mask and score modifier', async (t) => {
  if (skip) { t.skip(skip); return; }
  for (let trial = 0; trial < MASK_CASES; trial++) {
    const c = maskCase(trial, rng(900 + trial));
    const [q, k, v, options] = [f16(c.q), f16(c.k), f16(c.v), c.options];
    const gpu = await attentionWebGPU(q, k, v, options);
    const cpu = attention(q, k, v, { ...options, kernel: 'reference' }); // f32 arithmetic on the f16 values
    assert.equal(gpu.device, 'webgpu');
    assert.equal(gpu.out.dtype, 'float16');
    const exact = attention(q.to('float32'), k.to('float32'), v.to('float32'), { ...options, kernel: 'reference' }).out;
    assertClose(gpu.out, exact, 1e-5, HALF_STEP + 1e-4, `trial ${trial} ${JSON.stringify(options)} out`);
    assertClose(gpu.out, cpu.out, 1e-5, 2 * HALF_STEP + 1e-4, `trial ${trial} out vs the CPU's f16 result`);
    assertClose(gpu.lse, cpu.lse, 2e-5, 2e-4, `trial ${trial} lse`);
  }
});

test('NaN and +∞ scores in f16: the rows that see them are NaN, the others are not', async (t) => {
  if (skip) { t.skip(skip); return; }
  for (const c of poisonCases()) {
    const gpu = await attentionWebGPU(f16(c.q), f16(c.k), f16(c.v), c.opts);
    assert.equal(gpu.out.dtype, 'float16');
    assertSame(gpu.out.toFloat32(), c.want.out, `${c.name} out`, null);
    assertSame(gpu.lse.toFloat32(), c.want.lse, `${c.name} lse`, null);
  }
});

test('f16 split-K decode: a few query rows against long f16 caches (GQA, bottom-right causal, soft-capping)', async (t) => {
  if (skip) { t.skip(skip); return; }
  const rand = rng(950);
  for (const [L, S, G, causal, softcap] of [[1, 700, 3, true, 0], [4, 129, 1, true, 5], [2, 64, 2, false, 0]] as const) {
    const [q, k, v] = [f16(randn([2, 2 * G, L, 64], rand)), f16(randn([2, 2, S, 64], rand)), f16(randn([2, 2, S, 48], rand))];
    const options: AttentionOptions = { causal: causal ? 'bottom-right' : false, softcap: softcap || undefined };
    const gpu = await attentionWebGPU(q, k, v, options);
    const exact = attention(q.to('float32'), k.to('float32'), v.to('float32'), { ...options, kernel: 'reference' });
    assert.equal(gpu.out.dtype, 'float16');
    assertClose(gpu.out, exact.out, 1e-5, HALF_STEP + 1e-4, `L=${L} S=${S} out`);
    assertClose(gpu.lse, exact.lse, 2e-5, 2e-4, `L=${L} S=${S} lse`);
  }
});

test('f16 GpuTensors stay f16: toGpu, attention on the GPU, toCpu; mixed dtypes are refused', async (t) => {
  if (skip) { t.skip(skip); return; }
  const rand = rng(960);
  const [q, k, v] = [f16(randn([1, 4, 20, 32], rand)), f16(randn([1, 2, 20, 32], rand)), f16(randn([1, 2, 20, 32], rand))];
  const [qg, kg, vg] = await Promise.all([q, k, v].map(toGpu)) as GpuTensor[];
  assert.deepEqual([qg.dtype, kg.dtype, vg.dtype], ['float16', 'float16', 'float16']);
  const r = await attentionWebGPU(qg, kg, vg, { causal: true });
  assert.equal(r.out.dtype, 'float16');
  assert.equal(r.lse.dtype, 'float32');
  const back = await toCpu(r.out);
  assert.equal(back.dtype, 'float16');
  assertClose(back, attention(q, k, v, { causal: true, kernel: 'reference' }).out, 1e-5, 2 * HALF_STEP + 1e-4, 'chain');
  const k32 = (await toGpu(k.to('float32')))!;
  await assert.rejects(attentionWebGPU(qg, k32, vg), /q, k, v must have one dtype on the GPU, got float16, float32, float16/);
  for (const x of [qg, kg, vg, k32, r.out, r.lse]) x.release();
});

test('the tiled matmul with f16 weights (kept f16 on the GPU) equals linear() with the same weights', async (t) => {
  if (skip) { t.skip(skip); return; }
  const device = (await gpuDevice())!;
  const rand = rng(970);
  for (const [M, K, N] of [[1, 64, 33], [7, 96, 70], [65, 31, 129], [3, 17, 5]]) { // K·N odd too: padded upload
    const [x, w, bias] = [randn([M, K], rand), f16(randn([N, K], rand, 0.3)), randn([N], rand)];
    const xg = GpuTensor.upload(device, x.toFloat32(), [M, K]);
    const y = await matmulGpu(xg, w.contiguous().data as Uint16Array, N, bias.toFloat32());
    assertClose(Tensor.from(await y.read(), [M, N]), linear(x, w, bias), 1e-5, 1e-5, `M=${M} K=${K} N=${N}`);
    xg.release(); y.release();
  }
  // an F16Matrix (the CPU kernel's bits, scaled by 2^10) goes up as its true f16: the same result as the stored f16
  const w16 = f16(randn([40, 64], rand, 0.002));
  const scaled = F16Matrix.scaleInPlace(new Tensor('float16', (w16.contiguous().data as Uint16Array).slice(), [40, 64]))!;
  const x16 = randn([3, 64], rand);
  assert.ok(hasF16(device));
  assert.deepEqual((await linearWebGPU(x16, scaled)).toFloat32(), (await linearWebGPU(x16, w16)).toFloat32());
});

const TINY = fileURLToPath(new URL('../../../models/qkv-tiny', import.meta.url));

test('a whole model with f16 weights on the GPU: logits of prefill and decode like the CPU, the same greedy tokens', async (t) => {
  if (skip) { t.skip(skip); return; }
  // qkv-tiny (bf16 as stored) with every matrix in f16
  const { config, weights } = loadCheckpoint(TINY, { tokenizer: false });
  const model = buildModel(config, new Weights(new Map([...weights.tensors].map(([n, w]) => [n, w.rank === 2 ? w.to('float16') : w])))) as CausalLM;
  const llama = model as unknown as Llama;
  const device = (await gpuDevice())!;
  const gpuCache = new GpuKVCache(device, model.info.numLayers, 8);
  const cpuCache = new ContiguousKVCache(model.info.numLayers);
  for (const ids of [[5, 17, 300, 42, 7, 99, 1000, 12, 4000, 3], [64], [65]]) {
    const gpu = await forwardWebGPU(llama, ids, gpuCache);
    const cpu = model.forward([ids], { cache: cpuCache, lastOnly: true }).logits;
    assertClose(Tensor.from(gpu, [1, 1, gpu.length]), cpu, 1e-4, 1e-3, `step of ${ids.length} tokens`);
  }
  gpuCache.release();
  const prompt = [1, 450, 12, 9, 77];
  const [cpu, gpu] = [await generate(model, null, prompt, { maxTokens: 10, greedy: true, stopTokens: [] }), await generate(model, null, prompt, { maxTokens: 10, greedy: true, stopTokens: [], device: 'webgpu' })];
  assert.deepEqual(gpu.ids, cpu.ids);
});

test('a float16 GpuKVCache: prompt and decode steps equal attention over f16-rounded q, k, v; a model generates the same greedy tokens', async (t) => {
  if (skip) { t.skip(skip); return; }
  const device = (await gpuDevice())!;
  // the plain kernels compute in f32 on the f16 values: only the output's own f16 rounding remains
  await checkF16Cache(device, () => 0, 950);
  // qkv-tiny with its KV cache in f16 on the GPU (weights as stored): the CPU's greedy continuation
  const { model } = loadCheckpoint(TINY, { tokenizer: false });
  const prompt = [1, 450, 12, 9, 77, 1000, 23, 5, 64, 300, 8];
  const [cpu, gpu] = [await generate(model as CausalLM, null, prompt, { maxTokens: 10, greedy: true, stopTokens: [] }),
    await generate(model as CausalLM, null, prompt, { maxTokens: 10, greedy: true, stopTokens: [], device: 'webgpu', kvDtype: 'float16' })];
  assert.deepEqual(gpu.ids, cpu.ids);
  // on the CPU, kvDtype float16 is the contiguous cache's storage (test/unit/cache/f16-cache.test.ts): the same tokens
  const cpu16 = await generate(model as CausalLM, null, prompt, { maxTokens: 10, greedy: true, stopTokens: [], kvDtype: 'float16' });
  assert.deepEqual(cpu16.ids, cpu.ids);
  assert.throws(() => new GpuKVCache(device, 1, 8, 'bfloat16' as never), /dtype must be 'float32' or 'float16'/);
});

test('every golden sdpa case, with q, k, v rounded to f16, passes on the f16 kernels (conformance --dtype f16)', async (t) => {
  if (skip) { t.skip(skip); return; }
  const why = await checkGoldenF16();
  if (why) t.skip(why);
});
