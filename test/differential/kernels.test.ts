// Each fast kernel against the reference kernel on random shapes, with proof that the fast path really ran:
// the kernel that answered is named, and causal/windowed calls skip whole tiles.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { alibiSlopes, attention, kernelVariant, Tensor, type AttentionOptions } from '../../src/index.js';
import { problemOf } from '../../src/attention/dispatch.js';
import { checkQkv } from '../../src/attention/validate.js';
import { getSdpaKernel } from '../../src/kernels/registry.js';
import { assertClose, randint, randn, rng } from '../helpers.js';

// which build of the WebAssembly kernels this run checks (variants.test.ts runs this file again with relaxed SIMD)
test('the WebAssembly build under test', (t) => {
  t.diagnostic(`kernels: ${kernelVariant()}`);
  if (process.env.QKV_EXPECT_VARIANT) assert.equal(kernelVariant(), process.env.QKV_EXPECT_VARIANT);
});

// the call on the SIMD kernel (asserted: it ran there) against the reference kernel, out and lse; `label` names the case
function simdAgainstReference(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions, label: string): void {
  const ref = attention(q, k, v, { ...opts, kernel: 'reference' });
  const r = attention(q, k, v, opts);
  assert.equal(r.kernel, 'flash-wasm', label);
  assertClose(r.out, ref.out, 2e-6, 1e-4, `${label} out`);
  assertClose(r.lse, ref.lse, 2e-6, 1e-5, `${label} lse`);
}

