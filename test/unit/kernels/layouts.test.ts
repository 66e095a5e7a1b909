// Every uniform block and job argument list is declared once (src/kernels/layout.ts): here each layout is checked
// against the code on the other side — the `struct Params` of its WGSL shader, field for field, and the words its
// AssemblyScript job reads (`const q = ptr(job, 1)` must be the layout's field q at index 1, and every field is read).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Layout } from '../../../src/kernels/layout.js';
import {
  ADD_JOB, ATTENTION_JOB, DECODE_JOB, GEMM_JOB, MERGE_JOB, PACK_K_JOB, RMSNORM_JOB, ROPE_JOB, SCALE_F16_JOB,
} from '../../../src/kernels/wasm/jobs.js';
import { DECODE_PARAMS, MATMUL_PARAMS, OPS_PARAMS, SCATTER_PARAMS, SDPA_PARAMS, TRANSPOSE_PARAMS } from '../../../src/kernels/webgpu/uniforms.js';
import { ROOT_DIR } from '../../helpers.js';

const source = (path: string) => readFileSync(join(ROOT_DIR, path), 'utf8');

/** The fields of `struct Params { … }` in WGSL text, in order. */
function wgslStruct(code: string): [string, string][] {
  const body = /struct Params\s*\{([^}]*)\}/.exec(code)?.[1];
  assert.ok(body, 'no struct Params');
  return [...body.matchAll(/(\w+)\s*:\s*(\w+)/g)].map((m) => [m[1], m[2]]);
}

test('each WGSL uniform block is its layout, field for field', () => {
  const shaders: [Layout<string>, string][] = [
    [SDPA_PARAMS, 'src/kernels/webgpu/sdpa-masks.wgsl'], [DECODE_PARAMS, 'src/kernels/webgpu/sdpa-decode.wgsl'],
    [MATMUL_PARAMS, 'src/kernels/webgpu/matmul.wgsl'], [OPS_PARAMS, 'src/kernels/webgpu/ops.wgsl'],
    [TRANSPOSE_PARAMS, 'src/kernels/webgpu/transpose.wgsl'], [SCATTER_PARAMS, 'src/kernels/webgpu/scatter.wgsl'],
  ];
  for (const [layout, file] of shaders) {
    assert.deepEqual(wgslStruct(source(file)), layout.fields.map(([f, t]) => [f, t]), file);
    assert.deepEqual(wgslStruct(layout.wgsl()), wgslStruct(source(file)), `${file}: the generated struct`);
  }
});

/** `name = … word(job, N)` / `ptr(job, N)` reads in the body of AssemblyScript function `fn`. */
function jobReads(file: string, fn: string): Map<string, number> {
  const code = source(file);
  const start = code.indexOf(`export function ${fn}(`);
  assert.ok(start >= 0, `${file} has no function ${fn}`);
  const next = code.indexOf('\nexport function ', start + 1);
  const body = code.slice(start, next < 0 ? undefined : next);
  const reads = new Map<string, number>();
  for (const m of body.matchAll(/(\w+)\s*=\s*(?:<\w+>)?(?:reinterpret<f32>\()?(?:word|ptr)\(job, (\d+)\)/g)) reads.set(m[1], Number(m[2]));
  return reads;
}

test('each WebAssembly job reads every field of its layout at the layout\'s index', () => {
  const jobs: [Layout<string>, string, string][] = [
    [PACK_K_JOB, 'src/kernels/wasm/asm/attention.ts', 'packK'], [ATTENTION_JOB, 'src/kernels/wasm/asm/attention.ts', 'attention'],
    [DECODE_JOB, 'src/kernels/wasm/asm/decode.ts', 'decode'], [GEMM_JOB, 'src/kernels/wasm/asm/gemm.ts', 'gemm'],
    [MERGE_JOB, 'src/kernels/wasm/asm/decode.ts', 'merge'], [SCALE_F16_JOB, 'src/kernels/wasm/asm/f16-scale.ts', 'scaleF16'],
    [RMSNORM_JOB, 'src/kernels/wasm/asm/rows.ts', 'rmsNorm'], [ADD_JOB, 'src/kernels/wasm/asm/rows.ts', 'add'],
    [ROPE_JOB, 'src/kernels/wasm/asm/rows.ts', 'rope'],
  ];
  for (const [layout, file, fn] of jobs) {
    const reads = jobReads(file, fn);
    for (const [name, at] of reads) assert.equal(layout.index[name], at, `${fn} reads ${name} at word ${at}`);
    const unread = layout.fields.map(([f]) => f).filter((f) => f !== 'kind' && !reads.has(f));
    assert.deepEqual(unread, [], `${fn}: fields the kernel never reads`);
  }
  assert.equal(jobReads('src/kernels/wasm/asm/kernels.ts', 'run').get('kind'), 0); // word 0 is the kind, for every job
});

test('the kernels\' table of vector constants ends before the compiler\'s static data, in every build', () => {
  // constants 32… had overlapped Math.log's tables at 1024 (the merge's lse came out wrong for some row sums)
  const common = source('src/kernels/wasm/asm/common.ts');
  const base = Number(/export const CONSTS: usize = (\d+)/.exec(common)![1]);
  const last = Math.max(...[...common.matchAll(/C_\w+ = (\d+)/g)].map((m) => Number(m[1])));
  for (const build of ['kernels', 'kernels-shared', 'kernels-relaxed', 'kernels-shared-relaxed']) {
    const data = [...source(`build/${build}.wat`).matchAll(/\(data \$?\w* ?\(i32\.const (\d+)\)/g)].map((m) => Number(m[1]));
    assert.ok(data.length > 0, `${build}: no data segment found`);
    assert.ok(base + 16 * (last + 1) <= Math.min(...data), `${build}: constants end at ${base + 16 * (last + 1)}, data at ${Math.min(...data)}`);
  }
});

test('a layout writes uniform bytes and job words by field name', () => {
  const l = new Layout('Params', [['n', 'u32'], ['shift', 'i32'], ['scale', 'f32']] as const);
  const view = new DataView(l.bytes({ n: 7, shift: -3, scale: 0.5 }));
  assert.equal(view.byteLength, 16);
  assert.deepEqual([view.getUint32(0, true), view.getInt32(4, true), view.getFloat32(8, true)], [7, -3, 0.5]);
  assert.deepEqual(l.words({ n: 7, shift: -3, scale: 0.5 }), [7, -3, 0x3f000000]);
  assert.equal(l.wgsl(), 'struct Params {\n  n: u32, shift: i32, scale: f32,\n}');
});
