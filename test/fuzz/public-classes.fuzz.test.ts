// qkv's exported classes called from JavaScript, where nothing checks the types: working instances of each (caches,
// modules, quantized matrices, the tokenizer, the batch engine) get every public method called with seeded random
// arguments — numbers (NaN, negative, fractional), strings, null, undefined, lists, objects, functions, symbols,
// BigInts, tensors and typed arrays of several shapes, store requests — and every constructor gets random arguments
// too. Each call must answer with a result or a QkvError naming what was wrong, never a raw TypeError or RangeError.
// A first run found ~100 raw errors in ~30 classes (and a GpuTensor whose finalizer then ended the process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as qkv from '../../src/index.js';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import { DEFAULT_MODEL_DIR } from '../../src/node/default-model.js';
import { fuzzSeed, rng } from '../helpers.js';

const CALLS = 6000;
type Instance = Record<string, unknown>;

/** Working instances, one or more per class, built the documented way. */
function instances(rand: () => number): [string, Instance][] {
  const t = (shape: number[]) => qkv.Tensor.from(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() - 0.5), shape);
  const enc = qkv.randomEncoderLayer(8, 2, 16, 1);
  const ck = loadCheckpoint(DEFAULT_MODEL_DIR);
  const gat = { heads: 2, outChannels: 3 };
  const list: [string, unknown][] = [
    ['ContiguousKVCache', new qkv.ContiguousKVCache(2)], ['PagedKVCache', new qkv.PagedKVCache(2, { numBlocks: 4, blockSize: 4 })],
    ['Int8KVCache', new qkv.Int8KVCache(2)], ['SlidingWindowKVCache', new qkv.SlidingWindowKVCache(2, 3)],
    ['SinkKVCache', new qkv.SinkKVCache(2, 1, 2)], ['BlockAllocator', new qkv.BlockAllocator(4, 8)],
    ['Linear', new qkv.Linear(t([3, 4]), t([3]))], ['LearnedPositionalEmbedding', new qkv.LearnedPositionalEmbedding(t([8, 4]))],
    ['MultiheadAttention', enc.selfAttn], ['TransformerEncoderLayer', enc], ['LayerNorm', new qkv.LayerNorm(t([8]), t([8]))],
    ['RMSNorm', new qkv.RMSNorm(t([8]))], ['MLP', new qkv.MLP(t([16, 8]), null, t([8, 16]), null)],
    ['SwiGLU', new qkv.SwiGLU(t([16, 8]), t([16, 8]), t([8, 16]))], ['LinearAttentionState', new qkv.LinearAttentionState(2, 3)],
    ['GATConv', new qkv.GATConv(gat, t([6, 4]), t([1, 2, 3]), t([1, 2, 3]), null)],
    ['GATv2Conv', new qkv.GATv2Conv(gat, t([6, 4]), null, t([6, 4]), null, t([1, 2, 3]), null)],
    ['Rng', new qkv.Rng(3)], ['Int8Matrix', qkv.Int8Matrix.quantize(t([3, 32]))], ['Int4Matrix', qkv.Int4Matrix.quantize(t([3, 32]))],
    ['Weights', ck.weights], ['Tokenizer', ck.tokenizer],
    ['BatchEngine', new qkv.BatchEngine(ck.model as qkv.CausalLM, { kvBlocks: 16, maxBatch: 4 })],
    ['ContinuousBatcher', new qkv.ContinuousBatcher(ck.model as qkv.CausalLM, { maxBlocks: 16 })],
  ];
  return list.map(([n, o]) => [n, o as Instance]);
}

// Protected in TypeScript: the paged caches' hooks for their subclasses (ES private methods cannot be inherited). Private
// methods are ES private (#name), which JavaScript cannot call.
const PROTECTED = new Set(['seq', 'place', 'slot', 'copyBlock', 'growPools']);

/** The methods of an instance, inherited ones too (its class's and its base classes'), as JavaScript sees them. */
function methodsOf(o: object): string[] {
  const names = new Set<string>();
  for (let p = Object.getPrototypeOf(o) as object | null; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    for (const m of Object.getOwnPropertyNames(p)) {
      if (m !== 'constructor' && !PROTECTED.has(m) && typeof Object.getOwnPropertyDescriptor(p, m)?.value === 'function') names.add(m);
    }
  }
  return [...names];
}

