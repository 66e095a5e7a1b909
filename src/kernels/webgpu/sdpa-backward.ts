// Host side of the WGSL backward pass (sdpa-backward.wgsl): dq, dk, dv from q, k, v, the forward's out and lse, and
// the upstream gradient dout, with every mask and score modifier the forward kernel takes (the same tables, from
// the same plan). D_i = do_i·o_i is formed here (O(L·Dv)); the two entry points (a workgroup per 64 query rows, and per
// 64 key rows) run in one submission.
import type { AttnDims, GpuBackwardKernel, MaskPlan } from '../contract.js';
import { QkvError } from '../../errors.js';
import { acquire, encodePass, readBack, release, STORAGE, uniform, upload } from './buffers.js';
import { bindBuffers, computePipeline, specialize, validated } from './pipelines.js';
import { WGSL } from './sdpa-backward-wgsl.js';
import { WGSL as MASKS } from './sdpa-masks-wgsl.js';
import { sdpaParams } from './sdpa-flash.js';

/** The backward kernels for these head dims: each invocation keeps 4 rows × ⌈D/8⌉ (and ⌈Dv/8⌉) gradient columns, and
 *  the second products stage VK rows at a time, as many as the staging array holds (the shader's `const` lines). */
function pipelines(device: GPUDevice, D: number, Dv: number): [GPUComputePipeline, GPUComputePipeline] {
  const [OCD, OCV] = [Math.max(1, Math.ceil(D / 8)), Math.max(1, Math.ceil(Dv / 8))];
  const VK = [32, 16, 8, 4, 2, 1].find((n) => n * 8 * Math.max(OCD, OCV) <= 1536)!; // STAGE floats
  const key = `sdpa-backward ${OCD}x${OCV} vk${VK}`;
  const code = () => MASKS + specialize(WGSL, { OCD, OCV, VK });
  return [computePipeline(device, key, code, 'dqMain'), computePipeline(device, key, code, 'dkvMain')];
}

/** dq [B, Hq, L, D], dk [B, Hkv, S, D], dv [B, Hkv, S, Dv] on `device` from q, k, v already there (e.g. the forward's). */
export async function webgpuFlashBackward(device: GPUDevice, dims: AttnDims, qkv: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer },
  out: Float32Array, lse: Float32Array, dout: Float32Array, plan: MaskPlan): Promise<{ dq: Float32Array; dk: Float32Array; dv: Float32Array }> {
  const { B, Hq, Hkv, L, S, D, Dv } = dims;
  const rows = B * Hq * L, keys = B * Hkv * S;
  // stats = lse, then D_i = do_i · o_i
  const stats = new Float32Array(2 * rows);
  for (let r = 0; r < rows; r++) stats[r] = Math.max(lse[r], -3.4028234663852886e38); // −∞ as the shader's NEG_INF
  for (let r = 0; r < rows; r++) {
    let dI = 0;
    for (let d = 0; d < Dv; d++) dI += dout[r * Dv + d] * out[r * Dv + d];
    stats[rows + r] = dI;
  }
  const [dqGroups, dkvGroups] = [B * Hq * Math.ceil(L / 64), B * Hkv * Math.ceil(S / 64)]; // a workgroup per 64 rows (keys)
  if (Math.max(dqGroups, dkvGroups) > 65535) throw new QkvError(`WebGPU attention backward: ${Math.max(dqGroups, dkvGroups)} workgroups needed, more than 65535`);
  const own = [
    upload(device, dout), upload(device, stats), upload(device, plan.aux), upload(device, plan.fl), uniform(device, sdpaParams(dims, plan)),
    acquire(device, 4 * Math.max(1, rows * D), STORAGE()), acquire(device, 4 * Math.max(1, keys * (D + Dv)), STORAGE()),
  ];
  const buffers = [qkv.q, qkv.k, qkv.v, ...own];
  try {
    const [dqPipe, dkvPipe] = pipelines(device, D, Dv);
    const [dq, dkv] = await validated(device, 'sdpa-backward', () => readBack(device, [
      encodePass(device, dqPipe, bindBuffers(device, dqPipe, buffers, [0, 1, 2, 3, 4, 5, 6, 7, 8]), dqGroups),
      encodePass(device, dkvPipe, bindBuffers(device, dkvPipe, buffers, [0, 1, 2, 3, 4, 5, 6, 7, 9]), dkvGroups),
    ], [[buffers[8], 4 * rows * D], [buffers[9], 4 * keys * (D + Dv)]]));
    return { dq, dk: dkv.slice(0, keys * D), dv: dkv.slice(keys * D) };
  } finally {
    release(device, ...own);
  }
}

/** dq, dk, dv on the GPU with every mask and score modifier of the forward kernels (the same plan). */
export const webgpuBackward: GpuBackwardKernel = { name: 'webgpu-backward', run: webgpuFlashBackward };
