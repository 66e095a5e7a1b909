// NaN and infinity through every CPU kernel: all of them must agree with the definition (and torch). A row that sees
// a NaN or a +∞ score is NaN — never "fully masked" (o = 0, lse = −∞) — while rows that cannot see it stay exact.
// Also: the WebAssembly kernel accumulates P·V without overflow whenever the exact answer is finite.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { attention, Tensor } from '../../src/index.js';
import { kernelRuntime } from '../../src/kernels/wasm/runtime.js';
import { assertClose, bruteAttention, randn, rng } from '../helpers.js';
import { pagedAttention } from '../../src/kernels/cpu/sdpa-paged.js';
import { assertSame, pagedOf, poisonCases } from './non-finite-cases.js';

const KERNELS = ['reference', 'flash', 'decode', 'flash-wasm', 'auto'] as const;

describe('NaN and +∞ scores: every CPU kernel agrees with the definition', () => {
  for (const c of poisonCases()) {
    test(c.name, () => {
      for (const kernel of KERNELS) {
        const r = attention(c.q, c.k, c.v, { ...c.opts, kernel });
        assertSame(r.out.toFloat32(), c.want.out, `${kernel} (ran ${r.kernel}) out`);
        assertSame(r.lse.toFloat32(), c.want.lse, `${kernel} (ran ${r.kernel}) lse`);
      }
      const paged = pagedAttention(pagedOf(c));
      assertSame(paged.out, c.want.out, 'paged out');
      assertSame(paged.lse, c.want.lse, 'paged lse');
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
    // what it does not cover (a score function, odd head_dim) is handed on, and the result says where
    assert.equal(attention(q, q, q, { kernel: 'flash-wasm', softcap: 5 }).kernel, 'flash-wasm');
    assert.equal(attention(q, q, q, { kernel: 'flash-wasm', alibiSlopes: [0.5, 0.25] }).kernel, 'flash-wasm');
    assert.equal(attention(q, q, q, { kernel: 'flash-wasm', scoreMod: (s) => s }).kernel, 'flash');
    const odd = randn([1, 2, 16, 7], rand);
    assert.equal(attention(odd, odd, odd, { kernel: 'flash-wasm' }).kernel, 'flash');
    const one = randn([1, 2, 1, 8], rand);
    assert.equal(attention(one, q, q, { scoreMod: (s, _b, h) => s - h }).kernel, 'decode');
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
