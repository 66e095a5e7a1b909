// Positional encodings: RoPE's rotation properties, ALiBi slopes for any head count, T5 buckets, sinusoidal table.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { alibiBias, alibiSlopes, applyRope, ropeInvFreq, sinusoidalEncoding, t5RelativeBias, t5RelativeBucket, Tensor } from '../../../../src/index.js';
import { assertClose, randn, rng } from '../../../helpers.js';

const norm = (a: Float32Array, at: number, D: number) => Math.hypot(...a.subarray(at, at + D));

describe('RoPE', () => {
  for (const style of ['rotate-half', 'interleaved'] as const) {
    test(`${style}: rotation preserves each vector's norm`, () => {
      const x = randn([1, 2, 7, 16], rng(1));
      const y = applyRope(x, { style, offset: 100 }).toFloat32();
      const a = x.toFloat32();
      for (let r = 0; r < 14; r++) assert.ok(Math.abs(norm(y, r * 16, 16) - norm(a, r * 16, 16)) < 1e-5);
    });

    test(`${style}: q·k depends only on the position difference`, () => {
      const rand = rng(2);
      const q = randn([1, 1, 1, 16], rand);
      const k = randn([1, 1, 1, 16], rand);
      const dot = (pq: number, pk: number) => {
        const a = applyRope(q, { style, positions: [pq] }).toFloat32();
        const b = applyRope(k, { style, positions: [pk] }).toFloat32();
        return a.reduce((s, v, i) => s + v * b[i], 0);
      };
      const ref = dot(3, 1);
      for (const shift of [0, 7, 250, 4096]) assert.ok(Math.abs(dot(3 + shift, 1 + shift) - ref) < 1e-3, `shift ${shift}`);
      assert.ok(Math.abs(dot(3, 1) - dot(5, 1)) > 1e-4, 'different offsets give different scores');
    });
  }

  test('partial rotary leaves the tail untouched; positions per batch', () => {
    const x = randn([2, 1, 3, 8], rng(3));
    const y = applyRope(x, { rotaryDim: 4, positions: [0, 1, 2, 5, 6, 7] });
    for (let t = 0; t < 3; t++) for (let d = 4; d < 8; d++) assert.equal(y.get(1, 0, t, d), x.get(1, 0, t, d));
    assert.equal(y.get(0, 0, 0, 0), x.get(0, 0, 0, 0)); // position 0: no rotation
    assert.throws(() => applyRope(x, { rotaryDim: 5 }), /rotaryDim must be even/);
  });

  test('scalings: linear divides, dynamic leaves short contexts alone, unknown types are refused', () => {
    const base = ropeInvFreq({ headDim: 8 }).invFreq;
    assertClose(Float32Array.from(ropeInvFreq({ headDim: 8, ropeType: 'linear', factor: 4 }).invFreq), Float32Array.from(base.map((f) => f / 4)), 0, 1e-7);
    assertClose(Float32Array.from(ropeInvFreq({ headDim: 8, ropeType: 'dynamic', factor: 2, maxPositionEmbeddings: 100, seqLen: 50 }).invFreq), Float32Array.from(base), 0, 1e-7);
    assert.throws(() => ropeInvFreq({ headDim: 8, ropeType: 'mrope' as 'yarn' }), /unknown rope_type 'mrope'/);
    assert.throws(() => ropeInvFreq({ headDim: 8, ropeType: 'dynamic' }), /needs maxPositionEmbeddings/);
  });

  test('LongRoPE: short factors inside the original context, long ones for a call that reaches past it, one attention factor', () => {
    const [shortFactor, longFactor] = [[1, 1.5, 2, 3], [2, 4, 8, 16]];
    const f = ropeInvFreq({ headDim: 8, ropeType: 'longrope', shortFactor, longFactor, originalMaxPositionEmbeddings: 32, maxPositionEmbeddings: 128 });
    const base = ropeInvFreq({ headDim: 8 }).invFreq;
    assertClose(Float32Array.from(f.invFreq), Float32Array.from(base.map((x, k) => x / shortFactor[k])), 0, 1e-7);
    assertClose(Float32Array.from(f.long!.invFreq), Float32Array.from(base.map((x, k) => x / longFactor[k])), 0, 1e-7);
    assert.ok(Math.abs(f.attentionFactor - Math.sqrt(1 + Math.log(4) / Math.log(32))) < 1e-12);
    // a vector at position 31 (the last inside the context) turns by the short frequencies; with position 32 in the call, by the long
    const x = randn([1, 1, 2, 8], rng(5));
    const turn = (positions: number[]) => applyRope(x, { freqs: f, positions }).toFloat32().slice(0, 8);
    const expect = (inv: Float64Array, p: number) => Array.from({ length: 8 }, (_, d) => {
      const k = d % 4, th = p * inv[k], [a, b] = [x.get(0, 0, 0, k), x.get(0, 0, 0, k + 4)];
      return f.attentionFactor * (d < 4 ? a * Math.cos(th) - b * Math.sin(th) : b * Math.cos(th) + a * Math.sin(th));
    });
    assertClose(turn([31, 30]), Float32Array.from(expect(f.invFreq, 31)), 1e-6, 1e-6);
    assertClose(turn([31, 32]), Float32Array.from(expect(f.long!.invFreq, 31)), 1e-6, 1e-6);
    assert.throws(() => ropeInvFreq({ headDim: 8, ropeType: 'longrope', shortFactor: [1, 2], longFactor }), /longrope needs short_factor with 4 numbers, got 2/);
  });

  test('frequencies changed in place between calls rotate by the new angles (the remembered angles are not reused)', () => {
    const x = randn([1, 2, 3, 8], rng(6));
    const f = ropeInvFreq({ headDim: 8 });
    const turn = () => applyRope(x, { freqs: f }).toFloat32().slice();
    turn();
    const copy = () => ({ invFreq: f.invFreq.slice(), attentionFactor: f.attentionFactor }); // never seen before
    f.invFreq[1] *= 3;
    assert.deepEqual(turn(), applyRope(x, { freqs: copy() }).toFloat32(), 'a frequency tripled');
    f.attentionFactor = 1.5;
    assert.deepEqual(turn(), applyRope(x, { freqs: copy() }).toFloat32(), 'the attention factor changed');
  });
});

