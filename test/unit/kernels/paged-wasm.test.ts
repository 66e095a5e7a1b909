// The WebAssembly paged kernel (wasm/sdpa-paged-wasm.ts) against dense attention over the gathered keys and against
// the TypeScript paged kernel, on random shapes and random block tables with pools in the kernels' memory; which
// kernel the dispatcher chooses; and the checks that keep it from reading outside the pool.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attention, f16ToF32, f32ToF16, Int8KVCache, PagedKVCache, Tensor } from '../../../src/index.js';
import { pagedKernelFor } from '../../../src/attention/dispatch.js';
import { pagedAttention } from '../../../src/attention/paged.js';
import { sdpaPaged } from '../../../src/kernels/cpu/sdpa-paged.js';
import { sdpaPagedWasm } from '../../../src/kernels/wasm/sdpa-paged-wasm.js';
import { kernelFloats, kernelHalves, kernelMatrix } from '../../../src/kernels/wasm/storage.js';
import type { PagedProblem } from '../../../src/kernels/contract.js';
import { assertClose, randint, rng } from '../../helpers.js';

function randomProblem(rand: () => number, causal: boolean, windowed = false): PagedProblem {
  // blocks of 1–17 keys, or longer than the kernel's 64-key tile (a block read as several tiles)
  const BLOCK = rand() < 0.25 ? randint(rand, 60, 80) : randint(rand, 1, 17);
  const [B, Hkv, G, T] = [randint(rand, 1, 4), randint(rand, 1, 3), randint(rand, 1, 5), randint(rand, 1, 9)];
  const [D, Dv] = [4 * randint(rand, 1, 10), 4 * randint(rand, 1, 10)];
  const lens = Array.from({ length: B }, () => randint(rand, T, BLOCK > 17 ? 200 : 90));
  const numBlocks = lens.reduce((n, S) => n + Math.ceil(S / BLOCK), 0) + 5;
  const fill = (n: number) => { const a = kernelFloats(n); for (let i = 0; i < n; i++) a[i] = 2 * rand() - 1; return a; };
  const pool = { blockSize: BLOCK, Hkv, D, Dv, k: fill(numBlocks * Hkv * BLOCK * D), v: fill(numBlocks * Hkv * BLOCK * Dv) };
  const free = [...Array(numBlocks).keys()].sort(() => rand() - 0.5);
  const blockTables = lens.map((S) => Array.from({ length: Math.ceil(S / BLOCK) }, () => free.pop()!));
  const q = Float32Array.from({ length: B * Hkv * G * T * D }, () => 2 * rand() - 1);
  const window = windowed ? randint(rand, 1, 70) : null; // keys j > i − window (sometimes every key the row has)
  const softcap = windowed && rand() < 0.5 ? 0.5 + 10 * rand() : 0; // Gemma 2's soft-capping with some of the windows
  return { q, B, Hq: Hkv * G, T, scale: 0.3 + rand(), softcap, causal, window, blockTables, seqLens: lens, pool };
}

// row b's keys or values gathered through its block table, [1, Hkv, S, d]
function gather(p: PagedProblem, b: number, src: Float32Array, d: number): Tensor {
  const { Hkv, blockSize: BLOCK } = p.pool;
  const S = p.seqLens[b];
  const dst = new Float32Array(Hkv * S * d);
  for (let h = 0; h < Hkv; h++) for (let j = 0; j < S; j++) {
    const slot = (p.blockTables[b][Math.floor(j / BLOCK)] * Hkv + h) * BLOCK + (j % BLOCK);
    dst.set(src.subarray(slot * d, (slot + 1) * d), (h * S + j) * d);
  }
  return Tensor.from(dst, [1, Hkv, S, d]);
}

// the SIMD kernel's out and lse on p against the TypeScript paged kernel's; returns the SIMD result
function againstTypeScript(p: PagedProblem, label: string): ReturnType<typeof sdpaPagedWasm.forward> {
  const r = sdpaPagedWasm.forward(p);
  const ts = sdpaPaged.forward(p);
  assertClose(r.out, ts.out, 1e-5, 1e-5, `${label}: out against the TypeScript kernel`);
  assertClose(r.lse, ts.lse, 1e-5, 1e-5, `${label}: lse against the TypeScript kernel`);
  return r;
}

