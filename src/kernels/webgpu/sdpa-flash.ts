// Host side of the WGSL FlashAttention kernel (sdpa-flash.wgsl): the uniform block, and a workgroup per 64 query rows
// (or, for f16 on a device with subgroup matrices, the tensor-core kernel: sdpa-flash-matrix.ts) over q, k, v already
// on the GPU (src/attention/webgpu.ts moves host tensors there and back). Covers every mask and score modifier of
// attention() that is data — causal (both alignments), key padding, sliding and dilated windows, global tokens,
// block-sparse, documents, prefix-LM, dense keep masks and biases, soft-capping, ALiBi — with GQA/MQA and head dims
// ≤ 256, as a MaskPlan (kernels/contract.ts) lowered from the options by src/attention/mask-plan.ts. The plan's
// tables go up in pooled buffers and back after the call; the pipeline is built once per device and tile shape.
import type { AttnDims, GpuOperands, GpuSdpaKernel, MaskPlan } from '../contract.js';
import { QkvError } from '../../errors.js';
import { encodePass, release, submit, uniform, upload } from './buffers.js';
import { SDPA_PARAMS } from './uniforms.js';
import type { GpuDType } from './gpu-tensor.js';
import { bindBuffers, computePipeline, specialize, storageVariant } from './pipelines.js';
import { WGSL } from './sdpa-flash-wgsl.js';
import { WGSL as MASKS } from './sdpa-masks-wgsl.js';
import { matrixConfig } from './device.js';
import { matrixPipeline, matrixPlan, matrixWorkgroups, type MatrixPlan } from './sdpa-flash-matrix.js';

/** The plain kernel's tiles and what follows from them: blockM query rows × blockN keys (default 64 × 32), O columns
 *  per invocation (OC) and keys per staged V slice (VK). */
type FlashTiles = { blockM: number; blockN: number; OC: number; VK: number };

/**
 * The tiles of a call (o.blockM × o.blockN where given), checked against the device: whole 4 × 4 register blocks,
 * ≤ 32 O columns per invocation, the rows' partial maxima within the staging array, and the device's invocations and
 * workgroup memory.
 */
export function flashTiles(device: GPUDevice, Dv: number, o: { blockM?: number; blockN?: number } = {}): FlashTiles {
  const blockM = o.blockM ?? 64;
  const blockN = o.blockN ?? 32;
  const [TX, TY] = [blockN / 4, blockM / 4];
  const OC = Math.ceil(Dv / TX);
  const stage = 16 * (blockM + blockN); // STAGE floats
  const bytes = 4 * (stage + blockM * (blockN + 1));
  const why = !Number.isInteger(TX) || !Number.isInteger(TY) || blockM < 4 || blockN < 4 ? 'blockM and blockN must be multiples of 4'
    : blockM * TX > stage ? 'the rows\' partial maxima do not fit the staging array (blockM · blockN / 4 > 16 · (blockM + blockN))'
    : OC > 32 ? `head_dim ${Dv} needs blockN ≥ ${4 * Math.ceil(Dv / 32)} (each invocation keeps ≤ 32 columns of O)`
      : TX * TY > device.limits.maxComputeInvocationsPerWorkgroup ? `${TX * TY} invocations > the device's ${device.limits.maxComputeInvocationsPerWorkgroup}`
        : TX > device.limits.maxComputeWorkgroupSizeX || TY > device.limits.maxComputeWorkgroupSizeY ? `a workgroup of ${TX} × ${TY} > the device's ${device.limits.maxComputeWorkgroupSizeX} × ${device.limits.maxComputeWorkgroupSizeY}`
        : bytes > device.limits.maxComputeWorkgroupStorageSize ? `${bytes} bytes of workgroup memory > the device's ${device.limits.maxComputeWorkgroupStorageSize}` : null;
  if (why) throw new QkvError(`attentionWebGPU: tiles of ${blockM} × ${blockN}: ${why}`);
  const VK = [32, 16, 8, 4, 2, 1].find((n) => n <= blockN && blockN % n === 0 && n * TX * OC <= stage)!;
  return { blockM, blockN, OC, VK };
}

