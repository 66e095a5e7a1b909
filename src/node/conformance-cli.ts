#!/usr/bin/env node
// `npm run conformance -- DIR [--kernel reference|flash|flash-wasm|decode|auto] [--device cpu|webgpu] [--dtype f32|f16]`:
// one line per case, then the summary line; exits 1 when any case fails, 2 on bad usage. --dtype f16 (WebGPU only)
// runs the sdpa cases through the f16 kernels — the tensor cores where the device has them (runConformanceWebGPU).
import { existsSync } from 'node:fs';
import { formatResult, runConformance, runConformanceWebGPU, summary } from './conformance.js';
import { useDawn } from './webgpu.js';
import type { KernelName } from '../attention/options.js';

const usage = 'usage: npm run conformance -- DIR [--kernel reference|flash|flash-wasm|decode|auto] [--device cpu|webgpu] [--dtype f32|f16]';
const args = process.argv.slice(2);
let dir: string | undefined;
let kernel: KernelName = 'flash';
let device = 'cpu';
let dtype = 'f32';
for (let a = 0; a < args.length; a++) {
  if (args[a] === '--kernel') kernel = args[++a] as KernelName;
  else if (args[a] === '--device') device = args[++a];
  else if (args[a] === '--dtype') dtype = args[++a];
  else if (args[a] === '--help' || args[a] === '-h') { console.log(usage); process.exit(0); }
  else if (!dir) dir = args[a];
  else { console.error(`conformance: unexpected argument '${args[a]}'\n${usage}`); process.exit(2); }
}
if (!dir) { console.error(usage); process.exit(2); }
if (!['cpu', 'webgpu'].includes(device)) { console.error(`conformance: unknown device '${device}'\n${usage}`); process.exit(2); }
if (!['reference', 'flash', 'flash-wasm', 'decode', 'auto'].includes(kernel)) { console.error(`conformance: unknown kernel '${kernel}'\n${usage}`); process.exit(2); }
if (!['f32', 'f16'].includes(dtype)) { console.error(`conformance: unknown dtype '${dtype}'\n${usage}`); process.exit(2); }
if (dtype === 'f16' && device !== 'webgpu') { console.error(`conformance: --dtype f16 runs the WebGPU f16 kernels; add --device webgpu\n${usage}`); process.exit(2); }
if (!existsSync(dir)) { console.error(`conformance: directory '${dir}' does not exist`); process.exit(2); }
try {
  if (device === 'webgpu' && !(await useDawn())) throw new Error('conformance: --device webgpu needs the optional `webgpu` package');
  const results = device === 'webgpu'
    ? await runConformanceWebGPU(dir, (r) => console.log(formatResult(r)), dtype === 'f16' ? 'float16' : 'float32')
    : runConformance(dir, kernel, (r) => console.log(formatResult(r)));
  console.log(summary(results));
  process.exit(results.some((r) => r.status === 'fail') ? 1 : 0);
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}