test(`${CALLS} calls of the exported classes' methods and constructors with arguments of any type: a result or a QkvError`, async () => {
  const rand = rng(fuzzSeed(2027));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const t = (shape: number[]) => qkv.Tensor.from(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() - 0.5), shape);
  const objects = instances(rand);
  const classes = Object.entries(qkv).filter(([k, v]) => typeof v === 'function' && /^[A-Z]/.test(k) && !/Error$/.test(k) && k !== 'Tensor');
  const values = () => pick<unknown>([0, -1, 1, 2, 3, 0.5, NaN, 1e9, '', 'x', null, undefined, true, [], [1], [2, 3], [[1, 0]], {}, { numBlocks: 2 },
    () => 0, Symbol('s'), 10n, t([1, 2, 3, 4]), t([1, 1, 1, 2]), t([3, 4]), t([2, 8]), t([4, 6]), new Float32Array(4), new Int8Array(64),
    { k: t([1, 2, 1, 4]), v: t([1, 2, 1, 4]) }, { k: t([1, 1, 2, 2]), v: 5 }, { k: t([1, 2, 1, 4]), v: t([1, 2, 1, 4]), keyMask: 'x' },
    { k: t([1, 2, 1, 4]), v: t([1, 2, 1, 4]), slidingWindow: -1 }, [1, 2, 3], ['a'], [{ role: 'user', content: 'hi' }], new qkv.Rng(1)]);
  const show = (a: unknown) => (a instanceof qkv.Tensor ? `Tensor[${a.shape}]` : typeof a === 'function' ? 'fn' : typeof a === 'object' && a ? 'object' : String(a));
  const findings = new Set<string>();
  const call = async (label: string, f: () => unknown, args: unknown[]) => {
    const found = (e: unknown) => {
      if (!(e instanceof qkv.QkvError)) findings.add(`${label}(${args.map(show).join(', ')}): ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    };
    try {
      const r = f();
      // a promise may wait for the engine to admit it: its rejection is checked whenever it comes
      if (r instanceof Promise) await Promise.race([r.catch(found), new Promise((ok) => setTimeout(ok, 0))]);
    } catch (e) {
      found(e);
    }
  };
  for (let c = 0; c < CALLS; c++) {
    const args = Array.from({ length: Math.floor(rand() * 4) }, values);
    if (rand() < 0.3) {
      const [name, C] = pick(classes);
      await call(`new ${name}`, () => new (C as new (...a: unknown[]) => unknown)(...args), args);
      continue;
    }
    const [name, o] = pick(objects);
    const m = pick(methodsOf(o));
    await call(`${name}.${m}`, () => (o[m] as (...a: unknown[]) => unknown)(...args), args);
  }
  if (process.env.QKV_FUZZ_ALL) console.log([...findings].sort().join('\n'));
  assert.deepEqual([...findings].slice(0, 12), [], `${findings.size} raw errors`);
});

test('what the class fuzz found: store requests checked, a cache refuses keys of another shape, internals unreachable', () => {
  const t = (shape: number[]) => qkv.Tensor.from(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5), shape);
  const req = (shape: number[]) => ({ k: t(shape), v: t(shape) });
  const refuses = (f: () => unknown, message: RegExp) => assert.throws(f, (e: unknown) => e instanceof qkv.QkvError && message.test(e.message), String(message));
  // a request that is not one: a QkvError naming it (a TypeError before)
  refuses(() => new qkv.ContiguousKVCache(2).store(0, undefined as never), /ContiguousKVCache.store: the request must be an object/);
  refuses(() => new qkv.PagedKVCache(2).store(0, { k: t([1, 1, 1, 4]), v: 5 } as never), /PagedKVCache.store: v must be a Tensor/);
  refuses(() => new qkv.SinkKVCache(2).store(2, req([1, 1, 1, 4])), /SinkKVCache.store: layer must be an integer in \[0, 1\], got 2/);
  refuses(() => new qkv.SlidingWindowKVCache(2, 4).store(0, { ...req([1, 1, 1, 4]), keyMask: 'x' } as never), /keyMask must be 1 rows/);
  // keys of another shape into a layer that holds some: refused (the sliding and sinks caches had read them wrongly)
  const sliding = new qkv.SlidingWindowKVCache(1, 4);
  sliding.store(0, req([1, 2, 1, 4]));
  refuses(() => sliding.store(0, req([1, 1, 2, 8])), /sliding cache: layer 0 holds \[B=1, Hkv=2, W=4, D=4, Dv=4\]/);
  const sinks = new qkv.SinkKVCache(1, 1, 2);
  sinks.store(0, req([1, 2, 1, 4]));
  refuses(() => sinks.store(0, req([1, 4, 1, 2])), /sinks cache: layer 0 holds \[Hkv=2, D=4, Dv=4\]/);
  // private methods are ES private: JavaScript cannot reach them (the paged cache's pool(1e9, …) had grown an array to
  // a billion entries and ended the process out of memory)
  const paged = new qkv.Int8KVCache(2) as unknown as Record<string, unknown>;
  assert.equal(paged.pool, undefined);
  assert.equal((new qkv.ContiguousKVCache(1) as unknown as Record<string, unknown>).grow, undefined);
  // modules and matrices built by hand
  refuses(() => new qkv.Linear(null as never), /Linear: weight must be a weight/);
  refuses(() => new qkv.GATConv({ heads: 2, outChannels: 3 }, t([6, 4]), t([1, 2, 2]), t([1, 2, 3]), null), /GATConv: attSrc must be \[1, 2, 3\]/);
  refuses(() => new qkv.LinearAttentionState(-1, 2), /LinearAttentionState: D must be an integer in \[1, 65536\], got -1/);
  refuses(() => new qkv.LinearAttentionState(2, 2).push(new Float32Array(2), 1, new Float32Array(2), 0), /k's offset must be an integer in \[0, 0\]/);
  refuses(() => new qkv.Int4Matrix(null as never, new Float32Array(1), [1, 32]), /Int4Matrix: q must be a Uint8Array, got null/);
  refuses(() => new qkv.F16Matrix(new Uint16Array(4), 'x' as never), /F16Matrix: shape must be \[rows, cols\]/);
  refuses(() => qkv.Int8Matrix.quantize(t([2, 16])).row(2, new Float32Array(16)), /Int8Matrix.row: j must be an integer in \[0, 1\], got 2/);
  refuses(() => new qkv.TransformerEncoderLayer(null as never, null as never, null as never, null as never), /selfAttn must be an object with a forward\(\) method/);
  refuses(() => new qkv.Rng(Symbol('s') as never), /Rng: seed must be a finite number, got symbol/);
});

// a hang guard, not a speed assertion: before the fix linearAttention over these shapes took 213 s, performer 235 s
test('empty tensors that name many rows: answered at once (no loop over rows that hold nothing); absurd spans refused', { timeout: 60_000 }, () => {
  const empty = (shape: number[]) => qkv.Tensor.from(new Float32Array(0), shape);
  const [q, k, v] = [empty([1e8, 1, 0, 4]), empty([1e8, 1, 0, 4]), empty([1e8, 1, 0, 4])];
  assert.deepEqual(qkv.attention(q, k, v, { returnWeights: true }).out.shape, [1e8, 1, 0, 4]);
  assert.deepEqual(qkv.attentionBackward(q, k, v, q).dk.shape, [1e8, 1, 0, 4]);
  assert.deepEqual(qkv.linearAttention(q, k, v).shape, [1e8, 1, 0, 4]);
  assert.deepEqual(qkv.performerAttention(q, k, v, { features: 4 }).shape, [1e8, 1, 0, 4]);
  assert.deepEqual(qkv.applyRope(q, { base: 10000 }).shape, [1e8, 1, 0, 4]);
  assert.throws(() => new qkv.PagedKVCache(1).store(0, { k: q, v }), /every size ≥ 1, got k \[100000000, 1, 0, 4\]/);
  assert.throws(() => empty([2 ** 40, 0]), /shape \[1099511627776, 0\] spans 1099511627776 elements counting empty dimensions as 1; at most 2\^32/);
});