describe('ALiBi', () => {
  test('powers of two follow 2^(−8h/n); other counts interleave from the 2n sequence', () => {
    assertClose(alibiSlopes(4), [2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8], 0, 0);
    assertClose(alibiSlopes(6), [2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8, 2 ** -1, 2 ** -3], 0, 0);
    assertClose(alibiSlopes(3), [2 ** -4, 2 ** -8, 2 ** -2], 0, 0);
    assert.equal(alibiSlopes(1)[0], 2 ** -8);
    assert.equal(alibiSlopes(65536).length, 65536);
    for (const heads of [0, 65537, 1e9, 2.5]) assert.throws(() => alibiSlopes(heads), /alibiSlopes: heads must be an integer in \[1, 65536\]/);
  });

  test('the dense bias is −slope · distance', () => {
    const b = alibiBias([0.5], 3, 5);
    assert.equal(b.get(0, 0, 0, 2), 0); // query 0 sits at position 2 (bottom-right)
    assert.equal(b.get(0, 0, 0, 0), -1);
  });
});

describe('T5 buckets', () => {
  test('exact buckets near zero, log buckets far, sign split only when bidirectional', () => {
    assert.equal(t5RelativeBucket(0), 0);
    assert.equal(t5RelativeBucket(3), 16 + 3);
    assert.equal(t5RelativeBucket(-3), 3);
    assert.equal(t5RelativeBucket(-10_000), 15);
    assert.equal(t5RelativeBucket(5, false), 0); // the future collapses to bucket 0 for a decoder
    assert.equal(t5RelativeBucket(-5, false), 5);
    assert.equal(t5RelativeBucket(-10_000, false), 31);
  });

  test('the relative bias indexes the table by bucket', () => {
    const table = Tensor.from(Array.from({ length: 32 * 2 }, (_, n) => n), [32, 2]);
    const bias = t5RelativeBias(table, 3, 3, true);
    assert.equal(bias.get(0, 1, 0, 2), table.get(t5RelativeBucket(2), 1));
  });
});

test('sinusoidal: PE(pos, 2i) = sin(pos / 10000^(2i/d))', () => {
  const pe = sinusoidalEncoding(10, 6);
  assert.ok(Math.abs(pe.get(7, 2) - Math.sin(7 / 10000 ** (2 / 6))) < 1e-6);
  assert.ok(Math.abs(pe.get(7, 3) - Math.cos(7 / 10000 ** (2 / 6))) < 1e-6);
});
