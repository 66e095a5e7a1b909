// The conformance runner: checks qkv against any directory in the golden format (see shared/golden/README.md).
// For every case of index.json whose op qkv supports it rebuilds the call from `params` (masks are constructed
// from their description and checked against the dense `keep`/`bias` truth when the file has it), runs it and
// compares every expected output elementwise: |actual − expected| ≤ atol + rtol·|expected|, −∞ matching −∞.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { attention, attentionBackward } from '../attention/index.js';
import { maskSpecOf } from '../attention/dispatch.js';
import type { AttentionOptions, KernelName } from '../attention/options.js';
import { checkQkv } from '../attention/validate.js';
import { QkvError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { readSafetensors } from './files.js';

/** One case of index.json. */
export interface GoldenCase {
  file: string;
  op: string;
  params: Record<string, unknown>;
  tensors: Record<string, [string, number[]]>;
  atol: number;
  rtol: number;
  description?: string;
}

/** The outcome of one case. */
export interface CaseResult { file: string; status: 'pass' | 'fail' | 'skip'; maxAbsErr?: number; detail?: string }

/** Max |a − e| over entries where both are finite, and the first entry that breaks the tolerance (or a shape mismatch). */
export function compare(actual: Tensor, expected: Tensor, atol: number, rtol: number): { maxAbsErr: number; problem?: string } {
  if (actual.shape.join() !== expected.shape.join()) {
    return { maxAbsErr: Infinity, problem: `shape [${actual.shape}] != expected [${expected.shape}]` };
  }
  const a = actual.toFloat32();
  const e = expected.toFloat32();
  let maxAbsErr = 0;
  let problem: string | undefined;
  for (let x = 0; x < e.length; x++) {
    const [ax, ex] = [a[x], e[x]];
    if (ax === ex) continue; // also −∞ = −∞
    const err = Math.abs(ax - ex);
    if (Number.isFinite(err) && err > maxAbsErr) maxAbsErr = err;
    if (!(err <= atol + rtol * Math.abs(ex)) && !problem) problem = `element ${x}: got ${ax}, expected ${ex}`;
  }
  return { maxAbsErr, problem };
}

const SDPA_PARAMS = new Set([
  'B', 'Hq', 'Hkv', 'L', 'S', 'D', 'Dv', 'scale', 'causal', 'mask', 'bias', 'key_lengths', 'window', 'dilation',
  'global_tokens', 'block_size', 'window_blocks', 'global_blocks', 'alibi_slopes', 'softcap', 'cu_seqlens', 'prefix',
]);

/** Attention options from a golden case's params and tensors; throws a 'skip:' error for features qkv lacks. */
export function sdpaOptions(params: Record<string, unknown>, t: Map<string, Tensor>): AttentionOptions {
  for (const key of Object.keys(params)) if (!SDPA_PARAMS.has(key)) throw new Error(`skip: param '${key}' not supported yet`);
  const o: AttentionOptions = {};
  if (params.scale !== undefined) o.scale = params.scale as number;
  const c = params.causal;
  if (c === true || c === 'top_left') o.causal = 'top-left';
  else if (c === 'bottom_right') o.causal = 'bottom-right';
  if (params.mask === 'bool') o.mask = t.get('keep')!.to('bool');
  if (params.bias === 'additive') o.bias = t.get('bias');
  if (params.key_lengths !== undefined) o.keyLengths = t.get('key_lengths') ?? (params.key_lengths as number[]);
  if (params.window !== undefined) o.window = params.window as [number, number];
  if (params.dilation !== undefined) o.dilation = params.dilation as number;
  if (params.global_tokens !== undefined) o.globalTokens = params.global_tokens as number[];
  if (params.block_size !== undefined) {
    const random = t.get('random_blocks');
    o.blockSparse = {
      blockSize: params.block_size as number,
      windowBlocks: (params.window_blocks as number | undefined) ?? 0,
      globalBlocks: (params.global_blocks as number[] | undefined) ?? [],
      randomBlocks: random ? random.toArray() : [],
    };
  }
  if (params.alibi_slopes !== undefined) o.alibiSlopes = params.alibi_slopes as number[];
  if (params.softcap !== undefined) o.softcap = params.softcap as number;
  if (params.cu_seqlens !== undefined) o.cuSeqlens = t.get('cu_seqlens') ?? (params.cu_seqlens as number[]);
  if (params.prefix !== undefined) o.prefix = params.prefix as number;
  return o;
}

/** Checks the structured mask qkv built from params against the file's dense `keep` truth. */
function checkMask(o: AttentionOptions, q: Tensor, k: Tensor, v: Tensor, keep: Tensor): string | undefined {
  if (o.mask instanceof Tensor) return undefined; // the dense mask was the input itself
  const dims = checkQkv(q, k, v);
  const spec = maskSpecOf(o, dims);
  const mask = spec?.build(dims);
  const want = keep.broadcastTo([dims.B, dims.Hq, dims.L, dims.S]);
  for (let b = 0; b < dims.B; b++) for (let h = 0; h < dims.Hq; h++) for (let i = 0; i < dims.L; i++) for (let j = 0; j < dims.S; j++) {
    const got = mask ? mask.allows(b, h, i, j) : true;
    if (got !== (want.get(b, h, i, j) !== 0)) return `mask differs from keep at [${b}, ${h}, ${i}, ${j}]: qkv says ${got}`;
  }
  return undefined;
}

function runCase(dir: string, c: GoldenCase, kernel: KernelName): CaseResult {
  if (c.op !== 'sdpa' && c.op !== 'sdpa_backward') return { file: c.file, status: 'skip', detail: `op '${c.op}' not supported yet` };
  const t = readSafetensors(join(dir, c.file)).tensors;
  const [q, k, v] = ['q', 'k', 'v'].map((n) => t.get(n));
  if (!q || !k || !v) return { file: c.file, status: 'fail', detail: 'file lacks q, k or v' };
  let o: AttentionOptions;
  try {
    o = sdpaOptions(c.params, t);
  } catch (e) {
    const msg = (e as Error).message;
    if (msg.startsWith('skip: ')) return { file: c.file, status: 'skip', detail: msg.slice(6) };
    throw e;
  }
  const actual = new Map<string, Tensor>();
  if (c.op === 'sdpa') {
    const r = attention(q, k, v, { ...o, kernel, returnWeights: t.has('weights') });
    actual.set('out', r.out).set('lse', r.lse);
    if (r.weights) actual.set('weights', r.weights);
  } else {
    const dout = t.get('dout');
    if (!dout) return { file: c.file, status: 'fail', detail: 'file lacks dout' };
    const backwardKernel = kernel === 'reference' ? 'reference' : 'flash';
    const g = attentionBackward(q, k, v, dout, { ...o, kernel: backwardKernel });
    const f = attention(q, k, v, { ...o, kernel });
    actual.set('dq', g.dq).set('dk', g.dk).set('dv', g.dv).set('out', f.out).set('lse', f.lse);
  }
  let maxAbsErr = 0;
  const keep = t.get('keep');
  if (keep) {
    const problem = checkMask(o, q, k, v, keep);
    if (problem) return { file: c.file, status: 'fail', maxAbsErr, detail: problem };
  }
  for (const [name, got] of actual) {
    const want = t.get(name);
    if (!want) continue;
    const r = compare(got, want, c.atol, c.rtol);
    maxAbsErr = Math.max(maxAbsErr, r.maxAbsErr);
    if (r.problem) return { file: c.file, status: 'fail', maxAbsErr, detail: `${name} ${r.problem}` };
  }
  return { file: c.file, status: 'pass', maxAbsErr };
}

/** Reads DIR/index.json. */
export function readIndex(dir: string): { cases: GoldenCase[] } {
  let index: unknown;
  try {
    index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  } catch (e) {
    throw new QkvError(`conformance: cannot read ${join(dir, 'index.json')}: ${(e as Error).message}`);
  }
  if (typeof index !== 'object' || index === null || !Array.isArray((index as { cases?: unknown }).cases)) {
    throw new QkvError(`conformance: ${join(dir, 'index.json')} has no "cases" list`);
  }
  return index as { cases: GoldenCase[] };
}

/** Runs every case of DIR with `kernel`; calls `onResult` as each finishes. A case that throws is a failure. */
export function runConformance(dir: string, kernel: KernelName = 'flash', onResult?: (r: CaseResult) => void): CaseResult[] {
  const results: CaseResult[] = [];
  for (const c of readIndex(dir).cases) {
    let r: CaseResult;
    try {
      r = runCase(dir, c, kernel);
    } catch (e) {
      r = { file: c.file, status: 'fail', detail: `threw ${(e as Error).name}: ${(e as Error).message}` };
    }
    results.push(r);
    onResult?.(r);
  }
  return results;
}

/** The printed line of a result. */
export function formatResult(r: CaseResult): string {
  const err = r.maxAbsErr === undefined ? '' : ` max_abs_err=${r.maxAbsErr.toExponential(2)}`;
  if (r.status === 'pass') return `pass ${r.file}${err}`;
  if (r.status === 'fail') return `fail ${r.file}${err} ${r.detail ?? ''}`;
  return `skip ${r.file} ${r.detail ?? ''}`;
}

/** `N passed, M failed, K skipped`. */
export function summary(results: CaseResult[]): string {
  const n = (s: string) => results.filter((r) => r.status === s).length;
  return `${n('pass')} passed, ${n('fail')} failed, ${n('skip')} skipped`;
}
