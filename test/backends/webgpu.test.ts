// The WGSL FlashAttention kernel against the CPU reference on random shapes — no mask, causal (both alignments),
// windows (dilated too), key padding, documents, prefix-LM, global tokens, block-sparse, dense keep masks and biases,
// soft-capping, ALiBi, GQA/MQA. Runs on any WebGPU adapter Dawn finds; in CI
// that is Mesa's llvmpipe through OpenGL ES (.ci/run installs it). Skips with the reason when there is none.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readIndex, runConformanceWebGPU, summary } from '../../src/node/conformance.js';
import {
  alibiSlopes, attention, attentionBackward, attentionBackwardWebGPU, F16Matrix, linear, linearWebGPU, masks, Tensor, type AttentionOptions,
} from '../../src/index.js';
import { gpuDevice, hasF16 } from '../../src/kernels/webgpu/device.js';
import { matmulGpu } from '../../src/kernels/webgpu/matmul.js';
import { flashTiles } from '../../src/kernels/webgpu/sdpa-flash.js';
import { attentionWebGPU, pagedAttentionWebGPU } from '../../src/attention/webgpu.js';
import { pagedAttention } from '../../src/kernels/cpu/sdpa-paged.js';
import { pagedAttention as pagedWithSinks } from '../../src/attention/paged.js';
import { batched, pooledBytes, setSubmitBatch } from '../../src/kernels/webgpu/buffers.js';
import { addGpu } from '../../src/kernels/webgpu/ops.js';
import { GpuKVCache } from '../../src/cache/webgpu.js';
import { buildModel, ContiguousKVCache, generate, GpuTensor, toCpu, toGpu, type CausalLM } from '../../src/index.js';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import type { Gemma2 } from '../../src/models/gemma2.js';
import type { Llama } from '../../src/models/llama.js';
import { forwardWebGPU } from '../../src/models/ops-webgpu.js';
import { useDawn } from '../../src/node/webgpu.js';
import { assertClose, GOLDEN, randint, randn, rng, ROOT_DIR } from '../helpers.js';
import { assertSame, pagedOf, poisonCases } from '../differential/non-finite-cases.js';
import { assertSameResult, expectedGpuKernel, suiteCases } from './suite.js';

let skip: string | false = false;
before(async () => {
  if (!(await useDawn(process.env.QKV_WEBGPU_BACKEND ?? 'opengles'))) skip = 'the optional `webgpu` package is not installed';
  else if (!(await gpuDevice())) skip = 'no WebGPU adapter (apt-get install libegl1 libgles2 libegl-mesa0 libgl1-mesa-dri for llvmpipe)';
});

test('WGSL flash attention equals the CPU reference on random shapes', async (t) => {
  if (skip) { t.skip(skip); return; }
  for (let trial = 0; trial < 24; trial++) {
    const rand = rng(700 + trial);
    const Hkv = randint(rand, 1, 2);
    const Hq = Hkv * [1, 2, 4][trial % 3];
    const [B, L, S, D, Dv] = [randint(rand, 1, 2), randint(rand, 1, 40), randint(rand, 1, 60), randint(rand, 1, 40), randint(rand, 1, 24)];
    const q = randn([B, Hq, L, D], rand);
    const k = randn([B, Hkv, S, D], rand);
    const v = randn([B, Hkv, S, Dv], rand);
    const square = trial % 12 >= 8; // documents, global tokens and blocks are for self-attention
    const Sx = square ? L : S;
    const k2 = square ? randn([B, Hkv, L, D], rand) : k;
    const v2 = square ? randn([B, Hkv, L, Dv], rand) : v;
    const options: AttentionOptions = [
      {}, { causal: 'bottom-right' }, { causal: 'top-left' }, { window: [5, 2] }, { window: [9, 0], dilation: 2 },
      { keyLengths: Array.from({ length: B }, (_, b) => (b ? 0 : S)), mask: randn([1, 1, L, S], rand).to('float32') },
      { softcap: 2, scale: 0.8, mask: Tensor.from(Array.from({ length: L * S }, (_, x) => ((x * 7) % 3 ? 1 : 0)), [L, S], 'bool') },
      { causal: 'bottom-right', alibiSlopes: alibiSlopes(Hq), bias: randn([1, Hq, 1, S], rand) },
      { causal: true, cuSeqlens: [0, Math.floor(Sx / 3), Sx] }, { prefix: Math.floor(Sx / 2) },
      { window: [2, 2], globalTokens: [0, Sx - 1] }, { blockSparse: { blockSize: 4, windowBlocks: 1, globalBlocks: [0], randomBlocks: [2, 1] } },
    ][trial % 12] as AttentionOptions;
    const gpu = await attentionWebGPU(q, k2, v2, options);
    const cpu = attention(q, k2, v2, { ...options, kernel: 'reference' });
    assertClose(gpu.out, cpu.out, 2e-5, 2e-4, `trial ${trial} ${JSON.stringify(options)} out`);
    assertClose(gpu.lse, cpu.lse, 2e-5, 2e-4, `trial ${trial} lse`);
    if (gpu.device !== 'webgpu') throw new Error(`trial ${trial} ran on ${gpu.device}`);
  }
});