describe('flash and decode against reference', () => {
  test('random shapes, tiles that do not divide L, S or D, GQA ratios 1/2/4/8', () => {
    for (let trial = 0; trial < 30; trial++) {
      const rand = rng(1000 + trial);
      const Hkv = randint(rand, 1, 2);
      const G = [1, 2, 4, 8][trial % 4];
      const [B, L, S, D, Dv] = [randint(rand, 1, 2), randint(rand, 1, 70), randint(rand, 1, 90), randint(rand, 1, 70), randint(rand, 1, 33)];
      const q = randn([B, Hkv * G, L, D], rand);
      const k = randn([B, Hkv, S, D], rand);
      const v = randn([B, Hkv, S, Dv], rand);
      const opts = { causal: trial % 2 === 0 ? 'bottom-right' as const : false };
      const ref = attention(q, k, v, { ...opts, kernel: 'reference' });
      for (const kernel of ['flash', 'decode'] as const) {
        const r = attention(q, k, v, { ...opts, kernel, blockM: randint(rand, 1, 40), blockN: randint(rand, 1, 40), numSplits: randint(rand, 1, 7) });
        assert.equal(r.kernel, kernel);
        assertClose(r.out, ref.out, 2e-6, 1e-4, `trial ${trial} ${kernel} out`);
        assertClose(r.lse, ref.lse, 2e-6, 1e-5, `trial ${trial} ${kernel} lse`);
      }
    }
  });

  test('the WebAssembly SIMD kernel equals the reference (no mask, causal both alignments, GQA) and falls back for the rest', () => {
    for (let trial = 0; trial < 24; trial++) {
      const rand = rng(2000 + trial);
      const Hkv = randint(rand, 1, 2);
      const Hq = Hkv * [1, 2, 4][trial % 3];
      const [B, L, S] = [randint(rand, 1, 2), randint(rand, 1, 150), randint(rand, 1, 150)];
      const [D, Dv] = [4 * randint(rand, 1, 20), 4 * randint(rand, 1, 10)];
      const q = randn([B, Hq, L, D], rand, 2);
      const k = randn([B, Hkv, S, D], rand, 2);
      const v = randn([B, Hkv, S, Dv], rand);
      const opts = [{}, { causal: 'bottom-right' as const }, { causal: 'top-left' as const }, { window: [5, 0] as [number, number] }][trial % 4];
      const ref = attention(q, k, v, { ...opts, kernel: 'reference' });
      const wasm = attention(q, k, v, { ...opts, kernel: 'flash-wasm' });
      assertClose(wasm.out, ref.out, 2e-6, 1e-4, `trial ${trial} out`);
      assertClose(wasm.lse, ref.lse, 2e-6, 1e-5, `trial ${trial} lse`);
    }
    // odd head_dim: handed to the TypeScript kernel, same answer
    const rand = rng(9);
    const q = randn([1, 2, 9, 7], rand);
    assertClose(attention(q, q, q, { kernel: 'flash-wasm' }).out, attention(q, q, q, { kernel: 'reference' }).out, 2e-6, 1e-4, 'odd D');
  });

  test('the SIMD kernel\'s split-K path for a few query rows (L ≤ 8, GQA groups up to 32 rows, many key chunks)', () => {
    for (let trial = 0; trial < 24; trial++) {
      const rand = rng(2500 + trial);
      const Hkv = randint(rand, 1, 3);
      const L = trial % 3 === 0 ? 1 : randint(rand, 1, 8);
      const G = randint(rand, 1, Math.floor(32 / L));
      const [B, S, D, Dv] = [randint(rand, 1, 2), trial % 4 === 0 ? randint(rand, 600, 2100) : randint(rand, 1, 200), 4 * randint(rand, 1, 20), 4 * randint(rand, 1, 20)];
      const q = randn([B, Hkv * G, L, D], rand, 2);
      const k = randn([B, Hkv, S, D], rand, 2);
      const v = randn([B, Hkv, S, Dv], rand);
      const opts = [{}, { causal: 'bottom-right' as const }, { causal: 'top-left' as const }][trial % 3];
      simdAgainstReference(q, k, v, opts, `trial ${trial}`);
    }
  });

  test('the split-K path\'s three-row score tile (GQA groups of 3 and 7): whole 64-key tiles, partial ones, causal edges', () => {
    // rows of a group are scored four at a time; a block of three takes its own tile (three keys a step), whose last
    // step ends past the 64-key tile when the tile is full (S ≥ ~900: chunks of 64 keys and more)
    for (const [trial, [G, L, S]] of [[3, 1, 1000], [3, 1, 1500], [7, 1, 1100], [3, 1, 37], [3, 1, 5], [1, 3, 900], [3, 1, 2]].entries()) {
      const rand = rng(3100 + trial);
      const [Hkv, D, Dv] = [randint(rand, 1, 3), 4 * randint(rand, 1, 20), 4 * randint(rand, 1, 20)];
      const q = randn([1, Hkv * G, L, D], rand, 2);
      const k = randn([1, Hkv, S, D], rand, 2);
      const v = randn([1, Hkv, S, Dv], rand);
      for (const opts of [{}, { causal: 'bottom-right' as const }, { causal: 'top-left' as const }]) {
        simdAgainstReference(q, k, v, opts, `G ${G} L ${L} S ${S} ${JSON.stringify(opts)}`);
      }
    }
  });

  test('causal sliding windows (Mistral\'s, Gemma\'s local layers) run the SIMD kernel: tiles and split-K, at a window\'s edges', () => {
    // windows narrower than a 64-key tile, a tile's width ± 1, wider than S; the right side cut by causal or not there
    for (let trial = 0; trial < 36; trial++) {
      const rand = rng(3500 + trial);
      const Hkv = randint(rand, 1, 2);
      const G = [1, 2, 3, 4][trial % 4];
      const L = trial % 3 === 0 ? randint(rand, 1, 8) : randint(rand, 9, 140);
      const [B, S] = [randint(rand, 1, 2), L + (trial % 5 === 0 ? 0 : randint(rand, 0, trial % 6 === 1 ? 1500 : 160))];
      const [D, Dv] = [4 * randint(rand, 1, 16), 4 * randint(rand, 1, 10)];
      const W = [0, 1, 7, 63, 64, 65, 100, 5000][trial % 8];
      const q = randn([B, Hkv * G, L, D], rand, 2);
      const k = randn([B, Hkv, S, D], rand, 2);
      const v = randn([B, Hkv, S, Dv], rand);
      const opts = { causal: 'bottom-right' as const, window: [W, trial % 2 ? 0 : 3] as [number, number] };
      simdAgainstReference(q, k, v, opts, `trial ${trial} L ${L} S ${S} W ${W}`);
    }
    // [W, 0] alone is the same window; what it does not take: a two-sided window, a dilated one, a causal mask aligned
    // elsewhere than the window
    const rand = rng(3600);
    const [q, k] = [randn([1, 2, 20, 8], rand), randn([1, 2, 30, 8], rand)];
    // a window too wide for the job's i32 word (2^31 keys back: every key) is the causal mask, not a window of 0
    const wide = attention(q, k, k, { causal: 'bottom-right', window: [2 ** 31, 0] });
    assert.equal(wide.kernel, 'flash-wasm');
    assertClose(wide.out, attention(q, k, k, { causal: 'bottom-right', kernel: 'reference' }).out, 2e-6, 1e-4, 'window 2^31');
    const alone = attention(q, k, k, { window: [4, 0] });
    assert.equal(alone.kernel, 'flash-wasm');
    assertClose(alone.out, attention(q, k, k, { window: [4, 0], kernel: 'reference' }).out, 2e-6, 1e-4, 'window [4, 0]');
    for (const opts of [{ window: [4, 2] }, { causal: 'bottom-right', window: [6, 0], dilation: 2 }, { causal: 'top-left', window: [4, 0] }] as const) {
      const r = attention(q, k, k, opts);
      assert.notEqual(r.kernel, 'flash-wasm', JSON.stringify(opts));
      assertClose(r.out, attention(q, k, k, { ...opts, kernel: 'reference' }).out, 2e-6, 1e-4, JSON.stringify(opts));
    }
  });

  test('soft-capping (Gemma 2) runs the SIMD kernel: tiles and split-K, with causal masks and windows, scores small and large', () => {
    // x ← c · tanh(x / c): |x / c| under 1/8 takes tanh's series, above it e^{−2|x/c|} (caps from 0.25 to 50: saturated and
    // not). Inputs of size ≤ 3: at 10 an f32 dot product's own rounding (~1e−5 where large terms cancel) passes through
    // the cap into a small score, beyond this tolerance — as the uncapped kernel's does, there hidden by a large score.
    for (let trial = 0; trial < 30; trial++) {
      const rand = rng(3700 + trial);
      const Hkv = randint(rand, 1, 2), G = [1, 2, 3][trial % 3];
      const L = trial % 2 === 0 ? randint(rand, 1, 8) : randint(rand, 9, 100);
      const [S, D, Dv] = [L + randint(rand, 0, 200), 4 * randint(rand, 1, 16), 4 * randint(rand, 1, 10)];
      const softcap = [50, 30, 5, 1, 0.25][trial % 5];
      const amp = [1, 2, 3][trial % 3];
      const q = randn([1, Hkv * G, L, D], rand, amp);
      const k = randn([1, Hkv, S, D], rand, amp);
      const v = randn([1, Hkv, S, Dv], rand);
      const opts = [{ softcap }, { softcap, causal: 'bottom-right' as const }, { softcap, window: [randint(rand, 0, 70), 0] as [number, number] }][trial % 3];
      simdAgainstReference(q, k, v, opts, `trial ${trial} L ${L} S ${S} softcap ${softcap}`);
    }
    // with a score function the TypeScript kernel takes it
    const rand = rng(3800);
    const q = randn([1, 2, 5, 8], rand);
    assert.notEqual(attention(q, q, q, { softcap: 5, scoreMod: (s) => s }).kernel, 'flash-wasm');
  });

  test('an additive bias (T5) and ALiBi run the SIMD kernel: tiles and split-K, broadcast biases, with the other masks', () => {
    // the bias in every broadcast form a model gives it ([1, H, L, S] T5, [B, 1, 1, S] an additive padding mask, [L, S],
    // [B, H, L, S]), a float `mask` as torch's additive one, with −∞ entries; ALiBi with causal masks, windows, GQA
    for (let trial = 0; trial < 36; trial++) {
      const rand = rng(3900 + trial);
      const B = randint(rand, 1, 2), Hkv = randint(rand, 1, 2), G = [1, 2, 3][trial % 3], Hq = Hkv * G;
      const L = trial % 2 === 0 ? randint(rand, 1, 8) : randint(rand, 9, 100);
      const [S, D, Dv] = [L + randint(rand, 0, 150), 4 * randint(rand, 1, 16), 4 * randint(rand, 1, 10)];
      const q = randn([B, Hq, L, D], rand), k = randn([B, Hkv, S, D], rand), v = randn([B, Hkv, S, Dv], rand);
      const shape = [[1, Hq, L, S], [B, 1, 1, S], [L, S], [B, Hq, L, S], [1, Hq, 1, S]][trial % 5];
      const bias = randn(shape, rand, 3);
      if (trial % 4 === 1) bias.set(-Infinity, ...shape.map(() => 0)); // an additive mask's −∞
      const alibi = trial % 3 !== 0 ? alibiSlopes(Hq) : undefined;
      const masks = [{}, { causal: 'bottom-right' as const }, { window: [randint(rand, 0, 40), 0] as [number, number] }, { softcap: 4 }];
      const opts = { ...masks[trial % 4], ...(trial % 6 === 5 ? { mask: bias } : trial % 3 === 2 ? {} : { bias }), alibiSlopes: alibi };
      simdAgainstReference(q, k, v, opts, `trial ${trial} L ${L} S ${S} ${JSON.stringify(shape)}`);
    }
  });

  test('a bias too large for the SIMD kernels\' base-2 f32 scores (torch\'s finfo.min mask) is the TypeScript kernels\' call', () => {
    // transformers masks with −3.4e38: a row masked everywhere is then the mean of the values (its lse ≈ −3.4e38), which
    // ×log2 e in f32 would have turned into an empty row (out 0, lse −∞); 2.5e38 into NaN
    const rand = rng(4000);
    for (const [L, S, big] of [[3, 9, -3.4028234663852886e38], [1, 9, -3.4028234663852886e38], [4, 9, 2.5e38]]) {
      const q = randn([1, 2, L, 8], rand), k = randn([1, 2, S, 8], rand), v = randn([1, 2, S, 8], rand);
      const bias = Tensor.from(Float32Array.from({ length: L * S }, (_, x) => (x < S || x % S < 2 ? big : 0)), [1, 1, L, S]);
      const r = attention(q, k, v, { bias });
      assert.notEqual(r.kernel, 'flash-wasm');
      assertClose(r.out, attention(q, k, v, { bias, kernel: 'reference' }).out, 1e-6, 1e-5, `L ${L} bias ${big}`);
      for (const x of r.out.toFloat32()) assert.ok(Number.isFinite(x));
    }
    // large but representable terms, and −∞, stay on the SIMD kernels
    const q = randn([1, 2, 4, 8], rand);
    const bias = Tensor.from(Float32Array.from({ length: 16 }, (_, x) => [-1e30, -Infinity, 0, 3][x % 4]), [1, 1, 4, 4]);
    assert.equal(attention(q, q, q, { bias }).kernel, 'flash-wasm');
    assert.equal(attention(q, q, q, { alibiSlopes: [1e30, 0.5] }).kernel, 'flash-wasm');
    assert.equal(attention(q, q, q, { alibiSlopes: [1e38, 0.5] }).kernel, 'flash');
  });

  test('key padding (keyLengths, or a bool mask the same for every head and query) runs the SIMD kernel, with the rest', () => {
    // left padding (a batch of prompts), right padding (BERT), a batch row all padding (o = 0, lse = −∞), alone or with a
    // causal mask, a window and soft-capping; tiles and split-K
    for (let trial = 0; trial < 32; trial++) {
      const rand = rng(3900 + trial);
      const Hkv = randint(rand, 1, 2), G = [1, 2, 3][trial % 3];
      const L = trial % 2 === 0 ? randint(rand, 1, 8) : randint(rand, 9, 100);
      const [B, S, D, Dv] = [randint(rand, 1, 3), L + randint(rand, 0, 150), 4 * randint(rand, 1, 16), 4 * randint(rand, 1, 10)];
      const keep = Array.from({ length: B }, (_, b) => {
        const pad = b === 2 ? S : randint(rand, 0, Math.floor(S / 2)); // batch row 2: every key padding
        return Array.from({ length: S }, (_, j) => (trial % 4 < 2 ? j >= pad : j < S - pad) ? 1 : 0); // left, right
      });
      const mask = Tensor.from(keep.flat(), [B, 1, 1, S], 'bool');
      const extra = [{}, { causal: 'bottom-right' as const }, { causal: 'bottom-right' as const, window: [randint(rand, 0, 60), 0] as [number, number] },
        { softcap: 20 }][trial % 4];
      const opts = trial % 5 === 4 ? { ...extra, keyLengths: keep.map((r) => r.reduce<number>((n, x) => n + x, 0)) } : { ...extra, mask };
      if ('keyLengths' in opts && trial % 4 < 2) continue; // keyLengths is right padding only
      const q = randn([B, Hkv * G, L, D], rand, 2), k = randn([B, Hkv, S, D], rand, 2), v = randn([B, Hkv, S, Dv], rand);
      simdAgainstReference(q, k, v, opts, `trial ${trial} B ${B} L ${L} S ${S}`);
    }
    // a mask that differs between queries is not key padding: the TypeScript kernel takes it
    const rand = rng(3950);
    const q = randn([1, 2, 6, 8], rand);
    const diag = Tensor.from(Array.from({ length: 36 }, (_, x) => (x % 7 ? 1 : 0)), [6, 6], 'bool');
    assert.notEqual(attention(q, q, q, { mask: diag }).kernel, 'flash-wasm');
  });

  test('auto picks the SIMD kernel, also for one query row, and flash when statistics are asked for', () => {
    const rand = rng(5);
    const k = randn([1, 2, 50, 8], rand);
    assert.equal(attention(randn([1, 4, 1, 8], rand), k, k).kernel, 'flash-wasm');
    assert.equal(attention(randn([1, 4, 3, 8], rand), k, k).kernel, 'flash-wasm');
    assert.equal(attention(randn([1, 4, 1, 8], rand), k, k, { returnStats: true }).kernel, 'flash');
  });

  test('the flash kernel skips fully masked tiles (causal: about half)', () => {
    const rand = rng(6);
    const q = randn([1, 1, 256, 16], rand);
    const dims = checkQkv(q, q, q);
    const count = (options: object) => {
      const p = problemOf(q, q, q, options, dims);
      p.counters = { tiles: 0, skipped: 0 };
      getSdpaKernel('flash').forward(p, { blockM: 32, blockN: 32 });
      return { tiles: p.counters.tiles, skipped: p.counters.skipped };
    };
    assert.deepEqual(count({}), { tiles: 64, skipped: 0 });
    const causal = count({ causal: true });
    assert.equal(causal.skipped, 28); // 8×8 tiles, the 28 strictly above the diagonal
    const window = count({ window: [32, 0] });
    assert.ok(window.skipped >= 64 - 8 - 8, `window skipped ${window.skipped}`);
  });

  test('large logits (|s| ~ 1e3) do not overflow in any kernel', () => {
    const rand = rng(7);
    const q = randn([1, 2, 40, 32], rand, 30);
    const k = randn([1, 2, 40, 32], rand, 30);
    const v = randn([1, 2, 40, 32], rand);
    const ref = attention(q, k, v, { kernel: 'reference' });
    for (const x of ref.out.toFloat32()) assert.ok(Number.isFinite(x));
    for (const kernel of ['flash', 'decode'] as const) assertClose(attention(q, k, v, { kernel, blockN: 7 }).out, ref.out, 1e-5, 1e-4, kernel);
  });

  test('float16 and bfloat16 inputs compute in float32 and return their dtype', () => {
    const rand = rng(8);
    const [q, k, v] = [randn([1, 2, 9, 16], rand), randn([1, 2, 11, 16], rand), randn([1, 2, 11, 16], rand)];
    for (const dtype of ['float16', 'bfloat16'] as const) {
      const [qh, kh, vh] = [q.to(dtype), k.to(dtype), v.to(dtype)];
      const want = attention(qh.to('float32'), kh.to('float32'), vh.to('float32'), { kernel: 'reference' }).out;
      for (const kernel of ['reference', 'flash', 'decode'] as const) {
        const r = attention(qh, kh, vh, { kernel, causal: 'bottom-right' });
        assert.equal(r.out.dtype, dtype);
        const w = attention(qh.to('float32'), kh.to('float32'), vh.to('float32'), { kernel: 'reference', causal: 'bottom-right' }).out;
        assertClose(r.out, w.to(dtype), 0, 0, `${dtype} ${kernel}`); // same f32 math, same rounding
      }
      assert.equal(want.dtype, 'float32');
    }
  });

  test('non-contiguous inputs (transposed views) give the same result', () => {
    const rand = rng(9);
    const qT = randn([1, 12, 2, 8], rand); // [B, L, H, D] as models produce it
    const q = qT.transpose(1, 2);
    assert.ok(!q.isContiguous());
    const a = attention(q, q, q, { causal: true });
    const b = attention(q.contiguous(), q.contiguous(), q.contiguous(), { causal: true });
    assertClose(a.out, b.out, 0, 0, 'view');
    assert.ok(a.out instanceof Tensor);
  });
});

