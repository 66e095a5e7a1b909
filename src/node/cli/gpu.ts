// `qkv gpu`: the WebGPU adapter Dawn finds here (QKV_WEBGPU_BACKEND picks vulkan or opengles) and what qkv runs on
// it — f16 storage, the tensor-core kernel and its tiles for common head dims, the limits that size the tiles.
import { parseArgs } from 'node:util';
import { gpuDevice, hasF16, matrixConfig } from '../../kernels/webgpu/device.js';
import { flashTiles, tensorCorePlan } from '../../kernels/webgpu/sdpa-flash.js';
import { useDawn } from '../webgpu.js';
import { human } from './shared.js';

export async function gpuCommand(argv: string[], out: (s: string) => void): Promise<number> {
  parseArgs({ args: argv, allowPositionals: false, strict: true, options: {} });
  const backend = process.env.QKV_WEBGPU_BACKEND ?? 'vulkan';
  if (!(await useDawn())) { out('no WebGPU here: the optional `webgpu` package is not installed (npm install webgpu)\n'); return 1; }
  const device = await gpuDevice();
  if (!device) {
    out(`no WebGPU adapter through Dawn's ${backend} backend${backend === 'vulkan' ? ' (without a GPU: Mesa\'s lavapipe, or QKV_WEBGPU_BACKEND=opengles for llvmpipe)' : ''}\n`);
    return 1;
  }
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const cfg = matrixConfig(device);
  const l = device.limits;
  const rows: [string, string][] = [
    ['adapter', [info?.description, info?.vendor, info?.architecture].filter(Boolean).join(' · ') || '(no description)'],
    ['backend', `${backend} (Dawn)`],
    ['shader-f16', hasF16(device) ? 'yes: f16 tensors and weights stay f16 on the GPU (arithmetic in f32)' : 'no: f16 runs through the f32 kernels'],
    ['tensor cores', cfg ? `${cfg.M}×${cfg.N}×${cfg.K} f16 → f32 on ${cfg.lanes}-lane subgroups (subgroup matrices)` : 'no (no f16 subgroup-matrix configuration)'],
    ['limits', `${human(l.maxComputeWorkgroupStorageSize)} workgroup memory, ${l.maxComputeInvocationsPerWorkgroup} invocations, ${human(l.maxStorageBufferBindingSize)} per binding`],
    ['attention, f32', `sdpa-flash.wgsl, ${tiles(() => { const t = flashTiles(device, 128); return `${t.blockM} × ${t.blockN}`; })} tiles (blockM × blockN)`],
  ];
  for (const D of [64, 128, 256]) {
    const plan = cfg ? tensorCorePlan(device, D, D) : null;
    const plain = hasF16(device) ? 'sdpa-flash.wgsl with f16 storage' : 'sdpa-flash.wgsl (f16 inputs widened to f32)';
    rows.push([`attention, f16, d=${D}`, plan ? `tensor cores, ${plan.subgroups} subgroups × ${plan.cfg.M} rows × ${plan.blockN} keys` : plain]);
  }
  for (const [k, v] of rows) out(`${k.padEnd(22)} ${v}\n`);
  return 0;
}

const tiles = (f: () => string) => { try { return f(); } catch (e) { return `none fit (${(e as Error).message})`; } };