test('every golden sdpa case passes on WebGPU', async (t) => {
  if (skip) { t.skip(skip); return; }
  const results = await runConformanceWebGPU(GOLDEN);
  for (const r of results) assert.notEqual(r.status, 'fail', `${r.file}: ${r.detail}`);
  // every forward and backward sdpa case runs on the GPU and passes
  const sdpa = readIndex(GOLDEN).cases.filter((c) => c.op === 'sdpa' || c.op === 'sdpa_backward').map((c) => c.file);
  assert.ok(sdpa.length >= 23);
  for (const f of sdpa) assert.equal(results.find((r) => r.file === f)?.status, 'pass', f);
  t.diagnostic(`webgpu: ${summary(results)}`);
});

test('WGSL flash attention with the tiles asked for (blockM × blockN): the same results; tiles the device cannot hold are refused with the reason', async (t) => {
  if (skip) { t.skip(skip); return; }
  const device = (await gpuDevice())!;
  const rand = rng(760);
  const [q, k, v] = [randn([2, 2, 70, 24], rand), randn([2, 1, 90, 24], rand), randn([2, 1, 90, 40], rand)];
  const options: AttentionOptions = { causal: 'bottom-right', window: [30, 0], softcap: 4 };
  const cpu = attention(q, k, v, { ...options, kernel: 'reference' });
  let ran = 0;
  for (const [blockM, blockN] of [[64, 32], [16, 16], [32, 16], [4, 16], [64, 8], [128, 32], [64, 64], [128, 64]]) {
    let fits = true;
    try { flashTiles(device, 40, { blockM, blockN }); } catch (e) { fits = false; assert.match((e as Error).message, /> the device's/, `${blockM} × ${blockN}`); }
    if (!fits) { t.diagnostic(`${blockM} × ${blockN}: more than this device holds`); continue; }
    const gpu = await attentionWebGPU(q, k, v, { ...options, blockM, blockN });
    assert.equal(gpu.device, 'webgpu');
    assertClose(gpu.out, cpu.out, 2e-5, 2e-4, `${blockM} × ${blockN} out`);
    assertClose(gpu.lse, cpu.lse, 2e-5, 2e-4, `${blockM} × ${blockN} lse`);
    ran++;
  }
  assert.ok(ran >= 4, `only ${ran} tile shapes ran`);
  await assert.rejects(attentionWebGPU(q, k, v, { blockM: 6, blockN: 32 }), /tiles of 6 × 32: blockM and blockN must be multiples of 4/);
  await assert.rejects(attentionWebGPU(q, k, v, { blockM: 64, blockN: 10 }), /multiples of 4/);
  await assert.rejects(attentionWebGPU(q, k, randn([2, 1, 90, 256], rand), { blockM: 64, blockN: 16 }), /head_dim 256 needs blockN ≥ 32/);
});

test('batched GPU work: its passes reach the queue together, and a buffer released inside waits for them before it is reused', async (t) => {
  if (skip) { t.skip(skip); return; }
  const device = (await gpuDevice())!;
  setSubmitBatch(1000); // everything in one submit at the first read
  try {
    await batched(device, async () => {
      const a = GpuTensor.upload(device, Float32Array.from([1, 2, 3, 4]), [1, 4]);
      const b = await addGpu(a, a); // recorded, not yet submitted
      a.release();                  // held: the pending add still reads it
      const c = GpuTensor.upload(device, Float32Array.from([10, 20, 30, 40]), [1, 4]); // writeBuffer now, into a buffer of a's size class
      const d = await addGpu(c, c);
      assert.deepEqual([...await b.read()], [2, 4, 6, 8]);
      assert.deepEqual([...await d.read()], [20, 40, 60, 80]);
      for (const x of [b, c, d]) x.release();
    });
  } finally {
    setSubmitBatch(16);
  }
  assert.throws(() => setSubmitBatch(0), /positive integer/);
});

test('split-K decode on WebGPU: a few query rows, long caches (many chunks), GQA, bottom-right causal, soft-capping', async (t) => {
  if (skip) { t.skip(skip); return; }
  for (let trial = 0; trial < 12; trial++) {
    const rand = rng(800 + trial);
    const Hkv = randint(rand, 1, 3);
    const Hq = Hkv * [1, 3, 4][trial % 3];
    const L = trial % 4 === 0 ? 1 : randint(rand, 1, 8);
    const [B, S, D, Dv] = [randint(rand, 1, 2), trial % 3 === 0 ? randint(rand, 1500, 3000) : randint(rand, L, 200), randint(rand, 1, 96), randint(rand, 1, 140)];
    const q = randn([B, Hq, L, D], rand);
    const k = randn([B, Hkv, S, D], rand);
    const v = randn([B, Hkv, S, Dv], rand);
    const options: AttentionOptions = [{}, { causal: 'bottom-right' }, { causal: 'bottom-right', softcap: 3, scale: 0.3 }][trial % 3] as AttentionOptions;
    const gpu = await attentionWebGPU(q, k, v, options);
    const cpu = attention(q, k, v, { ...options, kernel: 'reference' });
    assert.equal(gpu.device, 'webgpu');
    assertClose(gpu.out, cpu.out, 2e-5, 2e-4, `trial ${trial} out`);
    assertClose(gpu.lse, cpu.lse, 2e-5, 2e-4, `trial ${trial} lse`);
  }
});

test('paged attention on WebGPU reads through random block tables (windows, key masks, T > 1) like the CPU kernel', async (t) => {
  if (skip) { t.skip(skip); return; }
  for (let trial = 0; trial < 10; trial++) {
    const rand = rng(900 + trial);
    const [B, Hkv, G, D, BLOCK, T] = [randint(rand, 1, 3), randint(rand, 1, 2), randint(rand, 1, 3), randint(rand, 1, 40), randint(rand, 1, 17), randint(rand, 1, 3)];
    const lens = Array.from({ length: B }, () => randint(rand, T, trial % 2 ? 300 : 40));
    const numBlocks = lens.reduce((a, S) => a + Math.ceil(S / BLOCK), 3);
    const pool = { blockSize: BLOCK, Hkv, D, Dv: D + 3, k: randn([numBlocks * Hkv * BLOCK * D], rand).toFloat32(), v: randn([numBlocks * Hkv * BLOCK * (D + 3)], rand).toFloat32() };
    const free = [...Array(numBlocks).keys()].sort(() => rand() - 0.5);
    const tables = lens.map((S) => Array.from({ length: Math.ceil(S / BLOCK) }, () => free.pop()!));
    const keyMask = trial % 3 === 2 ? lens.map((S) => Array.from({ length: S }, (_, j) => (j % 5 === 1 ? 0 : 1))) : undefined;
    const p = { q: randn([B, Hkv * G, T, D], rand).toFloat32(), B, Hq: Hkv * G, T, scale: 0.4, softcap: trial % 4 === 3 ? 2 : 0, causal: trial % 2 === 0,
      window: trial % 3 === 1 ? randint(rand, 1, 30) : null, blockTables: tables, seqLens: lens, keyMask, pool };
    const gpu = await pagedAttentionWebGPU(p);
    const cpu = pagedAttention(p);
    assert.equal(gpu.device, 'webgpu');
    assertClose(Tensor.from(gpu.out, [gpu.out.length]), Tensor.from(cpu.out, [cpu.out.length]), 2e-5, 2e-4, `trial ${trial} out`);
    assertClose(Tensor.from(gpu.lse, [gpu.lse.length]), Tensor.from(cpu.lse, [cpu.lse.length]), 2e-5, 2e-4, `trial ${trial} lse`);
  }
  // a block table that points outside the pool is refused before anything is read
  const pool = { blockSize: 4, Hkv: 1, D: 4, Dv: 4, k: new Float32Array(32), v: new Float32Array(32) };
  await assert.rejects(pagedAttentionWebGPU({ q: new Float32Array(4), B: 1, Hq: 1, T: 1, scale: 1, softcap: 0, causal: true, window: null,
    blockTables: [[0, 9]], seqLens: [6], pool }), /block table 0 entry 1 is 9; the pool has 2 blocks/);
  await assert.rejects(pagedAttentionWebGPU({ q: new Float32Array(3), B: 1, Hq: 1, T: 1, scale: 1, softcap: 0, causal: true, window: null,
    blockTables: [[0, 1]], seqLens: [6], pool }), /q has 3 values, expected B·Hq·T·D = 1·1·1·4/);
});

test('WebGPU buffers are reused across calls (the pool does not grow)', async (t) => {
  if (skip) { t.skip(skip); return; }
  const rand = rng(5);
  const q = randn([1, 4, 1, 32], rand), k = randn([1, 2, 100, 32], rand);
  const device = (await gpuDevice())!;
  await attentionWebGPU(q, k, k);
  const after1 = pooledBytes(device);
  for (let n = 0; n < 5; n++) await attentionWebGPU(q, k, k);
  assert.equal(pooledBytes(device), after1);
  assert.ok(after1 > 0);
});

test('tiled matmul on WebGPU equals linear() on the CPU (shapes that do not divide the 64×64×16 tiles, the GEMV path for ≤ 8 rows, bias, 16-bit weights)', async (t) => {
  if (skip) { t.skip(skip); return; }
  for (let trial = 0; trial < 15; trial++) {
    const rand = rng(1000 + trial);
    const [M, K, N] = [trial < 10 ? randint(rand, 1, 150) : [1, 2, 5, 8, 9][trial - 10], randint(rand, 1, 300), randint(rand, 1, 200)];
    const x = randn([M, K], rand);
    const w = trial % 3 === 2 ? randn([N, K], rand).to('bfloat16') : randn([N, K], rand);
    const bias = trial % 2 ? randn([N], rand) : null;
    assertClose(await linearWebGPU(x, w, bias), linear(x, w, bias), 1e-5 * Math.sqrt(K), 1e-4, `trial ${trial} M=${M} K=${K} N=${N}`);
  }
  // an F16Matrix (the CPU kernel's scaled f16) goes up as its true values: the same result as the stored f16
  const w16 = randn([40, 64], rng(3), 0.002).to('float16');
  const scaled = F16Matrix.scaleInPlace(new Tensor('float16', (w16.data as Uint16Array).slice(), [40, 64]))!;
  const x16 = randn([3, 64], rng(4));
  assert.deepEqual((await linearWebGPU(x16, scaled)).toFloat32(), (await linearWebGPU(x16, w16)).toFloat32());
  // a weight and bias changed in place between calls are uploaded again (only a model's constant weights stay as uploaded)
  const [xw, ww, bw] = [randn([4, 32], rng(5)), randn([24, 32], rng(6)), randn([24], rng(7))];
  const w16b = randn([24, 32], rng(8)).to('bfloat16');
  await linearWebGPU(xw, ww, bw); await linearWebGPU(xw, w16b, bw);
  (ww.data as Float32Array).fill(0.5); (bw.data as Float32Array)[3] = 7; (w16b.data as Uint16Array).fill(0x3f00);
  assertClose(await linearWebGPU(xw, ww, bw), linear(xw, ww, bw), 1e-4, 1e-4, 'f32 weight and bias changed');
  assertClose(await linearWebGPU(xw, w16b, bw), linear(xw, w16b, bw), 1e-4, 1e-4, 'bf16 weight changed');
  await assert.rejects(linearWebGPU(randn([2, 5], rng(1)), randn([3, 4], rng(2))), /linearWebGPU: input's last dim must be in_features=4, got x \[2, 5\]/);
});

test('WGSL backward across many tiles: 150-row calls, GQA, both causal alignments, windows, soft-capping, wide head dims', async (t) => {
  if (skip) { t.skip(skip); return; }
  const rand = rng(1180);
  for (const [B, Hq, Hkv, L, S, D, Dv, options] of [
    [1, 2, 1, 150, 150, 64, 64, { causal: true }], [2, 3, 1, 97, 140, 40, 72, { causal: 'bottom-right', softcap: 3 }],
    [1, 2, 2, 130, 70, 96, 24, { causal: 'top-left' }], [1, 4, 2, 120, 120, 33, 17, { window: [20, 5], scale: 0.4 }],
  ] as [number, number, number, number, number, number, number, AttentionOptions][]) {
    const [q, k, v, dout] = [randn([B, Hq, L, D], rand), randn([B, Hkv, S, D], rand), randn([B, Hkv, S, Dv], rand), randn([B, Hq, L, Dv], rand)];
    const gpu = await attentionBackwardWebGPU(q, k, v, dout, options);
    const cpu = attentionBackward(q, k, v, dout, { ...options, kernel: 'reference' });
    assert.equal(gpu.device, 'webgpu');
    for (const name of ['dq', 'dk', 'dv'] as const) assertClose(gpu[name], cpu[name], 2e-5, 2e-4, `L ${L} S ${S} D ${D} Dv ${Dv} ${JSON.stringify(options)} ${name}`);
  }
});

test('WGSL backward equals the CPU backward (every mask the forward takes, soft-capping, ALiBi, bias, GQA)', async (t) => {
  if (skip) { t.skip(skip); return; }
  for (let trial = 0; trial < 12; trial++) {
    const rand = rng(1100 + trial);
    const Hkv = randint(rand, 1, 2);
    const Hq = Hkv * [1, 2, 3][trial % 3];
    const [B, L, D, Dv] = [randint(rand, 1, 2), randint(rand, 1, 30), randint(rand, 1, 20), randint(rand, 1, 20)];
    const square = trial % 12 >= 8;
    const S = square ? L : randint(rand, 1, 40);
    const q = randn([B, Hq, L, D], rand);
    const k = randn([B, Hkv, S, D], rand);
    const v = randn([B, Hkv, S, Dv], rand);
    const dout = randn([B, Hq, L, Dv], rand);
    const options = [
      {}, { causal: 'bottom-right' }, { causal: 'top-left', softcap: 1.5 }, { window: [4, 1] }, { window: [7, 0], dilation: 2 },
      { keyLengths: Array.from({ length: B }, (_, b) => (b ? 1 : S)), mask: randn([1, 1, L, S], rand) },
      { scale: 0.7, mask: Tensor.from(Array.from({ length: L * S }, (_, x) => ((x * 5) % 3 ? 1 : 0)), [L, S], 'bool') },
      { causal: 'bottom-right', alibiSlopes: alibiSlopes(Hq), bias: randn([1, Hq, 1, S], rand) },
      { causal: true, cuSeqlens: [0, Math.floor(S / 2), S] }, { prefix: Math.floor(S / 3) }, { window: [2, 2], globalTokens: [0] },
      { blockSparse: { blockSize: 4, windowBlocks: 1, globalBlocks: [0], randomBlocks: [1, 1] } },
    ][trial] as AttentionOptions;
    const gpu = await attentionBackwardWebGPU(q, k, v, dout, options);
    const cpu = attentionBackward(q, k, v, dout, { ...options, kernel: 'reference' });
    assert.equal(gpu.device, 'webgpu', `trial ${trial}`);
    for (const name of ['dq', 'dk', 'dv'] as const) assertClose(gpu[name], cpu[name], 2e-5, 2e-4, `trial ${trial} ${JSON.stringify(options)} ${name}`);
  }
});

const TINY = fileURLToPath(new URL('../../../models/qkv-tiny', import.meta.url));

test('qkv-tiny runs whole on WebGPU: the logits of prefill and decode steps match the CPU (KV cache on the GPU, grown twice)', async (t) => {
  if (skip) { t.skip(skip); return; }
  const { model } = loadCheckpoint(TINY, { tokenizer: false });
  const llama = model as unknown as Llama;
  const device = (await gpuDevice())!;
  const gpuCache = new GpuKVCache(device, model.info.numLayers, 4); // the prompt grows it to 10, the second step to 20 (a copy)
  const cpuCache = new ContiguousKVCache(model.info.numLayers);
  const steps = [[5, 17, 300, 42, 7, 99, 1000, 12, 4000, 3], [64], [65], [66, 67]];
  for (const ids of steps) {
    const gpu = await forwardWebGPU(llama, ids, gpuCache);
    const cpu = (model as CausalLM).forward([ids], { cache: cpuCache, lastOnly: true }).logits;
    assertClose(Tensor.from(gpu, [1, 1, gpu.length]), cpu, 1e-4, 1e-3, `step of ${ids.length} tokens`);
  }
  assert.equal(gpuCache.length(0), 14);
  gpuCache.release();
});

test("generate(…, { device: 'webgpu' }) gives the CPU's greedy tokens for qkv-tiny", async (t) => {
  if (skip) { t.skip(skip); return; }
  const { model, tokenizer } = loadCheckpoint(TINY);
  const prompt = 'The Zen of Python, by Tim Peters. Beautiful is better than ugly.';
  const cpu = await generate(model as CausalLM, tokenizer!, prompt, { maxTokens: 12, greedy: true, stopTokens: [] });
  const gpu = await generate(model as CausalLM, tokenizer!, prompt, { maxTokens: 12, greedy: true, stopTokens: [], device: 'webgpu' });
  assert.deepEqual(gpu.ids, cpu.ids);
  await assert.rejects(generate(model as CausalLM, tokenizer!, prompt, { device: 'webgpu', cache: new ContiguousKVCache(4) }), /device 'webgpu' keeps its own KV cache/);
});

test('GpuTensors: attention and linear chained on the GPU with explicit transfers equal the CPU chain', async (t) => {
  if (skip) { t.skip(skip); return; }
  const rand = rng(77);
  for (const [L, opts] of [[40, { causal: 'bottom-right' }], [1, {}]] as const) {
    const q = randn([1, 4, L, 16], rand), k = randn([1, 2, 50, 16], rand), v = randn([1, 2, 50, 16], rand);
    const w = randn([24, 64], rand);
    const [qg, kg, vg] = [(await toGpu(q))!, (await toGpu(k))!, (await toGpu(v))!];
    const a = await attentionWebGPU(qg, kg, vg, opts as AttentionOptions);
    assert.ok(a.out instanceof GpuTensor && a.lse instanceof GpuTensor, 'results stay on the GPU');
    // [1, Hq, L, Dv] → rows of Hq·Dv = 64 features: a layout change on the GPU would be a transpose; here a reshape
    const y = await linearWebGPU(a.out.reshape([L, 64]), w);
    assert.ok(y instanceof GpuTensor);
    const cpu = attention(q, k, v, { ...(opts as AttentionOptions), kernel: 'reference' });
    assertClose(await toCpu(a.out), cpu.out, 2e-5, 2e-4, `L=${L} out`);
    assertClose(await toCpu(y), linear(cpu.out.reshape([L, 64]), w), 1e-4, 1e-3, `L=${L} linear`);
    for (const g of [qg, kg, vg, a.out, a.lse, y]) g.release();
  }
  await assert.rejects(attentionWebGPU((await toGpu(randn([1, 1, 2, 4], rand)))!, (await toGpu(randn([1, 1, 3, 5], rand)))!, (await toGpu(randn([1, 1, 3, 4], rand)))!),
    /attentionWebGPU: k.shape\[3\] \(head_dim\) must equal q.shape\[3\]/);
});

test('a GpuTensor dropped without release() goes back to the pool when it is garbage-collected', async (t) => {
  if (skip) { t.skip(skip); return; }
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose_gc');
  const gc = runInNewContext('gc') as () => void;
  const device = (await gpuDevice())!;
  (() => { for (let n = 0; n < 4; n++) GpuTensor.upload(device, new Float32Array(1 << 16), [1 << 16]); })(); // 256 KiB each, never released
  const held = pooledBytes(device); // (the uploads may have taken idle buffers from the pool)
  for (let tries = 0; tries < 50 && pooledBytes(device) < held + 4 * 4 * (1 << 16); tries++) { gc(); await new Promise((r) => setTimeout(r, 10)); }
  assert.ok(pooledBytes(device) >= held + 4 * 4 * (1 << 16), `pool ${held} → ${pooledBytes(device)} bytes`);
});

test('Mistral (sliding window), Qwen2 (q/k/v biases) and Llama 3 RoPE scaling run whole on WebGPU like on the CPU', async (t) => {
  if (skip) { t.skip(skip); return; }
  const device = (await gpuDevice())!;
  for (const name of ['mistral', 'qwen2', 'llama3_rope']) {
    const dir = join(GOLDEN, 'models', name);
    const { model } = loadCheckpoint(dir, { tokenizer: false });
    const V = model.info.vocabSize;
    const gpuCache = new GpuKVCache(device, model.info.numLayers, 4);
    const cpuCache = new ContiguousKVCache(model.info.numLayers);
    // a 20-token prompt, then 14 single tokens: past Mistral's window of 8 in both the prompt and the decode steps
    const steps = [Array.from({ length: 20 }, (_, i) => (i * 37 + 5) % V), ...Array.from({ length: 14 }, (_, i) => [(i * 11 + 3) % V])];
    for (const [n, ids] of steps.entries()) {
      const gpu = await forwardWebGPU(model as unknown as Llama, ids, gpuCache);
      const cpu = (model as CausalLM).forward([ids], { cache: cpuCache, lastOnly: true }).logits;
      assertClose(Tensor.from(gpu, [1, 1, gpu.length]), cpu, 1e-4, 1e-3, `${name} step ${n}`);
    }
    gpuCache.release();
  }
});

test('Gemma 2 runs whole on WebGPU like on the CPU: GeGLU, (1 + γ) norms, soft-capping, alternating sliding windows', async (t) => {
  if (skip) { t.skip(skip); return; }
  const dir = join(GOLDEN, 'models', 'gemma2');
  const device = (await gpuDevice())!;
  const { model, config, weights } = loadCheckpoint(dir, { tokenizer: false });
  // the checkpoint's soft-caps (50, 30) barely touch its small scores and logits; caps of 0.05 and 0.2 bend them
  const capped = buildModel({ ...config, attn_logit_softcapping: 0.05, final_logit_softcapping: 0.2 }, weights);
  const V = model.info.vocabSize;
  for (const m of [model, capped]) {
    const gpuCache = new GpuKVCache(device, m.info.numLayers, 4);
    const cpuCache = new ContiguousKVCache(m.info.numLayers);
    // a 20-token prompt, then 14 single tokens: past the sliding window in both the prompt and the decode steps
    const steps = [Array.from({ length: 20 }, (_, i) => (i * 37 + 5) % V), ...Array.from({ length: 14 }, (_, i) => [(i * 11 + 3) % V])];
    for (const [n, ids] of steps.entries()) {
      const gpu = await forwardWebGPU(m as unknown as Gemma2, ids, gpuCache);
      const cpu = (m as CausalLM).forward([ids], { cache: cpuCache, lastOnly: true }).logits;
      assertClose(Tensor.from(gpu, [1, 1, gpu.length]), cpu, 1e-4, 1e-3, `gemma2${m === capped ? ' (caps 0.05, 0.2)' : ''} step ${n}`);
    }
    gpuCache.release();
  }
  const prompt = [3, 14, 15, 92, 65];
  const [cpu, gpu] = [await generate(model as CausalLM, null, prompt, { maxTokens: 12, greedy: true, stopTokens: [] }),
    await generate(model as CausalLM, null, prompt, { maxTokens: 12, greedy: true, stopTokens: [], device: 'webgpu' })];
  assert.deepEqual(gpu.ids, cpu.ids);
});

test('learned attention sinks on WebGPU: forward (flash and decode), backward with dsinks, paged — as on the CPU', async (t) => {
  if (skip) { t.skip(skip); return; }
  const rand = rng(808);
  for (const L of [1, 20]) {
    const q = randn([1, 4, L, 16], rand), k = randn([1, 2, 30, 16], rand), v = randn([1, 2, 30, 16], rand), dout = randn([1, 4, L, 16], rand);
    const o = { causal: 'bottom-right' as const, sinks: [0.5, -1, 2, 0] };
    const gpu = await attentionWebGPU(q, k, v, o);
    const cpu = attention(q, k, v, { ...o, kernel: 'reference' });
    assert.equal(gpu.device, 'webgpu');
    assertClose(gpu.out, cpu.out, 2e-5, 2e-4, `L=${L} out`);
    assertClose(gpu.lse, cpu.lse, 2e-5, 2e-4, `L=${L} lse`);
    const gb = await attentionBackwardWebGPU(q, k, v, dout, o);
    const cb = attentionBackward(q, k, v, dout, { ...o, kernel: 'reference' });
    assert.equal(gb.device, 'webgpu');
    for (const name of ['dq', 'dk', 'dv', 'dsinks'] as const) assertClose(gb[name]!, cb[name]!, 2e-5, 2e-4, `L=${L} ${name}`);
  }
  const pool = { blockSize: 9, Hkv: 2, D: 8, Dv: 8, k: randn([1, 2, 9, 8], rand).toFloat32(), v: randn([1, 2, 9, 8], rand).toFloat32() };
  const p = { q: randn([1, 4, 2, 8], rand).toFloat32(), B: 1, Hq: 4, T: 2, scale: 0.35, softcap: 0, causal: true, window: null,
    blockTables: [[0]], seqLens: [9], pool, sinks: Float32Array.from([1, -1, 0.5, 3]) };
  const [gpu, cpu] = [await pagedAttentionWebGPU(p), pagedWithSinks(p)];
  assert.equal(gpu.device, 'webgpu');
  assertClose(gpu.out, cpu.out, 2e-5, 2e-4, 'paged out');
  assertClose(gpu.lse, cpu.lse, 2e-5, 2e-4, 'paged lse');
});

test('the newer families run whole on WebGPU like on the CPU: qk-norm, NoPE layers, LongRoPE, post-norms, a RoPE per layer type', async (t) => {
  if (skip) { t.skip(skip); return; }
  const device = (await gpuDevice())!;
  for (const name of ['qwen3', 'gemma3', 'smollm3', 'phi3', 'olmo2']) {
    const { model } = loadCheckpoint(join(ROOT_DIR, 'test', 'golden-frontier', 'models', name), { tokenizer: false });
    const V = model.info.vocabSize;
    const gpuCache = new GpuKVCache(device, model.info.numLayers, 4);
    const cpuCache = new ContiguousKVCache(model.info.numLayers);
    // a 36-token prompt (past Phi-3's original context of 32: its long RoPE factors; past Gemma 3's window), then 6 tokens
    const steps = [Array.from({ length: 36 }, (_, i) => (i * 37 + 5) % V), ...Array.from({ length: 6 }, (_, i) => [(i * 11 + 3) % V])];
    for (const [n, ids] of steps.entries()) {
      const gpu = await forwardWebGPU(model as unknown as Llama, ids, gpuCache);
      const cpu = (model as CausalLM).forward([ids], { cache: cpuCache, lastOnly: true }).logits;
      assertClose(Tensor.from(gpu, [1, 1, gpu.length]), cpu, 1e-4, 1e-3, `${name} step ${n}`);
    }
    gpuCache.release();
  }
});

test('rows and keys of different lengths: every structured mask places row i at i + S − L (a top-left causal limit at i), forward and backward, like the CPU', async (t) => {
  if (skip) { t.skip(skip); return; }
  const rand = rng(1300);
  const options: AttentionOptions[] = [
    { causal: 'top-left', window: [3, 0] }, { causal: 'top-left', window: [2, 1], dilation: 2 }, { window: [4, 2] }, { prefix: 4 },
    { cuSeqlens: [0, 5, 9, 13] }, { window: [2, 2], globalTokens: [0, 7] }, { blockSparse: { blockSize: 4, windowBlocks: 1, globalBlocks: [0] } },
    { causal: 'top-left', keyLengths: [11, 6] }, { causal: 'top-left', prefix: 3, softcap: 2 },
  ];
  for (const [L, S] of [[6, 13], [13, 13], [9, 13]]) {
    for (const [n, o] of options.entries()) {
      if (o.cuSeqlens && L !== S) continue; // documents are packed self-attention
      const q = randn([2, 4, L, 8], rand), k = randn([2, 2, S, 8], rand), v = randn([2, 2, S, 8], rand), dout = randn([2, 4, L, 8], rand);
      const gpu = await attentionWebGPU(q, k, v, o);
      const cpu = attention(q, k, v, { ...o, kernel: 'reference' });
      assertClose(gpu.out, cpu.out, 2e-5, 2e-4, `L=${L} S=${S} option ${n} ${JSON.stringify(o)} out`);
      assertClose(gpu.lse, cpu.lse, 2e-5, 2e-4, `L=${L} S=${S} option ${n} lse`);
      const gb = await attentionBackwardWebGPU(q, k, v, dout, o);
      const cb = attentionBackward(q, k, v, dout, { ...o, kernel: 'reference' });
      for (const g of ['dq', 'dk', 'dv'] as const) assertClose(gb[g], cb[g], 2e-5, 2e-4, `L=${L} S=${S} option ${n} ${g}`);
    }
  }
});

test('mask specs (masks.*) run on WebGPU when they are options, ANDs of them or a pattern widened by global tokens; other specs run on the CPU', async (t) => {
  if (skip) { t.skip(skip); return; }
  const rand = rng(1400);
  const q = randn([2, 4, 9, 8], rand), k = randn([2, 2, 13, 8], rand), v = randn([2, 2, 13, 8], rand), dout = randn([2, 4, 9, 8], rand);
  const cases: [masks.MaskSpec, 'webgpu' | 'cpu'][] = [
    [masks.causal('bottom-right'), 'webgpu'], [masks.slidingWindow(3, 1, 2), 'webgpu'], [masks.prefixLM(5), 'webgpu'],
    [masks.and(masks.causal('top-left'), masks.slidingWindow(4, 0), masks.keyPadding([13, 7])), 'webgpu'],
    [masks.and(masks.blockSparse({ blockSize: 4, windowBlocks: 1 }), masks.causal('bottom-right')), 'webgpu'],
    [masks.globalTokens([0, 5]), 'webgpu'],
    [masks.or(masks.slidingWindow(2, 1), masks.globalTokens([0, 5])), 'webgpu'],
    [masks.or(masks.globalTokens([3]), masks.and(masks.slidingWindow(2, 2), masks.blockSparse({ blockSize: 4, windowBlocks: 1 }))), 'webgpu'],
    [masks.or(masks.causal(), masks.prefixLM(4)), 'cpu'], [masks.and(masks.slidingWindow(3, 0), masks.globalTokens([1])), 'cpu'],
  ];
  for (const [n, [mask, where]] of cases.entries()) {
    const gpu = await attentionWebGPU(q, k, v, { mask });
    const cpu = attention(q, k, v, { mask, kernel: 'reference' });
    assert.equal(gpu.device, where, `spec ${n} ${mask.describe}`);
    assertClose(gpu.out, cpu.out, 2e-5, 2e-4, `spec ${n} ${mask.describe} out`);
    const gb = await attentionBackwardWebGPU(q, k, v, dout, { mask });
    assertClose(gb.dq, attentionBackward(q, k, v, dout, { mask, kernel: 'reference' }).dq, 2e-5, 2e-4, `spec ${n} dq`);
  }
});

test("torch's finfo.min additive mask (−3.4e38, the WGSL kernels' masked-score sentinel) runs on the CPU: a row masked everywhere is the mean of its values", async (t) => {
  if (skip) { t.skip(skip); return; }
  const rand = rng(1500);
  const [L, S] = [3, 7];
  const q = randn([1, 2, L, 8], rand), k = randn([1, 2, S, 8], rand), v = randn([1, 2, S, 8], rand);
  const masked = (value: number) => Tensor.from(Float32Array.from({ length: L * S }, (_, x) => (x < S || x % S < 2 ? value : 0)), [1, 1, L, S]);
  for (const [value, where] of [[-3.4028234663852886e38, 'cpu'], [-1e9, 'webgpu'], [-Infinity, 'webgpu']] as const) {
    const bias = masked(value);
    const gpu = await attentionWebGPU(q, k, v, { bias });
    assert.equal(gpu.device, where, `bias ${value}`);
    assertClose(gpu.out, attention(q, k, v, { bias, kernel: 'reference' }).out, 2e-5, 2e-4, `bias ${value} out`);
  }
});

test('without shader-f16, f16 host tensors run through the f32 kernels and come back f16; f16 GpuTensors and weights are refused', async (t) => {
  if (skip) { t.skip(skip); return; }
  const device = (await gpuDevice())!;
  if (hasF16(device)) { t.skip('this adapter has shader-f16 (webgpu-f16.test.ts covers it)'); return; }
  const rand = rng(31);
  const q = randn([1, 2, 6, 8], rand).to('float16');
  const r = await attentionWebGPU(q, q, q, { causal: true });
  assert.equal(r.out.dtype, 'float16');
  assertClose(r.out, attention(q, q, q, { causal: true, kernel: 'reference' }).out, 1e-3, 1e-3, 'f16 via f32');
  const up = (await toGpu(q))!;
  assert.equal(up.dtype, 'float32');
  up.release();
  const bits = GpuTensor.upload(device, q.contiguous().data as Uint16Array, q.shape);
  await assert.rejects(attentionWebGPU(bits, bits, bits), /float16 GpuTensors need a device with shader-f16/);
  const x = GpuTensor.upload(device, new Float32Array(8), [1, 8]);
  assert.throws(() => matmulGpu(x, new Uint16Array(16), 2), /an f16 weight needs a device with shader-f16/);
  for (const g of [bits, x]) g.release();
});

test('NaN and +∞ scores: the WGSL kernels (flash, split-K decode, paged) make those rows NaN, as the CPU and torch do', async (t) => {
  if (skip) { t.skip(skip); return; }
  for (const c of poisonCases()) {
    const gpu = await attentionWebGPU(c.q, c.k, c.v, c.opts);
    assert.equal(gpu.device, 'webgpu');
    assertSame(gpu.out.toFloat32(), c.want.out, `${c.name} out`, [2e-5, 2e-4]);
    assertSame(gpu.lse.toFloat32(), c.want.lse, `${c.name} lse`, [2e-5, 2e-4]);
    const paged = await pagedAttentionWebGPU(pagedOf(c));
    assertSame(paged.out, c.want.out, `${c.name} paged out`, [2e-5, 2e-4]);
    assertSame(paged.lse, c.want.lse, `${c.name} paged lse`, [2e-5, 2e-4]);
  }
});

test('the backend suite (suite.ts) on WebGPU: every case on the GPU, the expected WGSL kernel, the reference\'s numbers', async (t) => {
  if (skip) { t.skip(skip); return; }
  for (const c of suiteCases()) {
    const gpu = await attentionWebGPU(c.q, c.k, c.v, c.options);
    assert.equal(gpu.device, 'webgpu', c.name);
    assert.equal(gpu.kernel, expectedGpuKernel(c, false), `${c.name}: the kernel that ran`);
    assertSameResult(gpu, attention(c.q, c.k, c.v, { ...c.options, kernel: 'reference' }), [2e-5, 2e-4], c.name);
  }
});
