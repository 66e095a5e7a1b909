// Shared test helpers: a seeded RNG, random tensors, closeness checks and a brute-force attention written
// straight from the definitions (independent of src/attention/masks.ts, so it can catch a wrong mask).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor } from '../src/index.js';

/** The repository root (tests run from dist/test). */
export const ROOT_DIR = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The golden data: test/golden in the repository (a verbatim copy of ../shared/golden, checked by
 * test/conformance/golden-copy.test.ts), or $QKV_GOLDEN where another directory in the golden format is to be used.
 * Its absence is a failure, never a skip: a clone of the repository alone must run the PyTorch conformance tests.
 */
export const GOLDEN = process.env.QKV_GOLDEN ?? join(ROOT_DIR, 'test', 'golden');
if (!existsSync(join(GOLDEN, 'index.json'))) throw new Error(`no golden data at ${GOLDEN} (index.json missing): the conformance tests cannot run`);

/** A fresh directory under the system's temporary one, removed with everything in it when the test process exits. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** mulberry32: a small seeded generator, so failures reproduce. */
/**
 * A fuzz test's seed: `seed`, or with QKV_FUZZ_SEED=n in the environment, `seed` + n — the same tests over other inputs
 * (`QKV_FUZZ_SEED=7 node --test dist/test/fuzz/*.test.js`; the same value reruns a finding).
 */
export function fuzzSeed(seed: number): number {
  const extra = process.env.QKV_FUZZ_SEED;
  if (extra === undefined || extra === '') return seed;
  if (!/^\d+$/.test(extra)) throw new Error(`QKV_FUZZ_SEED must be a non-negative integer, got '${extra}'`);
  return seed + Number(extra);
}

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform(−amp, amp) float32 tensor. */
export function randn(shape: number[], rand: () => number, amp = 1): Tensor {
  const n = shape.reduce((x, y) => x * y, 1);
  return Tensor.from(Float32Array.from({ length: n }, () => (rand() * 2 - 1) * amp), shape);
}

/** Integer in [lo, hi]. */
export function randint(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

/** Asserts |a − e| ≤ atol + rtol·|e| elementwise (−∞ = −∞), reporting the first offender. */
export function assertClose(actual: Tensor | Float32Array | number[], expected: Tensor | Float32Array | number[], atol = 1e-5, rtol = 1e-4, what = ''): void {
  const a = actual instanceof Tensor ? actual.toFloat32() : actual;
  const e = expected instanceof Tensor ? expected.toFloat32() : expected;
  assert.equal(a.length, e.length, `${what}: length ${a.length} vs ${e.length}`);
  for (let x = 0; x < e.length; x++) {
    if (a[x] === e[x]) continue;
    const ok = Math.abs(a[x] - e[x]) <= atol + rtol * Math.abs(e[x]);
    if (!ok) assert.fail(`${what}: element ${x}: got ${a[x]}, expected ${e[x]}`);
  }
}

/** A predicate keep(b, h, i, j) and a bias(b, h, i, j), for the brute-force definition. */
export interface BruteSpec {
  keep?: (b: number, h: number, i: number, j: number) => boolean;
  mod?: (s: number, b: number, h: number, i: number, j: number) => number;
  scale?: number;
  /** Learned sink logits [Hq]: each joins its head's rows' softmax, its probability dropped. */
  sinks?: ArrayLike<number>;
}

/** Attention by the definition, in float64: out, lse, weights as plain arrays. */
export function bruteAttention(q: Tensor, k: Tensor, v: Tensor, spec: BruteSpec = {}) {
  const [B, Hq, L, D] = q.shape;
  const [, Hkv, S] = k.shape;
  const Dv = v.shape[3];
  const G = Hq / Hkv;
  const scale = spec.scale ?? 1 / Math.sqrt(D);
  const out = new Float64Array(B * Hq * L * Dv);
  const lse = new Float32Array(B * Hq * L);
  const weights = new Float32Array(B * Hq * L * S);
  for (let b = 0; b < B; b++) for (let h = 0; h < Hq; h++) for (let i = 0; i < L; i++) {
    const s = new Float64Array(S);
    let m = -Infinity;
    for (let j = 0; j < S; j++) {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += q.get(b, h, i, d) * k.get(b, Math.floor(h / G), j, d);
      let x = scale * dot;
      if (spec.mod) x = spec.mod(x, b, h, i, j);
      if (spec.keep && !spec.keep(b, h, i, j)) x = -Infinity;
      s[j] = x;
      m = Math.max(m, x);
    }
    const row = (b * Hq + h) * L + i;
    const sink = spec.sinks ? spec.sinks[h] : -Infinity; // exp(−∞) = 0: no sink
    m = Math.max(m, sink);
    if (m === -Infinity) { lse[row] = -Infinity; continue; }
    let l = Math.exp(sink - m);
    for (let j = 0; j < S; j++) l += Math.exp(s[j] - m);
    lse[row] = m + Math.log(l);
    for (let j = 0; j < S; j++) {
      const p = Math.exp(s[j] - m) / l;
      weights[row * S + j] = p;
      for (let d = 0; d < Dv; d++) out[row * Dv + d] += p * v.get(b, Math.floor(h / G), j, d);
    }
  }
  return { out: Float32Array.from(out), lse, weights };
}
