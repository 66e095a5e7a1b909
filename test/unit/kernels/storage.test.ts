// Kernel storage (src/kernels/wasm/storage.ts): float arrays inside the WebAssembly kernels' shared memory, handed out
// from a free list — a released block is reused, zeroed, and neighbours merge — and the KV cache built on it: the
// decode kernel reads the cache in place and gives the same result as the same keys and values passed as copies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attention, ContiguousKVCache, generate, linear, Tensor, type CausalLM } from '../../../src/index.js';
import { kernelRuntime, scratch } from '../../../src/kernels/wasm/runtime.js';
import { loadCheckpoint } from '../../../src/node/checkpoint.js';
import { TINY } from '../../models/helpers.js';
import { withArena } from '../../../src/tensor/arena.js';
import {
  KernelArena, kernelFloats, kernelFreeBytes, kernelMatrix, kernelOffset, releaseFloats,
} from '../../../src/kernels/wasm/storage.js';
import { assertClose, randint, randn, rng } from '../../helpers.js';

test('kernelFloats: a new block over memory that scratch used is zeroed; memory never written is left untouched', () => {
  const r = kernelRuntime()!;
  const [at] = scratch(r, [4096]);
  new Float32Array(r.memory.buffer, at, 1024).fill(3); // a kernel's scratch, past the top
  const a = kernelFloats(4096); // starts where that scratch was, runs past everything scratch ever wrote
  assert.equal(kernelOffset(a), at);
  assert.ok(a.every((x) => x === 0), 'zero where scratch wrote, zero (as grown) past it');
  assert.ok(r.written < kernelOffset(a)! + 4 * 4096, 'part of the block lies past the scratch high-water mark');
  releaseFloats(a);
});

test('kernelFloats: blocks on cache lines in kernel memory, reused zeroed after release, free neighbours merged', () => {
  const a = kernelFloats(100), b = kernelFloats(16), c = kernelFloats(50);
  const [at, bt, ct] = [a, b, c].map((x) => kernelOffset(x)!);
  assert.ok([at, bt, ct].every((x) => x !== null && x % 64 === 0), `offsets ${at} ${bt} ${ct}`);
  assert.ok(bt >= at + 400 && ct >= bt + 64, 'blocks do not overlap');
  assert.equal(kernelOffset(new Float32Array(4)), null);
  a.fill(7);
  const free0 = kernelFreeBytes();
  releaseFloats(a);
  assert.equal(kernelFreeBytes(), free0 + 448);
  const d = kernelFloats(16); // first fit: the start of a's block, zeroed
  assert.equal(kernelOffset(d), at);
  assert.ok(d.every((x) => x === 0));
  releaseFloats(b);
  releaseFloats(d);
  assert.equal(kernelFreeBytes(), free0 + 448 + 64, 'a and b merged back into one block');
  const e = kernelFloats(112 + 16); // fits only in the merged block
  assert.equal(kernelOffset(e), at);
  releaseFloats(e);
  releaseFloats(e); // twice: a no-op
  releaseFloats(c);
});

test('a KernelArena: kernel memory front to back in one block, up to 64 MiB between resets, ordinary arrays past it', () => {
  const arena = new KernelArena();
  const a = arena.floats(1000); // 4,032 bytes: whole cache lines
  assert.ok(kernelOffset(a) !== null, 'in the kernels\' memory');
  const b = arena.floats(2000);
  assert.equal(kernelOffset(b)! - kernelOffset(a)!, 4032, 'one after the other, on cache lines');
  assert.equal(arena.bytes, 4032 + 8000);
  const past = arena.floats(2 ** 24 + 16); // 64 MiB would be passed: an ordinary array, zeroed, no memory taken
  assert.equal(kernelOffset(past), null);
  assert.ok(past[0] === 0 && past[past.length - 1] === 0);
  assert.equal(arena.bytes, 4032 + 8000);
  arena.reset(); // handed out from the block's front again; bytes stays the most written between resets
  const c = arena.floats(500);
  assert.equal(kernelOffset(c), kernelOffset(a));
  assert.equal(arena.bytes, 4032 + 8000);
  const free0 = kernelFreeBytes();
  arena.release();
  assert.equal(arena.bytes, 0);
  assert.ok(kernelFreeBytes() >= free0 + 64 * 2 ** 20, 'the block went back');
});