test('paged-wasm equals dense attention and the TypeScript paged kernel (random shapes and block tables)', () => {
  const rand = rng(7);
  for (let trial = 0; trial < 32; trial++) {
    const p = randomProblem(rand, trial % 3 !== 2, trial % 4 === 3); // every fourth with a sliding window
    assert.equal(pagedKernelFor(p, false).name, 'paged-wasm', 'a float32 pool in kernel memory goes to the SIMD kernel');
    const r = againstTypeScript(p, `trial ${trial}`);
    const { Hq, T, pool } = p;
    p.seqLens.forEach((_, b) => {
      const q = Tensor.from(p.q.slice(b * Hq * T * pool.D, (b + 1) * Hq * T * pool.D), [1, Hq, T, pool.D]);
      const want = attention(q, gather(p, b, pool.k as Float32Array, pool.D), gather(p, b, pool.v as Float32Array, pool.Dv), {
        scale: p.scale, causal: p.causal ? 'bottom-right' : undefined, window: p.window ? [p.window - 1, Infinity] : undefined,
        softcap: p.softcap || undefined,
      });
      const rowOut = r.out.subarray(b * Hq * T * pool.Dv, (b + 1) * Hq * T * pool.Dv);
      assertClose(rowOut, want.out, 1e-5, 1e-4, `trial ${trial} row ${b}: out against dense attention`);
    });
  }
});

test('a key padding mask: paged-wasm masks each row\'s own keys as the TypeScript kernel does (rows all padding, short masks)', () => {
  const rand = rng(11);
  for (let trial = 0; trial < 32; trial++) {
    // f32 pools, and int8 ones (their tiles widened into scratch before the mask) in every fourth trial
    const p = trial % 4 === 2 ? int8Problem(rand, true, trial % 8 === 2) : randomProblem(rand, trial % 3 !== 2, trial % 4 === 3);
    // each key padding with probability 1/3; row 0 of every fourth trial all padding; a mask row shorter than its keys
    // (the rest padding) in every fifth
    const keyMask = p.seqLens.map((S, b) => Array.from({ length: trial % 5 === 4 && b === 0 ? S - 1 : S },
      () => (trial % 4 === 0 && b === 0 ? 0 : rand() < 1 / 3 ? 0 : 1)));
    const masked = { ...p, keyMask };
    assert.equal(pagedKernelFor(masked, false).name, 'paged-wasm', `trial ${trial}`);
    againstTypeScript(masked, `trial ${trial} padded`);
  }
});

test('the dispatcher gives paged-wasm only what it covers', () => {
  const p = randomProblem(rng(3), true);
  const plain = { ...p.pool, k: Float32Array.from(p.pool.k), v: Float32Array.from(p.pool.v) };
  assert.equal(pagedKernelFor({ ...p, pool: plain }, false).name, 'paged', 'a pool outside kernel memory');
  assert.equal(pagedKernelFor({ ...p, window: 4 }, false).name, 'paged-wasm', 'a sliding window: the SIMD kernel too');
  // a window wider than the job's i32 word holds reads every key; one that is not a positive integer is the TypeScript kernel's
  assert.equal(pagedKernelFor({ ...p, window: 2 ** 31 }, false).name, 'paged-wasm');
  assertClose(pagedAttention({ ...p, window: 2 ** 31 }).out, sdpaPaged.forward(p).out, 1e-5, 1e-5, 'window 2^31: every key');
  for (const window of [1.5, -3]) assert.equal(pagedKernelFor({ ...p, window }, false).name, 'paged', `window ${window}`);
  assert.equal(pagedKernelFor({ ...p, softcap: 30 }, false).name, 'paged-wasm', 'soft-capping: the SIMD kernel too');
  assertClose(pagedAttention({ ...p, softcap: 3 }).out, sdpaPaged.forward({ ...p, softcap: 3 }).out, 1e-5, 1e-5, 'soft-capping 3');
  assert.equal(pagedKernelFor({ ...p, softcap: -2 }, false).name, 'paged', 'a negative softcap: the TypeScript kernel\'s');
  assert.equal(pagedKernelFor(p, true).name, 'paged', 'attention weights asked for');
  // through the public function both agree
  assertClose(pagedAttention(p).out, pagedAttention({ ...p, pool: plain }).out, 1e-5, 1e-5, 'public pagedAttention');
});

