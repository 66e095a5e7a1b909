// KV-cache strategies against the contiguous baseline: paged gives the same tokens, sliding the same tokens under the
// same window mask, int8 agrees on ≥ 99% of 256 teacher-forced greedy tokens; sinks equal contiguous until they evict
// and then run past the model's context. The paged kernel equals dense attention on random block tables.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  attention, ContiguousKVCache, greedy, Int8KVCache, PagedKVCache, SinkKVCache, SlidingWindowKVCache, Tensor, generate,
  type CausalLM, type KVCache,
} from '../../../src/index.js';
import { pagedAttention } from '../../../src/attention/paged.js';
import { cachedAttention, gatherPaged } from '../../../src/models/attention-layer.js';
import { loadCheckpoint } from '../../../src/node/checkpoint.js';
import { assertClose, randint, randn, rng } from '../../helpers.js';
import { kernelOffset } from '../../../src/kernels/wasm/storage.js';
import { GOLDEN_MODELS, TINY } from '../../models/helpers.js';

/** Greedy ids with a given cache (no eos stop). */
function greedyWith(model: CausalLM, prompt: number[], n: number, cache: KVCache): number[] {
  const out: number[] = [];
  let logits = model.forward([prompt], { cache, lastOnly: true }).logits.toFloat32();
  for (let s = 0; s < n; s++) {
    let best = 0;
    for (let v = 1; v < logits.length; v++) if (logits[v] > logits[best]) best = v;
    out.push(best);
    logits = model.forward([[best]], { cache, lastOnly: true }).logits.toFloat32();
  }
  return out;
}

const tiny = loadCheckpoint(TINY);
const tinyModel = tiny.model as CausalLM;
const tinyPrompt = tiny.tokenizer!.encode('The Zen of Python');

describe('paged cache', () => {
  test('paged attention through random block tables equals dense attention', () => {
    const rand = rng(1);
    for (let trial = 0; trial < 10; trial++) {
      const [B, Hkv, G, D, BLOCK, T] = [randint(rand, 1, 3), randint(rand, 1, 2), randint(rand, 1, 3), randint(rand, 1, 9), randint(rand, 1, 5), randint(rand, 1, 3)];
      const lens = Array.from({ length: B }, () => randint(rand, T, 23));
      const numBlocks = 40;
      const pool = { blockSize: BLOCK, Hkv, D, Dv: D, k: randn([numBlocks * Hkv * BLOCK * D], rand).toFloat32(), v: randn([numBlocks * Hkv * BLOCK * D], rand).toFloat32() };
      const free = [...Array(numBlocks).keys()].sort(() => rand() - 0.5);
      const tables = lens.map((S) => Array.from({ length: Math.ceil(S / BLOCK) }, () => free.pop()!));
      const q = randn([B, Hkv * G, T, D], rand);
      const window = trial % 2 ? randint(rand, 1, 8) : null;
      const r = pagedAttention({ q: q.toFloat32(), B, Hq: Hkv * G, T, scale: 0.4, softcap: 0, causal: true, window, blockTables: tables, seqLens: lens, pool });
      lens.forEach((S, b) => {
        // gather row b's keys and values by hand, then run the dense kernel
        const gather = (src: Float32Array) => {
          const dst = new Float32Array(Hkv * S * D);
          for (let h = 0; h < Hkv; h++) for (let j = 0; j < S; j++) {
            const slot = (tables[b][Math.floor(j / BLOCK)] * Hkv + h) * BLOCK + (j % BLOCK);
            dst.set(src.subarray(slot * D, (slot + 1) * D), (h * S + j) * D);
          }
          return Tensor.from(dst, [1, Hkv, S, D]);
        };
        const want = attention(q.slice(0, b, b + 1).contiguous(), gather(pool.k), gather(pool.v), { scale: 0.4, causal: 'bottom-right', window: window ? [window - 1, 0] : undefined });
        assertClose(r.out.subarray(b * Hkv * G * T * D, (b + 1) * Hkv * G * T * D), want.out, 1e-5, 1e-4, `trial ${trial} row ${b}`);
      });
    }
  });

  test('qkv-tiny: paged (blocks of 5) gives exactly the tokens of the contiguous cache', () => {
    const want = greedyWith(tinyModel, tinyPrompt, 40, new ContiguousKVCache(4));
    assert.deepEqual(greedyWith(tinyModel, tinyPrompt, 40, new PagedKVCache(4, { blockSize: 5, numBlocks: 2 })), want);
  });

  test('fork shares blocks; the first write copies the shared block (copy-on-write); freed blocks are reused', () => {
    const cache = new PagedKVCache(1, { blockSize: 4, numBlocks: 8, maxBlocks: 8 });
    const layer = (T: number, seed: number) => ({ q: randn([1, 2, T, 4], rng(seed)), k: randn([1, 1, T, 4], rng(seed + 1)), v: randn([1, 1, T, 4], rng(seed + 2)), scale: 0.5, causal: true });
    cache.batch = [0];
    cachedAttention(cache, 0, layer(6, 10)); // sequence 0: 6 tokens = blocks [a, b(half full)]
    cache.fork(0, 1);
    const [a, b] = cache.blockTable(0);
    assert.deepEqual(cache.blockTable(1), [a, b]);
    assert.equal(cache.allocator.refCount(b), 2);
    cache.batch = [1];
    cachedAttention(cache, 0, layer(1, 20)); // child appends into the shared half-full block → copy
    const child = cache.blockTable(1);
    assert.notEqual(child[1], b, 'the shared block was copied before the write');
    assert.equal(child[0], a, 'the full first block stays shared');
    assert.equal(cache.allocator.refCount(b), 1);
    assert.equal(cache.allocator.refCount(a), 2);
    assert.equal(cache.seqLength(0), 6);
    assert.equal(cache.seqLength(1), 7);
    // free the child: its private block returns to the free list and is the next one handed out
    cache.free(1);
    assert.equal(cache.allocator.refCount(a), 1);
    const reused = cache.allocator.allocate();
    assert.equal(reused, child[1]);
  });

  test('running out of blocks is a clear error, and the sequence is left as it was', () => {
    const cache = new PagedKVCache(1, { blockSize: 2, numBlocks: 2, maxBlocks: 2 });
    const call = (T: number) => ({ q: randn([1, 1, T, 2], rng(T)), k: randn([1, 1, T, 2], rng(T + 1)), v: randn([1, 1, T, 2], rng(T + 2)), scale: 1, causal: true });
    cachedAttention(cache, 0, call(3));
    const table = cache.blockTable(0);
    assert.throws(() => cachedAttention(cache, 0, call(2)), (e: Error) => e.name === 'OutOfBlocksError' && /all 2 blocks are in use \(1 more needed, 0 free\)/.test(e.message));
    assert.deepEqual(cache.blockTable(0), table);
    assert.equal(cache.seqLength(0), 3);
    assert.equal(cache.allocator.freeBlocks, 0);
  });
});

