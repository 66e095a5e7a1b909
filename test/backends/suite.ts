// One attention suite, each case written once and run on every backend present (tfjs's describeWithFlags over
// ALL_ENVS): every mask and score modifier, GQA ratios 1/2/4/8, MQA, one query row (decoding), L ≠ S, head dims that
// no tile divides, a fully masked row, large logits. Every backend's answer is checked against the reference kernel,
// and the kernel that ran is asserted by a rule written here, not read from the implementation: a fast path that
// silently fell back would fail.
import assert from 'node:assert/strict';
import { alibiSlopes, type AttentionOptions, type Tensor } from '../../src/index.js';
import { randn, rng } from '../helpers.js';
import { MASK_CASES, maskCase } from './mask-cases.js';

export interface SuiteCase { name: string; q: Tensor; k: Tensor; v: Tensor; options: AttentionOptions }

/** The suite's cases, the same on every call (fixed seeds). */
export function suiteCases(): SuiteCase[] {
  const cases: SuiteCase[] = [];
  for (let trial = 0; trial < MASK_CASES; trial++) {
    const c = maskCase(trial, rng(4000 + trial));
    cases.push({ name: `mask case ${trial}: ${JSON.stringify(c.options, (k, x) => (k === 'mask' || k === 'bias' ? '[tensor]' : x))}`, ...c });
  }
  const shape = (name: string, [B, Hq, Hkv, L, S, D, Dv]: number[], options: AttentionOptions = {}, amp = 1) => {
    const rand = rng(cases.length + 5000);
    cases.push({ name, q: randn([B, Hq, L, D], rand, amp), k: randn([B, Hkv, S, D], rand, amp), v: randn([B, Hkv, S, Dv], rand), options });
  };
  for (const G of [1, 2, 4, 8]) shape(`GQA ${G}:1, causal`, [1, 2 * G, 2, 33, 33, 16, 16], { causal: true });
  shape('MQA, one query row against 300 keys (decoding)', [2, 8, 1, 1, 300, 64, 64], { causal: 'bottom-right' });
  shape('one query row, soft-capping', [1, 4, 2, 1, 90, 32, 32], { softcap: 5 });
  shape('4 query rows, bottom-right causal', [1, 4, 2, 4, 70, 32, 48], { causal: 'bottom-right' });
  shape('3 query rows, bottom-right causal, a window of 20 (a Mistral decode step)', [1, 4, 2, 3, 70, 32, 32], { causal: 'bottom-right', window: [19, 0] });
  shape('2 query rows, top-left causal against 40 keys', [1, 2, 1, 2, 40, 16, 16], { causal: true });
  shape('L ≠ S, no mask', [2, 2, 1, 5, 37, 24, 8]);
  shape('head dims no tile divides (7 and 5)', [1, 2, 1, 19, 23, 7, 5], { causal: 'bottom-right' });
  shape('a fully masked row (key length 0)', [2, 2, 2, 6, 9, 8, 8], { keyLengths: [9, 0] });
  shape('large logits (|s| ~ 10², e^s far past f32)', [1, 2, 2, 40, 40, 32, 32], {}, 10);
  shape('ALiBi and a window, long rows', [1, 4, 4, 130, 130, 16, 16], { window: [40, 0], alibiSlopes: alibiSlopes(4) });
  return cases;
}

/** Whether the WebAssembly kernel covers a case, by its documented rule: no mask, a causal one or a causal sliding window
 *  (window [W, 0] alone, or [W, r ≥ 0] with a causal mask aligned as the window is: bottom-right, or L = S), a key
 *  padding mask (keyLengths, or a bool mask the same for every head and query), every score modifier but a score
 *  function (soft-capping, an additive bias or float mask, ALiBi), head dims in 4s (and no statistics or weights). */
export function wasmCovers(c: SuiteCase): boolean {
  const o = c.options as { causal?: boolean | string; window?: readonly [number, number]; mask?: Tensor };
  const keys = Object.keys(c.options).filter((k) => (c.options as Record<string, unknown>)[k] !== undefined);
  if (!keys.every((k) => ['causal', 'scale', 'window', 'softcap', 'keyLengths', 'mask', 'bias', 'alibiSlopes'].includes(k))) return false;
  if (o.mask?.dtype === 'bool') { // a key padding mask: as [B, Hq, L, S] (NumPy's broadcast, from the right) it is 1 over heads and queries
    const m = [...Array(4 - o.mask.shape.length).fill(1), ...o.mask.shape];
    const [Hq, L] = [c.q.shape[1], c.q.shape[2]];
    if ((m[1] !== 1 && Hq > 1) || (m[2] !== 1 && L > 1)) return false;
  }
  const aligned = !o.causal || o.causal === 'bottom-right' || c.q.shape[2] === c.k.shape[2];
  if (o.window && !(aligned && (o.window[1] === 0 || (o.causal && o.window[1] >= 0)))) return false;
  return c.q.shape[3] % 4 === 0 && c.v.shape[3] % 4 === 0;
}

/** The CPU kernel that must have run when `asked` was asked for. */
export function expectedCpuKernel(asked: string, c: SuiteCase): string {
  if (asked !== 'flash-wasm' && asked !== 'auto') return asked;
  if (wasmCovers(c)) return 'flash-wasm';
  return c.q.shape[2] === 1 ? 'decode' : 'flash';
}

/** The WGSL kernel that must have run: split-K decoding for a few query rows with at most a bottom-right causal mask
 *  (with a left window under it) and soft-capping, else the tiled kernel (the tensor-core one for f16 where the device
 *  has matrix units). Top-left causal is bottom-right only when L = S. */
export function expectedGpuKernel(c: SuiteCase, tensorCores: boolean): string {
  const o = c.options;
  const keys = Object.keys(o).filter((k) => (o as Record<string, unknown>)[k] !== undefined);
  const [, , L] = c.q.shape;
  const S = c.k.shape[2];
  const bottomRight = o.causal === 'bottom-right' || (!!o.causal && L === S);
  const window = !o.window || (bottomRight && o.window[0] >= 0);
  const decode = L <= 8 && L <= S && keys.every((k) => ['scale', 'causal', 'softcap', 'window'].includes(k)) && window &&
    (!o.causal || bottomRight);
  return decode ? 'webgpu-decode' : tensorCores ? 'webgpu-tensor-cores' : 'webgpu-flash';
}

/** Out and lse equal within (atol, rtol); −∞ must be −∞. */
export function assertSameResult(got: { out: Tensor; lse: Tensor }, want: { out: Tensor; lse: Tensor }, tol: [number, number], what: string): void {
  const close = (a: Float32Array, e: Float32Array, part: string) => {
    assert.equal(a.length, e.length, `${what} ${part}: length`);
    for (let x = 0; x < e.length; x++) {
      if (a[x] === e[x]) continue;
      assert.ok(Math.abs(a[x] - e[x]) <= tol[0] + tol[1] * Math.abs(e[x]), `${what} ${part}: element ${x}: got ${a[x]}, expected ${e[x]}`);
    }
  };
  close(got.out.toFloat32(), want.out.toFloat32(), 'out');
  close(got.lse.toFloat32(), want.lse.toFloat32(), 'lse');
}