test('an arena hands the same view out again after a reset; a product never keeps such a view as a resident weight', () => {
  const rand = rng(21);
  const arena = new KernelArena();
  const first = arena.floats(64 * 16);
  arena.reset();
  assert.equal(arena.floats(64 * 16), first, 'the same view, as each layer asks for the same sizes');
  const x = randn([3, 16], rand);
  for (let layer = 0; layer < 3; layer++) { // the view as B of x · Bᵀ, other contents each time (a weight seen twice stays)
    arena.reset();
    const w = arena.floats(64 * 16);
    w.set(randn([64, 16], rand).toFloat32());
    assertClose(linear(x, Tensor.from(w, [64, 16])), linear(x, Tensor.from(w.slice(), [64, 16])), 0, 0, `layer ${layer}`);
  }
  arena.release();
});

test('attention with an arena open writes its output there, decode and prefill alike; without one, a fresh array', () => {
  const rand = rng(8);
  const arena = new KernelArena();
  for (const L of [1, 40]) { // the DECODE job (and its merge), then the ATTENTION job
    const [q, k, v] = [randn([1, 4, L, 32], rand), randn([1, 2, 40, 32], rand), randn([1, 2, 40, 32], rand)];
    arena.reset();
    const inside = withArena(arena, () => attention(q, k, v, { causal: 'bottom-right' }));
    const outside = attention(q, k, v, { causal: 'bottom-right' });
    assert.notEqual(kernelOffset(inside.out.data), null, `L ${L}: out in the arena`);
    assert.equal(kernelOffset(outside.out.data), null, `L ${L}: no arena, an ordinary array`);
    assertClose(inside.out, outside.out, 0, 0, `L ${L}`);
  }
  arena.release();
});

test('the contiguous cache keeps k, v in kernel memory; decode reads them in place, equal to copies (B > 1, GQA, growth)', () => {
  const rand = rng(3);
  for (let trial = 0; trial < 4; trial++) {
    const [B, Hkv, G, D] = [randint(rand, 1, 3), randint(rand, 1, 3), randint(rand, 1, 3), 4 * randint(rand, 1, 12)];
    const cache = new ContiguousKVCache(1, 8);
    let kv!: { k: Tensor; v: Tensor };
    for (let step = 0; step < 40; step++) kv = cache.update(0, randn([B, Hkv, 1, D], rand), randn([B, Hkv, 1, D], rand));
    assert.notEqual(kernelOffset(kv.k.data), null, 'keys in kernel memory');
    const q = randn([B, Hkv * G, 1, D], rand);
    const [k, v] = [Tensor.from(kv.k.toFloat32().slice(), kv.k.shape), Tensor.from(kv.v.toFloat32().slice(), kv.v.shape)];
    for (const causal of [false, true]) {
      const inPlace = attention(q, kv.k, kv.v, { causal: causal ? 'bottom-right' : false });
      const copied = attention(q, k, v, { causal: causal ? 'bottom-right' : false });
      assertClose(inPlace.out, copied.out, 0, 0, `B=${B} Hkv=${Hkv} G=${G} D=${D}`);
      assertClose(inPlace.out, attention(q, k, v, { kernel: 'reference', causal: causal ? 'bottom-right' : false }).out, 1e-5, 1e-5, 'vs reference');
    }
    cache.release();
    assert.equal(cache.length(0), 0);
  }
});

