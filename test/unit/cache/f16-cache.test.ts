// The f16 KV cache (ContiguousKVCache with dtype 'float16', cache/contiguous.ts): keys and values rounded to f16 as
// f32ToF16 rounds them, held in the kernels' memory, and read there as f16 by the decode kernel — whose answer is the
// same, bit for bit, as over an f32 cache holding the same rounded values (the widening and the 2^112 it leaves out are
// exact). A value f16 cannot hold keeps its layer in f32. generate's kvDtype makes such a cache.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  attention, ContiguousKVCache, f16ToF32, f32ToF16, generate, kernelVariant, QkvError, Tensor, type CausalLM,
} from '../../../src/index.js';
import { problemOf } from '../../../src/attention/dispatch.js';
import { checkQkv } from '../../../src/attention/validate.js';
import { decodeReads } from '../../../src/kernels/wasm/sdpa-flash-wasm.js';
import { kernelOffset } from '../../../src/kernels/wasm/storage.js';
import { loadCheckpoint } from '../../../src/node/checkpoint.js';
import { narrow16 } from '../../../src/tensor/f16.js';
import { GOLDEN_MODELS, TINY } from '../../models/helpers.js';
import { assertClose, randint, randn, rng, ROOT_DIR } from '../../helpers.js';

// which build of the kernels this run checks (variants.test.ts runs this file again with relaxed SIMD)
test('the WebAssembly build under test', (t) => {
  t.diagnostic(`kernels: ${kernelVariant()}`);
  if (process.env.QKV_EXPECT_VARIANT) assert.equal(kernelVariant(), process.env.QKV_EXPECT_VARIANT);
});

const rounded = (t: Tensor) => Tensor.from(t.toFloat32().map((x) => f16ToF32(f32ToF16(x))), t.shape);

test('narrow16 rounds as f32ToF16 does (normal, subnormal, ties, the largest values), and refuses what f16 cannot hold', () => {
  const rand = rng(16);
  const bits = new Uint32Array(200_000).map(() => Math.floor(rand() * 2 ** 32));
  const x = new Float32Array(bits.buffer).map((v, i) => (Number.isFinite(v) ? v : i)); // random bit patterns, finite
  const edges = [0, -0, 65504, -65504, 65519.99, 65519, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 6.1e-5];
  for (const xs of [x.map((v) => v / 2 ** 100), x.map((v) => (Math.abs(v) < 65504 ? v : v / 2 ** 80)), Float32Array.from(edges)]) {
    const finite = xs.filter((v) => Math.abs(v) < 65520);
    const out = new Uint16Array(finite.length + 3);
    assert.equal(narrow16(finite, out, 3), true);
    finite.forEach((v, i) => assert.equal(out[3 + i], f32ToF16(v), `${v}`));
  }
  for (const bad of [65520, -65520, 1e6, Infinity, -Infinity, NaN]) {
    assert.equal(narrow16(Float32Array.of(1, bad), new Uint16Array(2)), false, `${bad}`);
  }
});

test('an f16 cache holds rounded keys and values in the kernels\' memory, in half the bytes; the decode kernel reads them as f16', () => {
  const rand = rng(5);
  const [c16, c32] = [new ContiguousKVCache(1, 4, null, 'float16'), new ContiguousKVCache(1, 4)];
  let v16!: { k: Tensor; v: Tensor };
  let v32!: { k: Tensor; v: Tensor };
  for (let step = 0; step < 9; step++) { // grows twice
    const [k, v] = [randn([2, 3, 1, 16], rand, 3), randn([2, 3, 1, 8], rand)];
    v16 = c16.update(0, k, v);
    v32 = c32.update(0, rounded(k), rounded(v));
  }
  assert.equal(v16.k.dtype, 'float16');
  assert.notEqual(kernelOffset(v16.k.data), null, 'in the kernels\' memory');
  assert.deepEqual(v16.k.toFloat32(), v32.k.toFloat32());
  assert.deepEqual(v16.v.toFloat32(), v32.v.toFloat32());
  assert.equal(c16.bytes() * 2, c32.bytes());
  const q = randn([2, 6, 1, 16], rand);
  const reads = decodeReads(problemOf(q, v16.k, v16.v, {}, checkQkv(q, v16.k, v16.v)));
  assert.equal(reads.f16, true);
  assert.ok(reads.k && reads.v);
  // q times 2^112 would overflow (|q| ≥ 2^15): the job reads the keys and values widened to f32 instead, the same answer
  const big = Tensor.from(q.toFloat32().map((x, i) => (i === 3 ? 1e5 : x)), q.shape);
  const wide = attention(big, v16.k, v16.v).out;
  assert.ok(wide.toFloat32().every(Number.isFinite));
  assertClose(wide, attention(big, v32.k, v32.v).out, 0, 0, 'large q');
  c16.release();
  c32.release();
  assert.throws(() => new ContiguousKVCache(1, 4, null, 'int8' as never),
    (e: unknown) => e instanceof QkvError && /dtype must be 'float32' or 'float16', got "int8"/.test(e.message));
});

