// NaN and infinity through every CPU kernel: all of them must agree with the definition (and torch). A row that sees
// a NaN or a +∞ score is NaN — never "fully masked" (o = 0, lse = −∞) — while rows that cannot see it stay exact.
// Also: the WebAssembly kernel accumulates P·V without overflow whenever the exact answer is finite.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { attention, Tensor } from '../../src/index.js';
import type { AttentionOptions } from '../../src/attention/options.js';
import { kernelRuntime } from '../../src/kernels/wasm/runtime.js';
import { assertClose, bruteAttention, randn, rng } from '../helpers.js';

const KERNELS = ['reference', 'flash', 'decode', 'flash-wasm', 'auto'] as const;

/** Element-wise: NaN exactly where expected is NaN, else close. */
function assertSame(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, what);
  for (let x = 0; x < expected.length; x++) {
    if (Number.isNaN(expected[x])) { assert.ok(Number.isNaN(actual[x]), `${what}: element ${x}: got ${actual[x]}, expected NaN`); continue; }
    assert.ok(!Number.isNaN(actual[x]), `${what}: element ${x}: got NaN, expected ${expected[x]}`);
  }
  const finite = (a: Float32Array) => a.map((v, x) => (Number.isNaN(expected[x]) ? 0 : v));
  assertClose(finite(actual), finite(expected), 2e-6, 1e-4, what);
}

/** q, k, v with one poisoned entry: `where` says which tensor and row, `value` what goes there. */
function poisoned(L: number, S: number, where: 'q' | 'k', row: number, value: number, seed: number) {
  const rand = rng(seed);
  const [q, k, v] = [randn([1, 4, L, 8], rand), randn([1, 2, S, 8], rand), randn([1, 2, S, 8], rand)];
  const t = where === 'q' ? q : k;
  // head 0's row `row`; for +∞ every other feature of that row is 0 and every key is positive there, so s = +∞ exactly
  for (let d = 0; d < 8; d++) t.set(d === 0 ? value : value === Infinity ? 0 : t.get(0, 0, row, d), 0, 0, row, d);
  if (value === Infinity) for (let j = 0; j < S; j++) k.set(1 + Math.abs(k.get(0, 0, j, 0)), 0, 0, j, 0);
  return { q, k, v };
}

describe('NaN and +∞ scores: every kernel agrees with the definition', () => {
  const cases: { name: string; where: 'q' | 'k'; value: number; opts: AttentionOptions }[] = [
    { name: 'a NaN query row (every score of the row NaN)', where: 'q', value: NaN, opts: {} },
    { name: 'a +∞ query row (every score +∞)', where: 'q', value: Infinity, opts: {} },
    { name: 'a NaN key, causal: rows before it stay exact', where: 'k', value: NaN, opts: { causal: 'bottom-right' } },
    { name: 'a NaN key with soft-capping (the TypeScript path of auto)', where: 'k', value: NaN, opts: { softcap: 5 } },
    { name: 'a NaN key in a window some rows do not reach', where: 'k', value: NaN, opts: { window: [3, 0] } },
  ];
  for (const c of cases) {
    test(c.name, () => {
      for (const [L, S] of [[1, 70], [3, 40], [40, 40], [1, 300]]) {
        const row = c.where === 'q' ? L - 1 : S - 2;
        const { q, k, v } = poisoned(L, S, c.where, row, c.value, L * 1000 + S);
        const shift = S - L;
        const keep = c.opts.causal ? (_b: number, _h: number, i: number, j: number) => j <= i + shift
          : c.opts.window ? (_b: number, _h: number, i: number, j: number) => j >= i + shift - 3 && j <= i + shift : undefined;
        const mod = c.opts.softcap ? (s: number) => 5 * Math.tanh(s / 5) : undefined;
        const want = bruteAttention(q, k, v, { keep, mod });
        assert.ok(want.out.some(Number.isNaN), 'the case poisons some row');
        for (const kernel of KERNELS) {
          const r = attention(q, k, v, { ...c.opts, kernel });
          assertSame(r.out.toFloat32(), want.out, `L=${L} S=${S} ${kernel} (ran ${r.kernel}) out`);
          assertSame(r.lse.toFloat32(), want.lse, `L=${L} S=${S} ${kernel} (ran ${r.kernel}) lse`);
        }
      }
    });
  }
});

describe('the WebAssembly kernel', () => {
  test('P·V does not overflow where the exact answer is finite (Σ p·|v| beyond f32)', () => {
    for (const [L, S] of [[1, 64], [2, 200], [40, 100]]) {
      const rand = rng(L + S);
      const q = randn([1, 2, L, 8], rand, 0.01);
      const k = randn([1, 2, S, 8], rand, 0.01);
      // every v near the largest f32: the mean is finite, the unnormalised sum Σ e^{s − m} v is not
      const v = Tensor.from(Float32Array.from({ length: 2 * S * 8 }, () => 3.0e38 * (0.9 + 0.1 * rand())), [1, 2, S, 8]);
      const want = bruteAttention(q, k, v);
      for (const kernel of KERNELS) {
        const r = attention(q, k, v, { kernel });
        for (const x of r.out.toFloat32()) assert.ok(Number.isFinite(x), `L=${L} S=${S} ${kernel} (ran ${r.kernel}): ${x}`);
        assertClose(r.out, want.out, 0, 1e-5, `L=${L} S=${S} ${kernel}`);
      }
    }
  });

  test('is loaded here, and a result names it only when it ran', () => {
    assert.ok(kernelRuntime(), 'WebAssembly SIMD kernels failed to load');
    const rand = rng(3);
    const q = randn([1, 2, 16, 8], rand);
    assert.equal(attention(q, q, q, { kernel: 'flash-wasm' }).kernel, 'flash-wasm');
    // what it does not cover (score modifiers, odd head_dim) is handed on, and the result says where
    assert.equal(attention(q, q, q, { kernel: 'flash-wasm', softcap: 5 }).kernel, 'flash');
    const odd = randn([1, 2, 16, 7], rand);
    assert.equal(attention(odd, odd, odd, { kernel: 'flash-wasm' }).kernel, 'flash');
    const one = randn([1, 2, 1, 8], rand);
    assert.equal(attention(one, q, q, { softcap: 5 }).kernel, 'decode');
  });

  test('without WebAssembly (node --jitless) the TypeScript kernels answer, and say so', () => {
    const url = new URL('../../src/index.js', import.meta.url).href;
    const script = `import { attention, Tensor } from '${url}';
      const q = Tensor.from(Float32Array.from({ length: 64 }, (_, i) => Math.sin(i)), [1, 2, 4, 8]);
      process.stdout.write([attention(q, q, q, { kernel: 'flash-wasm' }).kernel, attention(q.slice(2, 0, 1).contiguous(), q, q).kernel].join(' '));`;
    const run = spawnSync(process.execPath, ['--jitless', '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, 'flash decode');
  });
});