describe('paged and sliding caches on the golden models', () => {
  for (const family of ['gpt2', 'llama', 'qwen2', 'mistral', 'gemma2']) {
    test(`${family}: paged = contiguous (greedy tokens)`, () => {
      const model = loadCheckpoint(join(GOLDEN_MODELS, family), { tokenizer: false }).model as CausalLM;
      const prompt = Array.from({ length: 11 }, (_, t) => (t * 29 + 3) % model.info.vocabSize);
      const want = greedyWith(model, prompt, 30, new ContiguousKVCache(model.info.numLayers));
      assert.deepEqual(greedyWith(model, prompt, 30, new PagedKVCache(model.info.numLayers, { blockSize: 3 })), want);
    });
  }
  for (const family of ['mistral', 'gemma2']) {
    test(`${family}: the sliding-window ring buffer = contiguous under the trained window (past the window)`, () => {
      const model = loadCheckpoint(join(GOLDEN_MODELS, family), { tokenizer: false }).model as CausalLM;
      const prompt = Array.from({ length: 13 }, (_, t) => (t * 31 + 5) % model.info.vocabSize);
      const sliding = new SlidingWindowKVCache(model.info.numLayers);
      const want = greedyWith(model, prompt, 40, new ContiguousKVCache(model.info.numLayers));
      assert.deepEqual(greedyWith(model, prompt, 40, sliding), want);
    });
  }
});