test('decode over an f16 cache equals decode over an f32 cache of the same values, bit for bit (split-K shapes, GQA, causal)', () => {
  for (let trial = 0; trial < 24; trial++) {
    const rand = rng(4100 + trial);
    const Hkv = randint(rand, 1, 3);
    const L = trial % 3 === 0 ? 1 : randint(rand, 1, 8);
    const G = [1, 2, 3, 4, 7][trial % 5] <= Math.floor(32 / L) ? [1, 2, 3, 4, 7][trial % 5] : 1;
    const S = trial % 4 === 0 ? randint(rand, 600, 2100) : randint(rand, 1, 200);
    const [B, D, Dv] = [randint(rand, 1, 2), 4 * randint(rand, 1, 32), 4 * randint(rand, 1, 20)];
    const [k, v] = [randn([B, Hkv, S, D], rand, 2), randn([B, Hkv, S, Dv], rand)];
    const [c16, c32] = [new ContiguousKVCache(1, S + 5, null, 'float16'), new ContiguousKVCache(1, S + 5)];
    const v16 = c16.update(0, k, v), v32 = c32.update(0, rounded(k), rounded(v));
    const q = randn([B, Hkv * G, L, D], rand, 2);
    for (const opts of [{}, { causal: 'bottom-right' as const }, { causal: 'top-left' as const }]) {
      const [a, b] = [attention(q, v16.k, v16.v, opts), attention(q, v32.k, v32.v, opts)];
      const what = `B ${B} Hkv ${Hkv} G ${G} L ${L} S ${S} D ${D} Dv ${Dv} ${JSON.stringify(opts)}`;
      assertClose(a.out, b.out, 0, 0, `${what} out`);
      assertClose(a.lse, b.lse, 0, 0, `${what} lse`);
      assertClose(a.out, attention(q, v32.k, v32.v, { ...opts, kernel: 'reference' }).out, 2e-6, 1e-4, `${what} vs reference`);
    }
    assert.equal(decodeReads(problemOf(q, v16.k, v16.v, {}, checkQkv(q, v16.k, v16.v))).f16, true);
    c16.release();
    c32.release();
  }
});

test('prompt attention (more than 8 query rows) over an f16 cache: its values widened, the same answer as the f32 cache\'s', () => {
  const rand = rng(77);
  const [k, v, q] = [randn([1, 2, 300, 32], rand), randn([1, 2, 300, 32], rand), randn([1, 8, 40, 32], rand)];
  const [c16, c32] = [new ContiguousKVCache(1, 320, null, 'float16'), new ContiguousKVCache(1, 320)];
  const [v16, v32] = [c16.update(0, k, v), c32.update(0, rounded(k), rounded(v))];
  const causal = 'bottom-right' as const;
  assertClose(attention(q, v16.k, v16.v, { causal }).out, attention(q, v32.k, v32.v, { causal }).out, 0, 0, 'prefill');
});

