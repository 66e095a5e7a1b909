// Tensor: views without copies, contiguous(), dtype conversions (f16/bf16 round-to-nearest-even), checked int64.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, QkvError, Tensor } from '../../../src/index.js';

const iota = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('Tensor views', () => {
  test('reshape of contiguous data shares storage; -1 is inferred', () => {
    const t = Tensor.from(iota(24), [2, 3, 4]);
    const r = t.reshape([4, -1]);
    assert.deepEqual(r.shape, [4, 6]);
    assert.equal(r.data, t.data);
    assert.throws(() => t.reshape([5, 5]), /cannot view \[2, 3, 4\] \(24 elements\) as \[5, 5\]/);
  });

  test('transpose and permute are views; contiguous() copies into row-major order', () => {
    const t = Tensor.from(iota(6), [2, 3]);
    const tt = t.transpose(0, 1);
    assert.equal(tt.data, t.data);
    assert.deepEqual(tt.shape, [3, 2]);
    assert.equal(tt.get(2, 1), 5);
    assert.ok(!tt.isContiguous());
    assert.deepEqual(tt.contiguous().toArray(), [0, 3, 1, 4, 2, 5]);
    const p = Tensor.from(iota(24), [2, 3, 4]).permute([2, 0, 1]);
    assert.deepEqual(p.shape, [4, 2, 3]);
    assert.equal(p.get(3, 1, 2), 12 + 8 + 3);
    assert.throws(() => t.permute([0, 0]), /not a permutation/);
  });

  test('writeFloat32 writes any view row-major into a target, like toFloat32, without a dense copy first', () => {
    const base = Tensor.from(Float32Array.from({ length: 2 * 3 * 8 * 4 }, (_, i) => i * 0.5 - 7), [2, 3, 8, 4]);
    const views = [base, base.slice(2, 1, 6), base.transpose(1, 2), base.slice(0, 1, 2).slice(3, 0, 3), base.to('float16'), base.slice(2, 2, 3)];
    for (const [n, t] of views.entries()) {
      const dst = new Float32Array(t.size + 3).fill(99);
      assert.equal(t.writeFloat32(dst, 2), t.size);
      assert.deepEqual([...dst.subarray(2, 2 + t.size)], [...t.toFloat32()], `view ${n}`);
      assert.deepEqual([dst[0], dst[1], dst[dst.length - 1]], [99, 99, 99], `view ${n} stays inside its range`);
    }
    assert.throws(() => base.writeFloat32(new Float32Array(5)), /writeFloat32: 192 elements do not fit 5 places/);
  });

  test('reshape of a non-contiguous view copies', () => {
    const tt = Tensor.from(iota(6), [2, 3]).transpose(0, 1);
    assert.deepEqual(tt.reshape([6]).toArray(), [0, 3, 1, 4, 2, 5]);
  });

  test('slice with start, end, step and negative indices', () => {
    const t = Tensor.from(iota(10), [10]);
    assert.deepEqual(t.slice(0, 2, 8, 3).toArray(), [2, 5]);
    assert.deepEqual(t.slice(0, -3).toArray(), [7, 8, 9]);
    const m = Tensor.from(iota(12), [3, 4]).slice(1, 1, 3);
    assert.deepEqual(m.shape, [3, 2]);
    assert.equal(m.data.length, 12); // a view
    assert.deepEqual(m.contiguous().toArray(), [1, 2, 5, 6, 9, 10]);
  });

  test('broadcastTo uses stride 0', () => {
    const t = Tensor.from([1, 2, 3], [3]).broadcastTo([2, 3]);
    assert.deepEqual(t.strides, [0, 1]);
    assert.deepEqual(t.contiguous().toArray(), [1, 2, 3, 1, 2, 3]);
    assert.throws(() => Tensor.from([1, 2], [2]).broadcastTo([3]), /cannot broadcast \[2\] to \[3\]/);
  });

  test('get/set are bounds-checked', () => {
    const t = Tensor.zeros([2, 2]);
    assert.throws(() => t.get(2, 0), /index 2 out of range for dim 0 of shape \[2, 2\]/);
    assert.throws(() => t.get(0), /expected 2 indices, got 1/);
    assert.throws(() => Tensor.from([1, 2, 3], [2, 2]), /3 values do not fill shape \[2, 2\]/);
  });
});

