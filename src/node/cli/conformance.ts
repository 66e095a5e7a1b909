// `qkv conformance DIR [--kernel reference|flash|flash-wasm|decode|auto] [--device cpu|webgpu] [--dtype f32|f16]` (also
// `npm run conformance -- …`): one line per case, then the summary line; 1 when any case fails. --device webgpu runs
// the sdpa cases on the GPU; --dtype f16 (WebGPU only) through the f16 kernels — the tensor cores where the device
// has them (runConformanceWebGPU).
import { kernelVariant } from '../../kernels/wasm/runtime.js';
import { existsSync } from 'node:fs';
import type { KernelName } from '../../attention/options.js';
import { QkvError } from '../../errors.js';
import { formatResult, runConformance, runConformanceWebGPU, summary } from '../conformance.js';
import { useDawn } from '../webgpu.js';

const OPTIONS = '[--kernel reference|flash|flash-wasm|decode|auto] [--device cpu|webgpu] [--dtype f32|f16]';
export const CONFORMANCE_USAGE = `usage: qkv conformance DIR ${OPTIONS}\nusage: npm run conformance -- DIR ${OPTIONS}`;

export async function conformanceCommand(argv: string[], out: (s: string) => void): Promise<number> {
  let dir: string | undefined;
  let kernel = 'flash';
  let device = 'cpu';
  let dtype = 'f32';
  for (let a = 0; a < argv.length; a++) {
    if (argv[a] === '--kernel') kernel = argv[++a];
    else if (argv[a] === '--device') device = argv[++a];
    else if (argv[a] === '--dtype') dtype = argv[++a];
    else if (argv[a] === '--help' || argv[a] === '-h') { out(`${CONFORMANCE_USAGE}\n`); return 0; }
    else if (!dir) dir = argv[a];
    else throw new QkvError(`conformance: unexpected argument '${argv[a]}'\n${CONFORMANCE_USAGE}`);
  }
  if (!dir) throw new QkvError(CONFORMANCE_USAGE);
  if (!['cpu', 'webgpu'].includes(device)) throw new QkvError(`conformance: unknown device '${device}'\n${CONFORMANCE_USAGE}`);
  if (!['reference', 'flash', 'flash-wasm', 'decode', 'auto'].includes(kernel)) throw new QkvError(`conformance: unknown kernel '${kernel}'\n${CONFORMANCE_USAGE}`);
  if (!['f32', 'f16'].includes(dtype)) throw new QkvError(`conformance: unknown dtype '${dtype}'\n${CONFORMANCE_USAGE}`);
  if (dtype === 'f16' && device !== 'webgpu') throw new QkvError(`conformance: --dtype f16 runs the WebGPU f16 kernels; add --device webgpu\n${CONFORMANCE_USAGE}`);
  if (!existsSync(dir)) throw new QkvError(`conformance: directory '${dir}' does not exist`);
  if (device === 'webgpu' && !(await useDawn())) throw new QkvError('conformance: --device webgpu needs the optional `webgpu` package');
  const print = (r: Parameters<typeof formatResult>[0]) => out(`${formatResult(r)}\n`);
  const results = device === 'webgpu'
    ? await runConformanceWebGPU(dir, print, dtype === 'f16' ? 'float16' : 'float32')
    : runConformance(dir, kernel as KernelName, print);
  out(`${summary(results)}\n`);
  if (device === 'cpu') out(`WebAssembly kernels: ${kernelVariant() ?? 'none (TypeScript only)'}\n`);
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}
