// The conformance runner: checks qkv against any directory in the golden format (see shared/golden/README.md).
// For every case of index.json whose op qkv supports (conformance-ops.ts) it rebuilds the call from `params` (masks
// are constructed from their description and checked against the dense `keep` truth when the file has it), runs it
// and compares every expected output elementwise: |actual − expected| ≤ atol + rtol·|expected|, −∞ matching −∞.
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { AttentionOptions, KernelName } from '../attention/options.js';
import { attention } from '../attention/index.js';
import { describeValue, QkvError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { hfContext, OPS, SkipCase, type OpRunner } from './conformance-ops.js';
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

function runCase(dir: string, c: GoldenCase, kernel: KernelName): CaseResult {
  const run = Object.hasOwn(OPS, c.op) ? OPS[c.op] : undefined; // own ops only: 'constructor' is not one
  if (!run) return { file: c.file, status: 'skip', detail: `op '${c.op}' not supported yet` };
  const t = readSafetensors(join(dir, c.file)).tensors;
  hfContext.dir = dir;
  let result: ReturnType<OpRunner>;
  try {
    result = run(t, c.params ?? {}, kernel);
  } catch (e) {
    if (e instanceof SkipCase) return { file: c.file, status: 'skip', detail: e.message };
    throw e;
  }
  if (result.problem) return { file: c.file, status: 'fail', maxAbsErr: 0, detail: result.problem };
  return judge(c, t, result.actual);
}

/** Compares every output qkv computed with the file's expected tensor of the same name. */
function judge(c: GoldenCase, t: Map<string, Tensor>, actual: Map<string, Tensor>): CaseResult {
  let maxAbsErr = 0;
  let compared = 0;
  for (const [name, got] of actual) {
    const want = t.get(name);
    if (!want) continue;
    compared++;
    const r = compare(got, want, c.atol, c.rtol);
    maxAbsErr = Math.max(maxAbsErr, r.maxAbsErr);
    if (r.problem) return { file: c.file, status: 'fail', maxAbsErr, detail: `${name} ${r.problem}` };
  }
  if (compared === 0) return { file: c.file, status: 'fail', detail: 'no expected output in the file matches what qkv computes' };
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
  const cases = (index as { cases: unknown[] }).cases;
  cases.forEach((c, i) => checkCase(c, `conformance: ${join(dir, 'index.json')} case ${i}`));
  return { cases: cases as GoldenCase[] };
}

// a case as the golden format has it: a directory from outside may hold anything, and the runner reads files by name
// and compares to its tolerances, so each field is checked before use
function checkCase(c: unknown, where: string): void {
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw new QkvError(`${where} must be an object, got ${describeValue(c)}`);
  const own = (k: string) => (Object.hasOwn(c, k) ? (c as Record<string, unknown>)[k] : undefined);
  const file = own('file');
  if (typeof file !== 'string' || file === '' || isAbsolute(file) || file.split(/[\\/]/).includes('..')) {
    throw new QkvError(`${where}: 'file' must be a path inside the directory, got ${describeValue(file)}`);
  }
  if (typeof own('op') !== 'string') throw new QkvError(`${where} (${file}): 'op' must be a string, got ${describeValue(own('op'))}`);
  for (const k of ['params', 'tensors']) {
    const v = own(k);
    if (v !== undefined && v !== null && (typeof v !== 'object' || Array.isArray(v))) {
      throw new QkvError(`${where} (${file}): '${k}' must be an object, got ${describeValue(v)}`);
    }
  }
  for (const k of ['atol', 'rtol']) {
    const v = own(k);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new QkvError(`${where} (${file}): '${k}' must be a number ≥ 0, got ${describeValue(v)}`);
    }
  }
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

/**
 * The sdpa and sdpa_backward cases of DIR on WebGPU (`--device webgpu`): each case whose options the WGSL kernels cover runs on the GPU
 * and is compared like any other; the rest are skipped with the reason. Other ops are skipped.
 *
 * With dtype 'float16' (`--dtype f16`) each sdpa case runs with q, k, v rounded to f16 — through the f16 kernels, on
 * the tensor cores where the device has them — and is compared with qkv's reference attention (itself checked against
 * the file's PyTorch outputs in f32) on the same rounded values, to the f16 bounds: out within 2⁻¹⁰·max|v| (P is
 * rounded to f16 on the tensor cores) plus half an f16 step of its own rounding, lse within 2⁻¹¹; + 1e-4 for the f32
 * arithmetic. sdpa_backward cases are skipped (the backward is f32).
 */
export async function runConformanceWebGPU(dir: string, onResult?: (r: CaseResult) => void, dtype: 'float32' | 'float16' = 'float32'): Promise<CaseResult[]> {
  const { attentionWebGPU, attentionBackwardWebGPU, webgpuUnsupported } = await import('../attention/webgpu.js');
  const { gpuDevice, hasF16 } = await import('../kernels/webgpu/device.js');
  const { sdpaOptions } = await import('./conformance-ops.js');
  const device = await gpuDevice();
  if (!device) throw new QkvError('conformance --device webgpu: no WebGPU adapter (without a GPU: install Mesa and set QKV_WEBGPU_BACKEND=opengles to use llvmpipe)');
  if (dtype === 'float16' && !hasF16(device)) throw new QkvError('conformance --dtype f16: this WebGPU device has no shader-f16');
  const results: CaseResult[] = [];
  for (const c of readIndex(dir).cases) {
    let r: CaseResult;
    try {
      if (c.op !== 'sdpa' && c.op !== 'sdpa_backward') {
        r = { file: c.file, status: 'skip', detail: `op '${c.op}' not on WebGPU yet` };
      } else if (dtype === 'float16' && c.op === 'sdpa_backward') {
        r = { file: c.file, status: 'skip', detail: 'the backward on WebGPU is f32' };
      } else {
        const t = readSafetensors(join(dir, c.file)).tensors;
        const o = sdpaOptions(c.params ?? {}, t);
        const [q, k, v] = ['q', 'k', 'v'].map((n) => {
          const x = t.get(n);
          if (!x) throw new QkvError(`${c.file} has no tensor '${n}'`);
          return x;
        });
        const why = webgpuUnsupported(o, q.shape[3], v.shape[3]);
        if (why) {
          r = { file: c.file, status: 'skip', detail: why };
        } else if (dtype === 'float16') {
          r = await f16Case(c, q, k, v, o, attentionWebGPU);
        } else {
          const g = await attentionWebGPU(q, k, v, o);
          const actual = new Map([['out', g.out], ['lse', g.lse]]);
          if (c.op === 'sdpa_backward') {
            const d = await attentionBackwardWebGPU(q, k, v, t.get('dout')!, o);
            actual.set('dq', d.dq).set('dk', d.dk).set('dv', d.dv);
          }
          r = judge(c, t, actual);
        }
      }
    } catch (e) {
      r = e instanceof SkipCase ? { file: c.file, status: 'skip', detail: e.message } : { file: c.file, status: 'fail', detail: `threw ${(e as Error).name}: ${(e as Error).message}` };
    }
    results.push(r);
    onResult?.(r);
  }
  return results;
}

// one sdpa case in f16 on the GPU against the reference attention on the same f16-rounded inputs (see above)
async function f16Case(c: GoldenCase, q32: Tensor, k32: Tensor, v32: Tensor, o: AttentionOptions,
  onGpu: (q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions) => Promise<{ out: Tensor; lse: Tensor }>): Promise<CaseResult> {
  const [q, k, v] = [q32, k32, v32].map((x) => x.to('float16'));
  const g = await onGpu(q, k, v, o);
  const ref = attention(q.to('float32'), k.to('float32'), v.to('float32'), { ...o, kernel: 'reference' });
  const maxV = v.toFloat32().reduce((a, x) => Math.max(a, Math.abs(x)), 0);
  const half = 2 ** -11;
  let maxAbsErr = 0;
  for (const [name, got, want, atol, rtol] of [['out', g.out, ref.out, 2 * half * maxV + 1e-4, half], ['lse', g.lse, ref.lse, half + 1e-4, 1e-6]] as const) {
    const r = compare(got, want, atol, rtol);
    maxAbsErr = Math.max(maxAbsErr, r.maxAbsErr);
    if (r.problem) return { file: c.file, status: 'fail', maxAbsErr, detail: `f16 ${name} ${r.problem}` };
  }
  return { file: c.file, status: 'pass', maxAbsErr };
}