test('a PagedKVCache keeps float32 pools in kernel memory, so decoding over it runs the SIMD kernel', () => {
  const cache = new PagedKVCache(1, { blockSize: 4, numBlocks: 8, maxBlocks: 8 });
  const k = Tensor.from(Float32Array.from({ length: 2 * 6 * 8 }, (_, i) => Math.sin(i)), [1, 2, 6, 8]);
  const view = cache.store(0, { k, v: k });
  assert.equal(view.kind, 'paged');
  if (view.kind !== 'paged') return;
  const q = Float32Array.from({ length: 4 * 8 }, (_, i) => Math.cos(i));
  const p: PagedProblem = { q, B: 1, Hq: 4, T: 1, scale: 0.35, softcap: 0, causal: true, window: null, ...view };
  assert.equal(pagedKernelFor(p, false).name, 'paged-wasm');
  assertClose(sdpaPagedWasm.forward(p).out, sdpaPaged.forward(p).out, 1e-5, 1e-5, 'cache view');
  cache.release();
});

test('paged-wasm refuses block tables that point outside the pool or rows longer than their blocks', () => {
  const p = randomProblem(rng(11), true);
  const blocks = p.pool.k.length / (p.pool.Hkv * p.pool.blockSize * p.pool.D);
  const bad = p.blockTables.map((t, b) => (b === 0 ? [blocks + 3, ...t.slice(1)] : t));
  assert.throws(() => sdpaPagedWasm.forward({ ...p, blockTables: bad }), /row 0's block 0 is \d+; the pool has blocks 0\.\.\d+/);
  const long = p.seqLens.map((S, b) => (b === 0 ? p.blockTables[0].length * p.pool.blockSize + 1 : S));
  assert.throws(() => sdpaPagedWasm.forward({ ...p, seqLens: long }), /row 0 has seqLen \d+; it needs ≥ T=\d+ and ≤ \d+/);
});

// the same problem with an int8 pool in the kernels' memory: values in [−127, 127], a scale per slot
function int8Problem(rand: () => number, causal: boolean, windowed = false): PagedProblem {
  let p = randomProblem(rand, causal, windowed);
  while (p.pool.D % 16 !== 0 || p.pool.Dv % 16 !== 0) p = randomProblem(rand, causal, windowed);
  const bytes = (n: number) => { const a = kernelMatrix('int8', n) as Int8Array; for (let i = 0; i < n; i++) a[i] = randint(rand, -127, 127); return a; };
  const scales = (n: number) => { const a = kernelFloats(n); for (let i = 0; i < n; i++) a[i] = 0.001 + 0.02 * rand(); return a; };
  const slots = p.pool.k.length / p.pool.D;
  const pool = { ...p.pool, k: bytes(slots * p.pool.D), v: bytes(slots * p.pool.Dv), kScale: scales(slots), vScale: scales(slots) };
  return { ...p, pool };
}

test('int8 pools: paged-wasm widens each tile and equals the TypeScript paged kernel (random shapes and block tables)', () => {
  const rand = rng(17);
  for (let trial = 0; trial < 16; trial++) {
    const p = int8Problem(rand, trial % 3 !== 2, trial % 4 === 3);
    assert.equal(pagedKernelFor(p, false).name, 'paged-wasm', 'an int8 pool in kernel memory goes to the SIMD kernel');
    againstTypeScript(p, `trial ${trial}`);
  }
  // what it does not take: int8 outside kernel memory, or a head size that is not a multiple of 16
  const p = int8Problem(rng(5), true);
  const plain = { ...p.pool, k: Int8Array.from(p.pool.k), v: Int8Array.from(p.pool.v) };
  assert.equal(pagedKernelFor({ ...p, pool: plain }, false).name, 'paged');
  assertClose(pagedAttention({ ...p, pool: plain }).out, pagedAttention(p).out, 1e-5, 1e-5, 'public pagedAttention, int8');
});

test('an Int8KVCache keeps its int8 pools and scales in kernel memory: decoding over it runs the SIMD kernel', () => {
  const cache = new Int8KVCache(1, { blockSize: 4, numBlocks: 2 });
  const k = Tensor.from(Float32Array.from({ length: 2 * 11 * 16 }, (_, i) => Math.sin(i)), [1, 2, 11, 16]);
  const view = cache.store(0, { k, v: k }); // 11 tokens: the pool grows from 2 blocks to 4
  assert.equal(view.kind, 'paged');
  if (view.kind !== 'paged') return;
  const q = Float32Array.from({ length: 4 * 16 }, (_, i) => Math.cos(i));
  const p: PagedProblem = { q, B: 1, Hq: 4, T: 1, scale: 0.25, softcap: 0, causal: true, window: null, ...view };
  assert.equal(pagedKernelFor(p, false).name, 'paged-wasm');
  assertClose(sdpaPagedWasm.forward(p).out, sdpaPaged.forward(p).out, 1e-5, 1e-5, 'int8 cache view');
  cache.release();
});

test('an f16 pool: the SIMD kernel reads it as f16, bit for bit its answer over an f32 pool of the same values; TypeScript widens it', () => {
  const rand = rng(16);
  for (let trial = 0; trial < 16; trial++) {
    const p32 = randomProblem(rand, trial % 3 !== 2, trial % 4 === 3);
    const [k, v] = [p32.pool.k as Float32Array, p32.pool.v as Float32Array];
    const [k16, v16] = [kernelHalves(k.length), kernelHalves(v.length)];
    for (let i = 0; i < k.length; i++) { k16[i] = f32ToF16(k[i]); k[i] = f16ToF32(k16[i]); }
    for (let i = 0; i < v.length; i++) { v16[i] = f32ToF16(v[i]); v[i] = f16ToF32(v16[i]); }
    const p16 = { ...p32, pool: { ...p32.pool, k: k16, v: v16 } };
    assert.equal(pagedKernelFor(p16, false).name, 'paged-wasm', 'an f16 pool in kernel memory goes to the SIMD kernel');
    const [a, b] = [sdpaPagedWasm.forward(p16), sdpaPagedWasm.forward(p32)];
    assertClose(a.out, b.out, 0, 0, `trial ${trial}: out`);
    assertClose(a.lse, b.lse, 0, 0, `trial ${trial}: lse`);
    const ts = sdpaPaged.forward(p16);
    assertClose(ts.out, b.out, 1e-5, 1e-5, `trial ${trial}: the TypeScript kernel over the f16 pool`);
    // q · 2^112 would overflow: the TypeScript kernel takes it
    const big = { ...p16, q: p16.q.map((x, i) => (i === 0 ? 1e5 : x)) };
    assert.equal(pagedKernelFor(big, false).name, 'paged');
    assertClose(pagedAttention(big).out, pagedAttention({ ...big, pool: p32.pool }).out, 1e-5, 1e-5, `trial ${trial}: large q`);
  }
});

test('PagedKVCache float16: half the bytes of float32; a value f16 cannot hold widens the layer\'s pool to f32 for good', () => {
  const rand = rng(3);
  const [c16, c32] = [new PagedKVCache(2, { blockSize: 4, dtype: 'float16' }), new PagedKVCache(2, { blockSize: 4 })];
  const kv = (x: number) => Tensor.from(Float32Array.from({ length: 2 * 8 }, (_, i) => (i === 3 ? x : 2 * rand() - 1)), [1, 2, 1, 8]);
  for (const c of [c16, c32]) { c.store(0, { k: kv(0.5), v: kv(0.25) }); c.store(1, { k: kv(0.5), v: kv(0.25) }); }
  assert.equal(c16.bytes() * 2, c32.bytes());
  const view = c16.store(0, { k: kv(1e6), v: kv(0.5) });
  assert.ok(view.kind === 'paged' && view.pool.k instanceof Float32Array && view.pool.v instanceof Float32Array, 'layer 0 widened');
  assert.equal(view.pool.k[(view.blockTables[0][0] * 2 + 0) * 4 * 8 + 8 + 3], 1e6, 'the value kept');
  const other = c16.store(1, { k: kv(1), v: kv(1) });
  assert.ok(other.kind === 'paged' && other.pool.k instanceof Uint16Array, 'layer 1 still f16');
  assert.throws(() => new PagedKVCache(1, { dtype: 'bfloat16' as never }), /dtype must be 'float32', 'int8' or 'float16', got "bfloat16"/);
  c16.release();
  c32.release();
});