/** The pipeline for these tiles, built once per device: the shader's `const` lines set (its only specialisation). */
function pipeline(device: GPUDevice, t: FlashTiles, dtype: GpuDType): GPUComputePipeline {
  return computePipeline(device, `sdpa-flash ${t.blockM}x${t.blockN} oc${t.OC} vk${t.VK} ${dtype}`,
    () => storageVariant(MASKS + specialize(WGSL, { BLOCK_M: t.blockM, BLOCK_N: t.blockN, OC: t.OC, VK: t.VK }), dtype));
}

/**
 * The uniform block (struct Params of sdpa-masks.wgsl) for a call of `dims` with the mask plan `p` (lowered from the
 * options by src/attention/mask-plan.ts). Shared by the forward, tensor-core and backward kernels.
 */
export function sdpaParams(dims: AttnDims, p: MaskPlan): ArrayBuffer {
  const { B, Hq, Hkv, L, S, D, Dv } = dims;
  const on = (x: unknown) => (x === null || x === false ? 0 : 1);
  return SDPA_PARAMS.bytes({
    BH: B * Hq, Hq, Hkv, L, S, D, Dv, causal: on(p.causal), scale: p.scale, softcap: p.softcap, shift: p.shift,
    causalShift: p.causalShift, useAlibi: on(p.alibi), windowLeft: p.windowLeft, windowRight: p.windowRight, dilation: p.dilation,
    useKeyLengths: on(p.keyLengths), prefix: p.prefix, useGlobal: on(p.global), offGlobal: p.global ?? 0,
    useBlocks: on(p.blocks), blockSize: p.blocks?.size ?? 1, blockCols: p.blocks?.cols ?? 0, offBlocks: p.blocks?.offset ?? 0,
    useDocs: on(p.docs), offDocs: p.docs ?? 0, useKeep: on(p.keep), offKeep: p.keep ?? 0, useBias: on(p.bias), offBias: p.bias ?? 0,
    pad1: 0, pad2: 0,
  });
}

// records one pass of an attention pipeline over the operands, the plan's tables and uniform block
function recordSdpa(device: GPUDevice, dims: AttnDims, plan: MaskPlan, b: GpuOperands, pipe: GPUComputePipeline, workgroups: number): void {
  const extra = [upload(device, plan.aux), upload(device, plan.fl), uniform(device, sdpaParams(dims, plan))];
  submit(device, encodePass(device, pipe, bindBuffers(device, pipe, [b.q, b.k, b.v, b.out, b.lse, ...extra]), workgroups));
  release(device, ...extra);
}

/**
 * The tiled kernel (f32 or f16 storage, f32 arithmetic): a workgroup per (head, blockM query rows); takes every call.
 * Writes out and lse (NEG_INF for −∞) where they are.
 */
export const webgpuFlash: GpuSdpaKernel = {
  name: 'webgpu-flash',
  covers: () => true,
  record(device, dims, plan, b, req) {
    const tiles = flashTiles(device, dims.Dv, req);
    recordSdpa(device, dims, plan, b, pipeline(device, tiles, b.dtype), dims.B * dims.Hq * Math.ceil(dims.L / tiles.blockM));
  },
};

/** The tensor-core kernel (sdpa-flash-matrix.ts): f16 operands on a device with subgroup matrices, unless the
 *  request asks for the plain kernel. */
export const webgpuTensorCores: GpuSdpaKernel = {
  name: 'webgpu-tensor-cores',
  covers: (device, dims, _plan, b, req) => b.dtype === 'float16' && !req.plain && tensorCorePlan(device, dims.D, dims.Dv, req) !== null,
  record(device, dims, plan, b, req) {
    const tc = tensorCorePlan(device, dims.D, dims.Dv, req)!;
    recordSdpa(device, dims, plan, b, matrixPipeline(device, tc), matrixWorkgroups(dims, tc));
  },
};

/** The tensor-core kernel's tiles for these head dims on `device` (o.blockM × o.blockN where given), or null where it
 *  has no matrix units (or they do not fit its workgroup memory). */
export function tensorCorePlan(device: GPUDevice, D: number, Dv: number, o: { blockM?: number; blockN?: number } = {}): MatrixPlan | null {
  const cfg = matrixConfig(device);
  const l = device.limits; // (its fields are getters: spelled out, not spread)
  const limits = { maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize, maxComputeInvocationsPerWorkgroup: Math.min(l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX) }; // a 1-D workgroup
  return cfg ? matrixPlan(cfg, D, Dv, limits, { blockM: o.blockM, blockN: o.blockN }) : null;
}