describe('sliding, int8 and sink caches on qkv-tiny', () => {
  test('sliding window 16 = contiguous with the same window mask; memory stays at 16 tokens', () => {
    const sliding = new SlidingWindowKVCache(4, 16);
    const want = greedyWith(tinyModel, tinyPrompt, 60, new ContiguousKVCache(4, 64, 16));
    assert.deepEqual(greedyWith(tinyModel, tinyPrompt, 60, sliding), want);
    assert.equal(sliding.bytes(), 4 * 2 * 2 * 16 * 32 * 4); // layers × (k, v) × Hkv × W × D × 4 bytes
  });

  test('sliding: a padded batch, a prefill chunk then decode steps past the window, equals the contiguous cache under the window', () => {
    // the decode steps read the ring where it lies, in slot order (the padding mask put in that order); a chunk reads
    // its keys in position order
    const rand = rng(21);
    const [B, Hkv, G, D, W] = [2, 2, 2, 8, 5];
    const [sliding, contiguous] = [new SlidingWindowKVCache(1, W), new ContiguousKVCache(1, 64, W)];
    const pad = [[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]]; // row 0 left-padded by two
    const mask = (n: number) => pad.map((row) => [...row, ...Array(Math.max(0, n - row.length)).fill(1)].slice(0, n));
    let seen = 0;
    for (const T of [6, 1, 1, 1, 1, 1, 1, 1, 3, 1, 1]) {
      const [q, k, v] = [randn([B, Hkv * G, T, D], rand), randn([B, Hkv, T, D], rand), randn([B, Hkv, T, D], rand)];
      seen += T;
      const call = { q, k, v, scale: 0.3, causal: true, keyMask: mask(seen) };
      const [a, b] = [cachedAttention(sliding, 0, call), cachedAttention(contiguous, 0, call)];
      assertClose(a.out, b.out, 1e-6, 1e-5, `after ${seen} tokens`);
    }
    // a decode step's view is the ring itself, in the kernels' storage: read in place, never copied
    const view = sliding.store(0, { k: randn([B, Hkv, 1, D], rand), v: randn([B, Hkv, 1, D], rand) });
    assert.equal(view.kind === 'dense' && view.k.shape[2], W);
    assert.ok(view.kind === 'dense' && kernelOffset(view.k.data) !== null, 'the ring lies in the kernels\' storage');
  });

  test('int8 agrees with the contiguous cache on ≥ 99% of 256 teacher-forced greedy tokens, at ~¼ the memory', () => {
    const ref = new ContiguousKVCache(4, 512);
    const q8 = new Int8KVCache(4, { blockSize: 32 });
    let [a, b] = [tinyModel.forward([tinyPrompt], { cache: ref, lastOnly: true }).logits.toFloat32(), tinyModel.forward([tinyPrompt], { cache: q8, lastOnly: true }).logits.toFloat32()];
    let agree = 0;
    for (let n = 0; n < 256; n++) {
      const next = a.indexOf(Math.max(...a));
      if (b.indexOf(Math.max(...b)) === next) agree++;
      [a, b] = [tinyModel.forward([[next]], { cache: ref, lastOnly: true }).logits.toFloat32(), tinyModel.forward([[next]], { cache: q8, lastOnly: true }).logits.toFloat32()];
    }
    assert.ok(agree >= 254, `agreement ${agree}/256`);
    const { usedBytes } = q8.usage();
    assert.ok(usedBytes < 0.3 * (256 + tinyPrompt.length) * 4 * 2 * 2 * 32 * 4, `int8 uses ${usedBytes} bytes`);
  });

  test('sinks: each view holds the first `sinks` tokens, then the last `window` oldest first, then the new ones (any step sizes)', () => {
    // every key and value holds its stream position, so a view's order can be read off it
    const [H, D, sinks, window] = [2, 4, 3, 5];
    const cache = new SinkKVCache(1, sinks, window);
    let seen = 0;
    for (const T of [2, 1, 1, 4, 1, 1, 9, 1, 1, 1, 6, 1]) {
      const kv = Tensor.from(Float32Array.from({ length: H * T * D }, (_, x) => seen + Math.floor(x / D) % T + 100 * Math.floor(x / (T * D))), [1, H, T, D]);
      const view = cache.store(0, { k: kv, v: kv });
      assert.equal(view.kind, 'dense');
      if (view.kind !== 'dense') return;
      const kept = [...Array(Math.min(seen, sinks)).keys(), ...Array.from({ length: Math.max(0, Math.min(seen - sinks, window)) },
        (_, w) => seen - Math.min(seen - sinks, window) + w)];
      const want = [...kept, ...Array.from({ length: T }, (_, t) => seen + t)];
      const S = want.length;
      const k = view.k.toFloat32(), v = view.v.toFloat32();
      for (let h = 0; h < H; h++) for (let c = 0; c < S; c++) for (let d = 0; d < D; d++) {
        assert.equal(k[(h * S + c) * D + d], want[c] + 100 * h, `after ${seen} tokens, T ${T}: key ${c} of head ${h}`);
        assert.equal(v[(h * S + c) * D + d], want[c] + 100 * h);
      }
      assert.deepEqual(view.positions, { keys: [...Array(S).keys()], queries: Array.from({ length: T }, (_, t) => kept.length + t) });
      seen += T;
    }
    assert.equal(cache.length(0), seen);
    assert.equal(cache.bytes(), 2 * H * (sinks + window) * D * 4); // k and v, every slot, from the first store
  });

  test('sinks equal contiguous until they evict, then generation runs past the model context', async () => {
    assert.deepEqual(greedyWith(tinyModel, tinyPrompt, 30, new SinkKVCache(4, 4, 64)), greedyWith(tinyModel, tinyPrompt, 30, new ContiguousKVCache(4)));
    const golden = loadCheckpoint(join(GOLDEN_MODELS, 'llama'), { tokenizer: false }).model as CausalLM; // context 128
    const cache = new SinkKVCache(golden.info.numLayers, 4, 28);
    const r = await generate(golden, null, [5, 6, 7], { greedy: true, maxTokens: 200, stopTokens: [], cache });
    assert.equal(r.ids.length, 200);
    assert.ok(cache.bytes() <= golden.info.numLayers * 2 * 32 * 2 * 8 * 4);
    await assert.rejects(generate(golden, null, [5, 6, 7], { maxTokens: 200 }), /exceeds the model's context of 128/);
  });
});

test('a paged view gathered into dense tensors gives what paged attention gives (rows of different lengths, int8 too)', () => {
  for (const dtype of ['float32', 'int8'] as const) {
    const rand = rng(dtype === 'int8' ? 71 : 70);
    const [Hkv, G, D, BLOCK, T] = [2, 2, 8, 4, 2];
    const lens = [11, 5, 8];
    const numBlocks = lens.reduce((a, S) => a + Math.ceil(S / BLOCK), 0);
    const kf = randn([numBlocks * Hkv * BLOCK * D], rand).toFloat32();
    const vf = randn([numBlocks * Hkv * BLOCK * D], rand).toFloat32();
    const q8 = (x: Float32Array) => Int8Array.from(x, (a) => Math.round(a * 50));
    const scales = dtype === 'int8' ? Float32Array.from({ length: numBlocks * Hkv * BLOCK }, () => 0.02) : undefined;
    const pool = { blockSize: BLOCK, Hkv, D, Dv: D, k: dtype === 'int8' ? q8(kf) : kf, v: dtype === 'int8' ? q8(vf) : vf, kScale: scales, vScale: scales };
    const free = [...Array(numBlocks).keys()].sort(() => rand() - 0.5);
    const view = { kind: 'paged' as const, pool, blockTables: lens.map((S) => Array.from({ length: Math.ceil(S / BLOCK) }, () => free.pop()!)), seqLens: lens,
      keyMask: lens.map((S) => Array.from({ length: S }, (_, j) => (j === 1 ? 0 : 1))) };
    const q = randn([3, Hkv * G, T, D], rand);
    const paged = pagedAttention({ q: q.toFloat32(), B: 3, Hq: Hkv * G, T, scale: 0.35, softcap: 0, causal: true, window: null, blockTables: view.blockTables, seqLens: lens, keyMask: view.keyMask, pool });
    const dense = gatherPaged(view);
    const S = Math.max(...lens);
    const keep = Tensor.from(dense.keyMask!.flat(), [3, 1, 1, S], 'bool');
    const r = attention(q, dense.k, dense.v, { scale: 0.35, causal: 'bottom-right', mask: keep });
    assertClose(r.out, paged.out, 1e-5, 1e-4, dtype);
  }
});

test('caches refuse what they cannot do, and serve the rest', () => {
  const gpt2Like = { q: randn([1, 1, 1, 2], rng(1)), k: randn([1, 1, 1, 2], rng(2)), v: randn([1, 1, 1, 2], rng(3)), scale: 1, causal: true };
  assert.throws(() => cachedAttention(new SinkKVCache(1), 0, gpt2Like), /attention sinks re-position keys with RoPE/);
  // an additive bias is served by a paged cache too (its view gathered into dense tensors), equal to the contiguous one
  const biased = { ...gpt2Like, bias: Tensor.from([0.7], [1, 1, 1, 1]) };
  assert.deepEqual([...cachedAttention(new PagedKVCache(1), 0, biased).out.toFloat32()], [...cachedAttention(new ContiguousKVCache(1), 0, biased).out.toFloat32()]);
  assert.throws(() => new SlidingWindowKVCache(1, 0), /window must be a positive integer/);
  // a pool past 4 GiB a layer: refused by name at its first store, in every dtype (int8's had been a raw RangeError)
  const kv = { k: randn([1, 8, 1, 128], rng(4)), v: randn([1, 8, 1, 128], rng(5)) };
  for (const dtype of ['float32', 'float16', 'int8'] as const) {
    const big = new PagedKVCache(1, { numBlocks: 2 ** 22, dtype });
    assert.throws(() => big.store(0, kv), /PagedKVCache: a layer's pool of 4194304 blocks × 8 heads × 16 tokens × \(D 128 \+ Dv 128\) takes \d+\.\d GiB; at most 4 GiB: give fewer blocks/);
  }
  assert.throws(() => new PagedKVCache(1, { numBlocks: 2 ** 24 + 1 }), /numBlocks must be an integer in \[1, 16777216\], got 16777217/);
  void greedy;
});
