// qkv's public functions called from JavaScript, where nothing checks the types: each gets seeded random arguments —
// numbers (NaN, negative, fractional), strings, null, undefined, booleans, lists, objects, functions, symbols,
// BigInts and small Tensors — and must answer with a result or a QkvError naming what was wrong, never a raw
// TypeError or RangeError. A fuzzer over every exported function found 109 such errors in 46 functions; these are the
// 46 and six scalar helpers called per element (f32ToF16, f16ToF32, f32ToBf16, bf16ToF32, erf, t5RelativeBucket),
// which gave one for a symbol or a BigInt.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as qkv from '../../src/index.js';
import { fuzzSeed, rng } from '../helpers.js';

const CALLS = 8000;
const FUNCTIONS = ['gelu', 'silu', 'relu', 'eluPlusOne', 'add', 'mul', 'rmsNorm', 'layerNorm', 'linear', 'gatedLinear', 'embedding',
  'applyRope', 'attention', 'attentionBackward', 'linearAttention', 'performerAttention', 'pagedAttention', 'alibiBias', 'alibiSlopes',
  'generate', 'generateBatch', 'greedy', 'seq2seqGenerate', 'sampleNext', 'scoreTokens', 'parseSafetensors', 'serializeSafetensors', 'kvCacheBytes',
  'kvTable', 'humanBytes', 'buildModel', 'setKernelThreads', 'setKernelVariant', 'activation', 'modelFromBytes', 'modelFromStream',
  't5RelativeBias', 'drawOmega', 'randomEncoderLayer', 'sinusoidalEncoding', 'ropeInvFreq', 'headMetrics', 'nextTokenLoss', 'removeHead',
  'patchHead', 'toCpu', 'pagedAttentionWebGPU', 'f32ToF16', 'f16ToF32', 'f32ToBf16', 'bf16ToF32', 'erf', 't5RelativeBucket'] as const;