test('a value f16 cannot hold (|x| ≥ 65520, ±∞, NaN) keeps its layer in f32 from then on: nothing becomes ∞ silently', () => {
  const rand = rng(8);
  const cache = new ContiguousKVCache(2, 8, null, 'float16');
  const k0 = randn([1, 1, 3, 8], rand);
  cache.update(0, k0, k0);
  cache.update(1, k0, k0);
  const big = Tensor.from(Float32Array.from({ length: 8 }, (_, i) => (i === 2 ? 1e6 : i)), [1, 1, 1, 8]);
  const view = cache.update(0, big, big);
  assert.equal(view.k.dtype, 'float32');
  assert.deepEqual(view.k.toFloat32().subarray(0, 24), rounded(k0).toFloat32(), 'the keys stored before: their f16 values');
  assert.equal(view.k.toFloat32()[24 + 2], 1e6);
  assert.equal(cache.update(0, k0.slice(2, 0, 1), k0.slice(2, 0, 1)).k.dtype, 'float32', 'stays f32');
  assert.equal(cache.update(1, k0.slice(2, 0, 1), k0.slice(2, 0, 1)).k.dtype, 'float16', 'the other layer is still f16');
  const nan = cache.update(1, Tensor.from(new Float32Array(8).fill(NaN), [1, 1, 1, 8]), big);
  assert.equal(nan.k.dtype, 'float32');
  const out = attention(randn([1, 1, 1, 8], rand), nan.k, nan.v, { causal: 'bottom-right' }).out.toFloat32();
  assert.ok(out.every((x) => Number.isNaN(x)), 'a NaN key reaches the output, as in an f32 cache');
  cache.release();
});

test('generate with kvDtype float16 (qkv-tiny): logits within f16 rounding of the f32 cache\'s, the same greedy tokens', async () => {
  const { model } = loadCheckpoint(TINY, { tokenizer: false });
  const lm = model as CausalLM;
  const prompt = [1, 450, 12, 9, 77, 1000, 23, 5, 64, 300, 8, 19, 4000, 7];
  const [f32, f16] = [await generate(lm, null, prompt, { maxTokens: 24, greedy: true, stopTokens: [] }),
    await generate(lm, null, prompt, { maxTokens: 24, greedy: true, stopTokens: [], kvDtype: 'float16' })];
  assert.deepEqual(f16.ids, f32.ids);
  const [c16, c32] = [new ContiguousKVCache(lm.info.numLayers, 64, null, 'float16'), new ContiguousKVCache(lm.info.numLayers, 64)];
  const [a, b] = [lm.forward([prompt], { cache: c16 }).logits.toFloat32(), lm.forward([prompt], { cache: c32 }).logits.toFloat32()];
  const [x, y] = [lm.forward([[42]], { cache: c16 }).logits.toFloat32(), lm.forward([[42]], { cache: c32 }).logits.toFloat32()];
  const worst = (p: Float32Array, r: Float32Array) => p.reduce((m, v, i) => Math.max(m, Math.abs(v - r[i])), 0);
  assert.ok(worst(a, b) < 0.05 && worst(x, y) < 0.05, `logits differ by ${worst(a, b)} (prompt) and ${worst(x, y)} (decode)`);
  assert.ok(worst(x, y) > 0, 'the f16 cache is not the f32 one');
  await assert.rejects(generate(lm, null, prompt, { maxTokens: 1, kvDtype: 'float16', cache: c32 }),
    /kvDtype is the storage of the cache generate makes/);
  c16.release();
  c32.release();
});

test('every golden decoder family (MLA, sinks, soft-capping, windows, qk-norm …): the same greedy tokens over an f16 cache', async () => {
  const roots = [GOLDEN_MODELS, join(ROOT_DIR, 'test', 'golden-frontier', 'models')];
  const dirs = roots.flatMap((root) => readdirSync(root).map((name) => join(root, name))).filter((d) => existsSync(join(d, 'config.json')));
  let decoders = 0;
  for (const dir of dirs) {
    const { model } = loadCheckpoint(dir, { tokenizer: false });
    if (model.kind !== 'causal-lm') continue;
    decoders++;
    const prompt = [1, 5, 9, 14, 3, 7, 11, 2];
    const [a, b] = [await generate(model as CausalLM, null, prompt, { greedy: true, maxTokens: 16, stopTokens: [] }),
      await generate(model as CausalLM, null, prompt, { greedy: true, maxTokens: 16, stopTokens: [], kvDtype: 'float16' })];
    assert.deepEqual(b.ids, a.ids, dir);
  }
  assert.ok(decoders >= 14, `${decoders} decoder families`);
});