describe('statistics from the fast path', () => {
  test('entropy and mean distance from the tiled kernel match the reference weights', () => {
    for (let trial = 0; trial < 8; trial++) {
      const rand = rng(300 + trial);
      const [L, S] = [randint(rand, 1, 50), randint(rand, 1, 60)];
      const q = randn([2, 2, L, 16], rand, 2);
      const k = randn([2, 1, S, 16], rand, 2);
      const v = randn([2, 1, S, 8], rand);
      const options = { causal: 'bottom-right' as const, keyLengths: [S, Math.floor(S / 2)], softcap: 3 };
      const ref = attention(q, k, v, { ...options, kernel: 'reference', returnWeights: true, returnStats: true });
      const fast = attention(q, k, v, { ...options, kernel: 'flash', returnStats: true, blockM: 5, blockN: 7 });
      // recompute both statistics from the reference weights by their definitions
      const w = ref.weights!.toFloat32();
      const H = new Float32Array(2 * 2 * L);
      const dist = new Float32Array(2 * 2 * L);
      for (let row = 0; row < H.length; row++) {
        const i = row % L;
        for (let j = 0; j < S; j++) {
          const p = w[row * S + j];
          if (p > 0) { H[row] -= p * Math.log(p); dist[row] += p * Math.abs(i + S - L - j); }
        }
      }
      assertClose(fast.stats!.entropy, H, 1e-5, 1e-4, `entropy trial ${trial}`);
      assertClose(fast.stats!.meanDistance, dist, 1e-4, 1e-4, `distance trial ${trial}`);
      assertClose(ref.stats!.entropy, H, 1e-5, 1e-4, 'reference entropy');
    }
  });

  test('a fully masked row has entropy 0, distance 0, lse −∞ and output 0', () => {
    const rand = rng(11);
    const q = randn([1, 1, 4, 8], rand);
    const r = attention(q, q, q, { keyLengths: [0], returnStats: true });
    assert.deepEqual([...r.stats!.entropy.toFloat32()], [0, 0, 0, 0]);
    assert.deepEqual([...r.lse.toFloat32()], [-Infinity, -Infinity, -Infinity, -Infinity]);
    assert.ok(r.out.toFloat32().every((x) => x === 0));
  });
});
