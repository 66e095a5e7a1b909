// Bad arguments throw a QkvError that names the argument, the expected and the actual shape / dtype / value.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { attention, attentionBackward, QkvError, Tensor } from '../../../src/index.js';
import { randn, rng } from '../../helpers.js';

const rand = rng(1);
const q = randn([2, 8, 5, 16], rand);
const k = randn([2, 2, 7, 16], rand);
const v = randn([2, 2, 7, 12], rand);

function throwsWith(fn: () => unknown, pattern: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof QkvError, `expected a QkvError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('attention argument errors', () => {
  test('rank', () => throwsWith(() => attention(randn([8, 5, 16], rand), k, v), /q must have rank 4 \[batch, heads, seq, head_dim\], got shape \[8, 5, 16\]/));
  test('not a tensor', () => throwsWith(() => attention(q, null as unknown as Tensor, v), /k must be a Tensor, got null/));
  test('Hq not divisible by Hkv', () => throwsWith(() => attention(randn([2, 8, 5, 16], rand), randn([2, 3, 7, 16], rand), randn([2, 3, 7, 12], rand)),
    /k.shape\[1\] \(Hkv=3\) must divide q.shape\[1\] \(Hq=8\)/));
  test('batch mismatch', () => throwsWith(() => attention(q, randn([3, 2, 7, 16], rand), v), /k.shape\[0\] \(batch\) must equal q.shape\[0\] \(3 vs 2\).*shapes q \[2, 8, 5, 16\], k \[3, 2, 7, 16\]/));
  test('head_dim mismatch', () => throwsWith(() => attention(q, randn([2, 2, 7, 15], rand), v), /k.shape\[3\] \(head_dim\) must equal q.shape\[3\] \(15 vs 16\)/));
  test('k and v lengths differ', () => throwsWith(() => attention(q, k, randn([2, 2, 6, 12], rand)), /v.shape\[2\] \(S\) must equal k.shape\[2\] \(6 vs 7\)/));
  test('mismatched dtypes', () => {
    const both = /q, k, v must share one dtype \(or q float32 with k, v of one 16-bit dtype\), got q float32, k float16, v float32/;
    throwsWith(() => attention(q, k.to('float16'), v), both);
    throwsWith(() => attention(q.to('float16'), k, v), /got q float16, k float32, v float32/);
    throwsWith(() => attention(q.to('bfloat16'), k.to('float16'), v.to('float16')), /got q bfloat16, k float16, v float16/);
  });
  test('a float32 q with float16 k, v (a half-precision KV cache): computed in f32 on their values, out in float32', () => {
    const r = attention(q, k.to('float16'), v.to('float16'));
    assert.equal(r.out.dtype, 'float32');
    assert.deepEqual(r.out.toFloat32(), attention(q, k.to('float16').to('float32'), v.to('float16').to('float32')).out.toFloat32());
  });
  test('integer dtype', () => throwsWith(() => attention(Tensor.zeros([1, 1, 1, 1], 'int32'), k, v), /q.dtype must be float32, float16 or bfloat16, got int32/));
  test('negative window', () => throwsWith(() => attention(q, k, v, { window: [-1, 0] }), /window\[0\] \(left\) must be a non-negative integer or Infinity, got -1/));
  test('window not a pair', () => throwsWith(() => attention(q, k, v, { window: [3] as unknown as [number, number] }), /window must be \[left, right\], got \[3\]/));
  test('dilation without window', () => throwsWith(() => attention(q, k, v, { dilation: 2 }), /dilation needs a window/));
  test('bad scale', () => throwsWith(() => attention(q, k, v, { scale: NaN }), /scale must be a finite number, got NaN/));
  test('bad softcap', () => throwsWith(() => attention(q, k, v, { softcap: 0 }), /softcap must be a finite positive number, got 0/));
  test('alibi slopes count', () => throwsWith(() => attention(q, k, v, { alibiSlopes: [1, 2] }), /alibiSlopes has 2 entries, expected one per query head \(Hq=8\)/));
  test('key lengths count and range', () => {
    throwsWith(() => attention(q, k, v, { keyLengths: [1] }), /keyLengths has 1 entries, expected B=2/);
    throwsWith(() => attention(q, k, v, { keyLengths: [1, 9] }), /keyLengths\[1\] must be an integer in \[0, S=7\], got 9/);
  });
  test('cu_seqlens', () => {
    const x = randn([1, 1, 6, 4], rand);
    throwsWith(() => attention(x, x, x, { cuSeqlens: [0, 4, 3, 6] }), /cuSeqlens must rise from 0 to S=6 in integers, got \[0, 4, 3, 6\]/);
    throwsWith(() => attention(q, k, v, { cuSeqlens: [0, 7] }), /cuSeqlens needs packed self-attention with L = S, got L=5, S=7/);
  });
  test('prefix out of range', () => throwsWith(() => attention(q, k, v, { prefix: 8 }), /prefix must be an integer in \[0, S=7\], got 8/));
  test('global token out of range', () => throwsWith(() => attention(q, k, v, { globalTokens: [7] }), /globalTokens entry 7 must be an integer in \[0, 7\)/));
  test('block-sparse block size', () => throwsWith(() => attention(q, k, v, { blockSparse: { blockSize: 0 } }), /blockSparse.blockSize must be a positive integer, got 0/));
  test('mask that does not broadcast', () => throwsWith(() => attention(q, k, v, { mask: Tensor.zeros([5, 6], 'bool') }), /mask shape \[5, 6\] cannot broadcast to \[B, Hq, L, S\] = \[2, 8, 5, 7\]/));
  test('mask of an integer dtype', () => throwsWith(() => attention(q, k, v, { mask: Tensor.zeros([5, 7], 'uint8') }), /bias|mask must be a float tensor, got dtype uint8/));
  test('unknown kernel and tile sizes', () => {
    throwsWith(() => attention(q, k, v, { kernel: 'fast' as 'flash' }), /kernel must be 'reference', 'flash', 'flash-wasm', 'decode' or 'auto', got "fast"/);
    throwsWith(() => attention(q, k, v, { blockM: 0 }), /blockM must be a positive integer, got 0/);
  });
  test('huge tiles and splits are clamped to the problem, not allocated', () => {
    const want = attention(q, k, v, { kernel: 'reference', causal: true });
    for (const kernel of ['flash', 'decode'] as const) {
      const r = attention(q, k, v, { kernel, causal: true, blockM: 1e9, blockN: 2 ** 40, numSplits: 1e9 });
      assert.ok(r.out.toFloat32().every((x, i) => Math.abs(x - want.out.toFloat32()[i]) < 1e-5), kernel);
      const g = attentionBackward(q, k, v, r.out, { kernel: 'flash', blockM: 1e9, blockN: 1e9 });
      assert.equal(g.dq.shape.join(), q.shape.join());
    }
  });
  test('unknown option (typo)', () => throwsWith(() => attention(q, k, v, { casual: true } as object), /unknown option 'casual'/));
  test('bad causal value', () => throwsWith(() => attention(q, k, v, { causal: 'left' as 'top-left' }), /causal must be true, false, 'top-left' or 'bottom-right', got "left"/));
  test('options of the wrong type, found by the fuzzer of test/fuzz/attention-options.fuzz.test.ts (each was a raw TypeError)', () => {
    const bad = (x: unknown) => x as never;
    throwsWith(() => attention(q, k, v, { keyLengths: bad({}) }), /keyLengths must be a list of integers or a Tensor, got an object/);
    throwsWith(() => attention(q, k, v, { cuSeqlens: bad(-1) }), /cuSeqlens must be a list of integers or a Tensor, got -1/);
    throwsWith(() => attention(q, k, v, { globalTokens: bad('nope') }), /globalTokens must be a list of positions, got "nope"/);
    throwsWith(() => attention(q, k, v, { maskMod: bad('x') }), /maskMod must be a function \(b, h, i, j\) => boolean, got "x"/);
    throwsWith(() => attention(q, k, v, { kernel: bad(10n) }), /kernel must be .* got 10/);
    throwsWith(() => attention(q, k, v, { alibiSlopes: bad(null) }), /alibiSlopes must be a list of numbers, got null/);
    throwsWith(() => attention(q, k, v, { sinks: bad(null) }), /sinks must be a list of numbers, got null/);
    throwsWith(() => attention(q, k, v, { prefix: bad(Symbol('p')) }), /prefix must be an integer, got Symbol\(p\)/);
  });
});