test('generation gives its KV cache back: the kernels\' memory stops growing after the first calls', async () => {
  const { model } = loadCheckpoint(TINY, { tokenizer: false });
  const sizes: number[] = [];
  for (let run = 0; run < 6; run++) {
    await generate(model as CausalLM, null, [5, 17, 300, 42], { maxTokens: 40, greedy: true, stopTokens: [] });
    sizes.push(kernelRuntime()!.memory.buffer.byteLength);
  }
  assert.deepEqual(sizes.slice(2), Array(4).fill(sizes[1]), `memory after each run: ${sizes.join(', ')}`);
});

test('kernelMatrix: a weight placed in kernel memory is resident from the start — the product reads it where it lies', async () => {
  const { kernelMatrix } = await import('../../../src/kernels/wasm/storage.js');
  const { linear } = await import('../../../src/index.js');
  const { setResidentLimit } = await import('../../../src/kernels/wasm/runtime.js');
  const r = kernelRuntime()!;
  const rand = rng(11);
  const w = randn([48, 64], rand).to('bfloat16');
  const x = randn([3, 64], rand);
  const placed = kernelMatrix('bfloat16', w.size) as Uint16Array;
  assert.ok(placed.buffer instanceof SharedArrayBuffer, 'a view of the kernels\' shared memory');
  placed.set(w.data as Uint16Array);
  const top = r.top;
  const inPlace = new Tensor('bfloat16', placed, [48, 64]);
  assert.deepEqual(linear(x, inPlace).toFloat32(), linear(x, w).toFloat32(), 'the same product as the weight held in JavaScript');
  const after = r.top;
  linear(x, inPlace);
  assert.equal(r.top, after, 'no second copy on later calls');
  assert.ok(after - top <= 64 * 48 * 2 + 64, 'only the JavaScript-held weight was copied in');
  const previous = setResidentLimit(0);
  try {
    // bigger than every free block together (an arena given back leaves 64 MiB there), and past the limit after the top
    const n = kernelFreeBytes() / 2 + (1 << 20);
    assert.equal(kernelMatrix('float16', n), null, 'past the resident limit: no room (the loader keeps it in JavaScript)');
  } finally {
    setResidentLimit(previous);
  }
});

test('int8 weights are held once: quantized a block of rows at a time into the kernels\' memory, the stored tensor dropped', async () => {
  const { Int8Matrix } = await import('../../../src/tensor/quantize.js');
  const { Weights } = await import('../../../src/models/weights.js');
  const rand = rng(5);
  const w = randn([300, 64], rand);
  const weights = new Weights(new Map([['a.weight', w.to('bfloat16')], ['b.weight', w]]), 'test', { format: 'int8' });
  const q = weights.matrix('a.weight', [300, 64]);
  assert.ok(q instanceof Int8Matrix);
  assert.equal(weights.has('a.weight'), false, 'the bf16 source left the map');
  assert.deepEqual(weights.summary(), { parameters: 2 * 300 * 64, dtypes: ['int8', 'float32'] });
  const r = kernelRuntime()!;
  const top = r.top;
  assert.equal(typeof (await import('../../../src/kernels/wasm/runtime.js')).resident(r, q.q), 'number');
  assert.equal(r.top, top, 'q is resident already: using it copies nothing');
  // 4096 columns: blocks of 16 rows, and the same int8 values and scales as the rule applied row by row
  const wide = randn([40, 4096], rand).to('bfloat16');
  const got = Int8Matrix.quantize(wide);
  const x = wide.toFloat32();
  for (let j = 0; j < 40; j++) {
    const row = x.subarray(j * 4096, (j + 1) * 4096);
    const s = Math.fround(Math.max(...Array.from(row, Math.abs)) / 127);
    assert.equal(got.scales[j], s, `row ${j} scale`);
    for (let d = 0; d < 4096; d += 511) assert.equal(got.q[j * 4096 + d], Math.round(row[d] / s) + 0, `row ${j} col ${d}`); // + 0: an int8 has no −0
  }
});

