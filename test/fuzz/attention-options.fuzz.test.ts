// attention() as a careless caller meets it: seeded random option objects on random small shapes (GQA, L ≠ S, odd
// head_dim). Options of any type (numbers, NaN, ±∞, strings, null, lists, objects, functions, symbols, BigInts,
// tensors of wrong shapes, a typo'd or prototype key) must be refused with a QkvError — the fuzzer found eight that
// were raw TypeErrors; combinations of valid options (masks, windows, bias, soft-capping, ALiBi, sinks, score and mask
// functions, kernels and tiles) must give finite outputs, and finite gradients through attentionBackward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attention, attentionBackward, QkvError, Tensor, type AttentionOptions } from '../../src/index.js';
import { fuzzSeed, rng } from '../helpers.js';

const CALLS = 2000;

function setup(seed: number) {
  const rand = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const randn = (shape: number[]) => Tensor.from(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 2 * rand() - 1), shape);
  const shape = () => { const [B, Hkv, G, L, S, D] = [int(1, 2), int(1, 2), int(1, 2), int(1, 9), int(1, 12), int(1, 9)]; return { B, Hkv, H: Hkv * G, L, S, D }; };
  return { rand, pick, int, randn, shape };
}

// what a call did: null when it gave finite numbers or a QkvError, else what went wrong
function outcome(f: () => Tensor[]): string | null {
  try {
    const bad = f().find((t) => !t.toFloat32().every(Number.isFinite));
    return bad ? `non-finite values in a [${bad.shape}] result` : null;
  } catch (e) {
    return e instanceof QkvError ? null : `${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`;
  }
}

const describe = (o: object) => Object.entries(o).map(([k, v]) =>
  `${k}=${v instanceof Tensor ? `Tensor[${v.shape}]` : typeof v === 'function' ? 'fn' : typeof v === 'symbol' || typeof v === 'bigint' ? String(v) : JSON.stringify(v)}`).join(' ');

test(`${CALLS} calls with options of any type: each a QkvError or a finite result, never a TypeError`, () => {
  const { rand, pick, int, randn, shape } = setup(fuzzSeed(20261130));
  const values = [0, -1, 1, 2, 0.5, NaN, Infinity, -Infinity, 1e9, 2 ** 31, '', 'x', 'top-left', 'flash', null, undefined, true, false,
    [], [1], [1, 2], [-1, 5], [NaN, 1], {}, { kind: 'causal' }, () => 0, () => NaN, new Float32Array(4), Symbol('s'), 10n];
  const keys = ['scale', 'causal', 'mask', 'bias', 'keyLengths', 'window', 'dilation', 'globalTokens', 'blockSparse', 'cuSeqlens', 'prefix',
    'maskMod', 'scoreMod', 'softcap', 'alibiSlopes', 'sinks', 'kernel', 'blockM', 'blockN', 'numSplits', 'returnWeights', 'returnStats',
    'casual', '__proto__', 'constructor'];
  const findings: string[] = [];
  for (let c = 0; c < CALLS; c++) {
    const { B, Hkv, H, L, S, D } = shape();
    const o: Record<string, unknown> = {};
    for (let i = int(1, 3); i > 0; i--) {
      const key = pick(keys);
      o[key] = rand() < 0.2 ? randn(pick([[B, H, L, S], [L, S], [2, 2], [H]])) : pick(values);
    }
    const found = outcome(() => [attention(randn([B, H, L, D]), randn([B, Hkv, S, D]), randn([B, Hkv, S, D]), o as AttentionOptions).out]);
    // non-finite numbers given as options (NaN scale, a function returning NaN) may give non-finite results
    if (found && !(found.startsWith('non-finite') && Object.values(o).some((v) => typeof v === 'function' || (typeof v === 'number' && !Number.isFinite(v))))) {
      findings.push(`${describe(o)} → ${found}`);
    }
  }
  assert.deepEqual(findings.slice(0, 10), [], `${findings.length} findings`);
});

test(`${CALLS} calls with valid options combined: finite outputs and gradients (or a QkvError for a combination not offered)`, () => {
  const { rand, pick, int, randn, shape } = setup(fuzzSeed(1130));
  const findings: string[] = [];
  let ran = 0;
  for (let c = 0; c < CALLS; c++) {
    const { B, Hkv, H, L, S, D } = shape();
    const valid: Record<string, () => unknown> = {
      scale: () => pick([0.5, 1, 0, -1]), causal: () => pick([true, false, 'top-left', 'bottom-right']),
      bias: () => randn(pick([[B, H, L, S], [1, H, L, S], [1, 1, L, S]])),
      mask: () => Tensor.from(Uint8Array.from({ length: B * H * L * S }, () => (rand() < 0.7 ? 1 : 0)), [B, H, L, S]).to('bool'),
      keyLengths: () => Array.from({ length: B }, () => int(0, S)), window: () => [pick([0, 1, 2, 100]), pick([0, 1, 3])],
      dilation: () => int(1, 3), globalTokens: () => [0, Math.min(S - 1, 2)], prefix: () => pick([0, 1, S]), softcap: () => pick([1, 30, 0.01]),
      alibiSlopes: () => Array.from({ length: H }, () => rand()), sinks: () => randn([H]), kernel: () => pick(['flash', 'reference', 'decode', 'flash-wasm', 'auto']),
      blockM: () => pick([1, 3, 16]), blockN: () => pick([1, 5, 64]), numSplits: () => pick([1, 2, 7]), returnWeights: () => pick([true, false]),
      returnStats: () => pick([true, false]), scoreMod: () => pick([(s: number) => s * 2, (s: number, _b: number, _h: number, i: number, j: number) => s - (i - j)]),
      maskMod: () => (_b: number, _h: number, i: number, j: number) => j <= i + 1, cuSeqlens: () => [0, Math.min(L, 1), L],
    };
    const o: Record<string, unknown> = {};
    for (let i = int(1, 4); i > 0; i--) { const key = pick(Object.keys(valid)); o[key] = valid[key](); }
    const [q, k, v] = [randn([B, H, L, D]), randn([B, Hkv, S, D]), randn([B, Hkv, S, D])];
    const found = outcome(() => {
      const r = attention(q, k, v, o as AttentionOptions);
      ran++;
      if (rand() >= 0.3 || o.returnWeights) return [r.out];
      const g = attentionBackward(q, k, v, randn([B, H, L, D]), o as AttentionOptions);
      return [r.out, g.dq, g.dk, g.dv];
    });
    if (found) findings.push(`B ${B} H ${H} Hkv ${Hkv} L ${L} S ${S} D ${D} ${describe(o)} → ${found}`);
  }
  assert.deepEqual(findings.slice(0, 10), [], `${findings.length} findings`);
  assert.ok(ran > CALLS / 2, `most combinations run: ${ran} of ${CALLS}`);
});