describe('dtypes', () => {
  test('16-bit floats widen in bulk exactly like the scalar conversions: every bit pattern, whole tensors and dense views', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, h) => h);
    for (const [dtype, scalar] of [['float16', f16ToF32], ['bfloat16', bf16ToF32]] as const) {
      const t = new Tensor(dtype, all, [256, 256]);
      const wide = t.to('float32').toFloat32();
      const row = t.slice(0, 7, 8).to('float32').toFloat32(); // a dense view at an offset
      for (let h = 0; h < 65536; h++) {
        const want = scalar(h);
        if (Number.isNaN(want) ? !Number.isNaN(wide[h]) : !Object.is(wide[h], want)) assert.fail(`${dtype} 0x${h.toString(16)}: ${wide[h]} vs ${want}`);
      }
      assert.deepEqual([...row], Array.from({ length: 256 }, (_, c) => Math.fround(scalar(7 * 256 + c))));
      const strided = t.transpose(0, 1).slice(0, 0, 1).to('float32').toFloat32(); // not dense: the element-wise path
      assert.deepEqual([...strided], Array.from({ length: 256 }, (_, r) => Math.fround(scalar(r * 256))));
    }
  });

  test('float16: exact values, round-to-nearest-even, overflow, subnormals', () => {
    assert.equal(f32ToF16(1), 0x3c00);
    assert.equal(f32ToF16(-2), 0xc000);
    assert.equal(f32ToF16(65504), 0x7bff);
    assert.equal(f32ToF16(65520), 0x7c00); // rounds up to Inf
    assert.equal(f32ToF16(2 ** -24), 0x0001); // smallest subnormal
    assert.equal(f32ToF16(2 ** -25), 0x0000); // a tie at half the smallest subnormal rounds to even (0)
    assert.equal(f32ToF16(3 * 2 ** -25), 0x0002); // tie between 1 and 2 subnormal units rounds to even (2)
    assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00); // tie: round to even (down)
    assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02); // tie: round to even (up)
    assert.ok(Number.isNaN(f16ToF32(f32ToF16(NaN))));
    for (let h = 0; h < 0x7c00; h += 7) assert.equal(f32ToF16(f16ToF32(h)), h); // every finite half round-trips
  });

  test('bfloat16: truncation with round-to-nearest-even', () => {
    assert.equal(f32ToBf16(1), 0x3f80);
    assert.equal(bf16ToF32(0x3f80), 1);
    assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie: even
    assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82); // tie: even (up)
    assert.equal(f32ToBf16(1 + 2 ** -8 + 2 ** -20), 0x3f81); // above the tie: up
    assert.ok(Number.isNaN(bf16ToF32(f32ToBf16(NaN))));
  });

  test('to(dtype) converts between every pair it can represent', () => {
    const t = Tensor.from([0, 1, -2, 3], [2, 2]);
    for (const dt of ['float32', 'float16', 'bfloat16', 'int8', 'int32', 'int64'] as const) {
      assert.deepEqual(t.to(dt).to('float32').toArray(), [0, 1, -2, 3], dt);
    }
    assert.deepEqual(t.to('bool').toArray(), [0, 1, 1, 1]);
    assert.throws(() => Tensor.from([0.5], [1]).to('int32'), /value 0.5 at element 0 is not an integer/);
    assert.throws(() => Tensor.from([300], [1]).to('int8'), /cannot store 300 as int8/);
    assert.throws(() => Tensor.from([-1], [1]).to('uint8'), /cannot store -1 as uint8/);
  });

  test('int64 reads as a number only when exact', () => {
    const t = new Tensor('int64', BigInt64Array.from([5n, 2n ** 60n]), [2]);
    assert.equal(t.get(0), 5);
    assert.throws(() => t.get(1), (e: unknown) => e instanceof QkvError && /does not fit a JS number exactly/.test(e.message));
  });
});

test('a size no typed array can have is a QkvError naming it, not a RangeError (sizes come from files and requests)', async () => {
  const { sinusoidalEncoding } = await import('../../../src/nn/positional/sinusoidal.js');
  assert.throws(() => Tensor.zeros([1e6, 1e6]), (e: unknown) => e instanceof QkvError && /cannot allocate 1000000000000 float32 elements/.test(e.message));
  assert.throws(() => sinusoidalEncoding(1e9, 107), (e: unknown) => e instanceof QkvError && /maxLen · dModel must be ≤ 2\^28, got 1000000000 · 107/.test(e.message));
});

test('Tensor arguments of the wrong type are QkvErrors naming them (a fuzzer of the Tensor API found raw TypeErrors)', () => {
  const x = Tensor.from([0, 1, 2, 3, 4, 5], [2, 3]);
  const bad = (v: unknown) => v as never;
  const cases: [() => unknown, RegExp][] = [
    [() => Tensor.from(bad('x'), [1]), /Tensor\.from: values must be an array or a typed array, got "x"/],
    [() => Tensor.from([1], bad('x')), /Tensor\.from: shape must be a list of non-negative integers, got "x"/],
    [() => Tensor.from([1], [1], bad('int4')), /Tensor\.from: dtype must be one of .*, got "int4"/],
    [() => Tensor.zeros(bad(3)), /Tensor\.zeros: shape must be a list/],
    [() => Tensor.zeros([2], bad(null)), /dtype must be one of .*, got null/],
    [() => x.reshape(bad(null)), /reshape: shape must be a list of integers, got null/],
    [() => x.permute(bad(1)), /permute: dims must be a list, got 1/],
    [() => x.transpose(bad(Symbol('d')), 0), /transpose: dim Symbol\(d\) out of range/],
    [() => x.slice(0, bad(Symbol('s'))), /slice: start must be a number, got Symbol\(s\)/],
    [() => x.get(bad(Symbol('i')), 0), /Tensor\.get: index Symbol\(i\) out of range/],
    [() => x.to(bad('float8')), /to: dtype must be one of .*, got "float8"/],
  ];
  for (const [f, message] of cases) assert.throws(f, (e: unknown) => e instanceof QkvError && message.test(e.message), String(message));
});