test(`${CALLS} calls of ${FUNCTIONS.length} public functions with arguments of any type: a result or a QkvError`, async () => {
  const rand = rng(fuzzSeed(2026));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const tensor = (shape: number[]) => qkv.Tensor.from(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() - 0.5), shape);
  const values = [0, -1, 1, 2, 3, 0.5, NaN, '', 'x', null, undefined, true, [], [1], [2, 3], {}, { a: 1 }, () => 0, Symbol('s'), 10n, 't4', 't2'];
  const fns = FUNCTIONS.map((name) => {
    const f = (qkv as unknown as Record<string, unknown>)[name];
    assert.equal(typeof f, 'function', `${name} is exported`);
    return [name, f as (...args: unknown[]) => unknown] as const;
  });
  const findings: string[] = [];
  for (let c = 0; c < CALLS; c++) {
    const [name, f] = pick(fns);
    const args = Array.from({ length: Math.floor(rand() * 4) }, () => {
      const v = pick(values);
      return v === 't4' ? tensor([1, 2, 3, 4]) : v === 't2' ? tensor([3, 4]) : v;
    });
    try {
      await f(...args);
    } catch (e) {
      if (e instanceof qkv.QkvError) continue;
      const shown = args.map((a) => (a instanceof qkv.Tensor ? `Tensor[${a.shape}]` : typeof a === 'function' ? 'fn' : String(a))).join(', ');
      findings.push(`${name}(${shown}): ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    }
  }
  assert.deepEqual(findings.slice(0, 10), [], `${findings.length} raw errors`);
});

test('a GpuTensor of a bogus device or buffer is a QkvError (its finalizer had thrown later, ending the process)', () => {
  const bad = (v: unknown) => v as never;
  assert.throws(() => new qkv.GpuTensor(bad({}), bad({ size: 4 }), [1]), /GpuTensor: device must be a GPUDevice, got an object/);
  assert.throws(() => new qkv.GpuTensor(bad({ queue: {} }), bad(5), [1]), /GpuTensor: buffer must be a GPUBuffer, got 5/);
  assert.throws(() => new qkv.GpuTensor(bad({ queue: {} }), bad({ size: 4 }), bad('x')), /GpuTensor: shape must be a list/);
  assert.throws(() => new qkv.GpuTensor(bad({ queue: {} }), bad({ size: 4 }), [1], undefined, bad('int8')), /dtype must be float32 or float16/);
});

test('the constructors a server or a cache starts from check their arguments (a fuzzer of the exported classes)', () => {
  const bad = (v: unknown) => v as never;
  const cases: [() => unknown, RegExp][] = [
    [() => new qkv.Weights(bad({})), /Weights: tensors must be a Map of name → Tensor, got an object/],
    [() => new qkv.BatchEngine(bad(null), bad({ kvBlocks: 4 })), /BatchEngine: model must be a causal LM, got null/],
    [() => new qkv.ContinuousBatcher(bad({ kind: 'encoder' }), bad({ maxBlocks: 4 })), /ContinuousBatcher: model must be a causal LM/],
    [() => new qkv.ContiguousKVCache(bad(-1)), /ContiguousKVCache: numLayers must be an integer in \[1, 65536\], got -1/],
    [() => new qkv.PagedKVCache(2, bad(null)), /PagedKVCache: options must be an object, got null/],
    [() => new qkv.Int8KVCache(bad(1.5)), /PagedKVCache: numLayers must be an integer/],
    [() => new qkv.SlidingWindowKVCache(bad('x')), /SlidingWindowKVCache: numLayers must be an integer/],
    [() => new qkv.SinkKVCache(bad(1e9)), /SinkKVCache: numLayers must be an integer in \[1, 65536\], got 1000000000/],
    [() => new qkv.BlockAllocator(bad(Symbol('n'))), /numBlocks must be an integer in \[1, 16777216\], got symbol/],
  ];
  for (const [f, message] of cases) assert.throws(f, (e: unknown) => e instanceof qkv.QkvError && message.test(e.message), String(message));
});

// Every exported function and class called with one argument of 10⁹ or 2^31 (a separate process each, 1.5 GiB of heap,
// 30 s): these built a structure of that size — an array, workers, a dense bias — and ended the process out of memory,
// ran for minutes, or threw a raw RangeError. Each is now refused by name before anything is allocated.
test('sizes that would take the whole memory are refused by name, before anything is allocated', async () => {
  const table = qkv.Tensor.from(new Float32Array(32), [32, 1]);
  const cases: [() => unknown, RegExp][] = [
    [() => qkv.alibiSlopes(1e9), /alibiSlopes: heads must be an integer in \[1, 65536\], got 1000000000/],
    [() => qkv.alibiBias([0.5], 1e5, 1e5), /alibiBias: H · L · S must be ≤ 2\^30, got 1 · 100000 · 100000/],
    [() => qkv.t5RelativeBias(table, 1e5, 1e5, true), /t5RelativeBias: heads · L · S must be ≤ 2\^30/],
    [() => qkv.sinusoidalEncoding(2, 1e9), /sinusoidalEncoding: maxLen · dModel must be ≤ 2\^28/],
    [() => qkv.randomEncoderLayer(2, 2, 1e9), /randomEncoderLayer: dModel² and dFF · dModel must be ≤ 2\^26/],
    [() => qkv.drawOmega(2, 2 ** 31, 2), /drawOmega: m · d must be ≤ 2\^24 and d ≤ 4096/],
    [() => qkv.ropeInvFreq({ headDim: 1e9 }), /ropeInvFreq: headDim must be an integer in \[1, 65536\], got 1000000000/],
    [() => qkv.masks.causal().build(undefined as never), /causal.*\.build: dims must be \{ B, Hq, L, S \}, got undefined/],
    [() => qkv.masks.causal().build({ B: 1, Hq: 1, L: -1, S: 2 }), /\.build: dims\.L must be an integer ≥ 0, got -1/],
  ];
  for (const [f, message] of cases) assert.throws(f, (e: unknown) => e instanceof qkv.QkvError && message.test(e.message), String(message));
  // threads: browsers' Web Workers (none in Node: a raw ReferenceError before), and at most 256
  await assert.rejects(qkv.useBrowserThreads('x', 2), /useBrowserThreads: this environment has no Web Workers/);
  const { useThreads, AttentionPool } = await import('../../src/node/index.js');
  await assert.rejects(useThreads(1e9), /threads must be an integer in \[1, 256\], got 1000000000/);
  assert.throws(() => new AttentionPool(1e9), /AttentionPool: threads must be an integer in \[1, 256\]/);
});