test('int4 weights are held once too: quantized into the kernels\' memory with their scales, the stored tensor dropped', async () => {
  const { Int4Matrix } = await import('../../../src/tensor/quantize.js');
  const { Weights } = await import('../../../src/models/weights.js');
  const w = randn([300, 64], rng(6));
  const weights = new Weights(new Map([['a.weight', w.to('bfloat16')]]), 'test', { format: 'int4' });
  const q = weights.matrix('a.weight', [300, 64]);
  assert.ok(q instanceof Int4Matrix);
  assert.equal(weights.has('a.weight'), false, 'the bf16 source left the map');
  assert.deepEqual(weights.summary(), { parameters: 300 * 64, dtypes: ['int4'] });
  const r = kernelRuntime()!;
  const top = r.top;
  const { resident } = await import('../../../src/kernels/wasm/runtime.js');
  assert.equal(typeof resident(r, q.q), 'number');
  assert.equal(typeof resident(r, q.scales), 'number');
  assert.equal(r.top, top, 'q and its scales are resident already: using them copies nothing');
  // and so are an int8 matrix's (one scale a row)
  const q8 = new Weights(new Map([['b.weight', w.slice(1, 0, 48)]]), 'test', { format: 'int4' }).matrix('b.weight', [300, 48]);
  assert.ok(q8 instanceof (await import('../../../src/tensor/quantize.js')).Int8Matrix);
  resident(r, q8.q);
  resident(r, q8.scales);
  assert.equal(r.top, top, 'int8 q and scales resident already');
});

test('a stored matrix read only to be quantized gives its room back at once, and the next one reuses it', async () => {
  const { Int8Matrix } = await import('../../../src/tensor/quantize.js');
  const { Weights } = await import('../../../src/models/weights.js');
  const placed = (seed: number) => {
    const bits = kernelMatrix('bfloat16', 96 * 64) as Uint16Array; // as the loader reads a stored matrix
    bits.set(randn([96, 64], rng(seed)).to('bfloat16').data as Uint16Array);
    return new Tensor('bfloat16', bits, [96, 64]);
  };
  const [a, b] = [placed(1), placed(2)];
  const weights = new Weights(new Map([['a', a], ['b', b]]), 'test', { format: 'int8' });
  const free0 = kernelFreeBytes();
  const qa = weights.matrix('a', [96, 64]);
  assert.ok(qa instanceof Int8Matrix);
  assert.ok(kernelFreeBytes() >= free0 + 2 * 96 * 64 - 96 * 64 - 4 * 96, 'the bf16 room came back (less what int8 took of it: q, a scale a row)');
  const expected = Int8Matrix.quantize(b);
  const qb = weights.matrix('b', [96, 64]) as InstanceType<typeof Int8Matrix>;
  assert.deepEqual([...qb.q], [...expected.q], 'quantized from intact data');
});

// a NaN top had made every later call read out of bounds
test('the kernels\' memory refuses a size that is not a number, and stays usable', () => {
  const r = kernelRuntime()!;
  const top = r.top;
  for (const bad of [NaN, -64, Infinity]) {
    assert.throws(() => scratch(r, [64, bad]), (e: Error) => e.name === 'QkvError' && /asked for .* bytes/.test(e.message));
    assert.throws(() => kernelFloats(bad), (e: Error) => e.name === 'QkvError', String(bad));
  }
  assert.equal(r.top, top, 'the top did not move');
  const a = kernelFloats(16);
  a.fill(2);
  assert.ok(kernelOffset(a) !== null && Number.isFinite(kernelOffset(a)!));
  assertClose(linear(Tensor.from([1, 1], [1, 2]), Tensor.from([1, 2, 3, 4], [2, 2])), Float32Array.from([3, 7]), 0, 0);
  releaseFloats(a);
});
