// NaN and +∞ cases for every attention kernel, CPU and WebGPU: q, k, v with one poisoned entry, the options, and
// the answer by the definition (test/helpers.ts bruteAttention): a row that sees a NaN or +∞ score is NaN, never
// "fully masked", and rows that cannot see it stay exact.
import assert from 'node:assert/strict';
import type { AttentionOptions } from '../../src/attention/options.js';
import type { PagedProblem } from '../../src/kernels/cpu/sdpa-paged.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose, bruteAttention, randn, rng } from '../helpers.js';

/** Element-wise: NaN exactly where expected is NaN, else close (within atol + rtol·|e|; tol null: NaN pattern only). */
export function assertSame(actual: Float32Array, expected: Float32Array, what: string, tol: [number, number] | null = [2e-6, 1e-4]): void {
  assert.equal(actual.length, expected.length, what);
  for (let x = 0; x < expected.length; x++) {
    if (Number.isNaN(expected[x])) { assert.ok(Number.isNaN(actual[x]), `${what}: element ${x}: got ${actual[x]}, expected NaN`); continue; }
    assert.ok(!Number.isNaN(actual[x]), `${what}: element ${x}: got NaN, expected ${expected[x]}`);
  }
  const finite = (a: Float32Array) => a.map((v, x) => (Number.isNaN(expected[x]) ? 0 : v));
  if (tol) assertClose(finite(actual), finite(expected), tol[0], tol[1], what);
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

/** One poisoned call: the inputs, the options, and the expected out and lse (float32, NaN where poisoned). */
export interface PoisonCase { name: string; L: number; S: number; q: Tensor; k: Tensor; v: Tensor; opts: AttentionOptions; want: { out: Float32Array; lse: Float32Array } }

/** Every case: NaN and +∞ query rows, NaN keys under causal, soft-capping and window masks, at L = 1, 3 and 40. */
export function poisonCases(shapes: [number, number][] = [[1, 70], [3, 40], [40, 40], [1, 300]]): PoisonCase[] {
  const kinds: { name: string; where: 'q' | 'k'; value: number; opts: AttentionOptions }[] = [
    { name: 'a NaN query row (every score of the row NaN)', where: 'q', value: NaN, opts: {} },
    { name: 'a +∞ query row (every score +∞)', where: 'q', value: Infinity, opts: {} },
    { name: 'a NaN key, causal: rows before it stay exact', where: 'k', value: NaN, opts: { causal: 'bottom-right' } },
    { name: 'a NaN key with soft-capping', where: 'k', value: NaN, opts: { softcap: 5 } },
    { name: 'a NaN key in a window some rows do not reach', where: 'k', value: NaN, opts: { window: [3, 0] } },
  ];
  return kinds.flatMap((c) => shapes.map(([L, S]) => {
    const row = c.where === 'q' ? L - 1 : S - 2;
    const { q, k, v } = poisoned(L, S, c.where, row, c.value, L * 1000 + S);
    const shift = S - L;
    const keep = c.opts.causal ? (_b: number, _h: number, i: number, j: number) => j <= i + shift
      : c.opts.window ? (_b: number, _h: number, i: number, j: number) => j >= i + shift - 3 && j <= i + shift : undefined;
    const mod = c.opts.softcap ? (s: number) => 5 * Math.tanh(s / 5) : undefined;
    const want = bruteAttention(q, k, v, { keep, mod });
    assert.ok(want.out.some(Number.isNaN), 'the case poisons some row');
    return { name: `${c.name}, L=${L} S=${S}`, L, S, q, k, v, opts: c.opts, want: { out: want.out, lse: want.lse } };
  }));
}

/** The same call as paged attention over one block per row (the dense cache as a pool), where the options allow. */
export function pagedOf(c: PoisonCase): PagedProblem {
  const [B, Hq, T, D] = c.q.shape;
  const [, Hkv, S, Dv] = c.v.shape;
  const window = c.opts.window ? c.opts.window[0] + 1 : null; // keys i − 3 … i: the last 4
  return {
    q: c.q.toFloat32(), B, Hq, T, scale: 1 / Math.sqrt(D), softcap: c.opts.softcap ?? 0, causal: !!c.opts.causal || window !== null, window,
    blockTables: [[0]], seqLens: [S], pool: { blockSize: S, Hkv, D, Dv, k: c.k.toFloat32(), v: c.v.toFloat32() },
  };
}
