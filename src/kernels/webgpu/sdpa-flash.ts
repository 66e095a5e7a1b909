// Host side of the WGSL FlashAttention kernel (sdpa-flash.wgsl): the mask tables and uniforms, and a workgroup per 64
// query rows (or, for f16 on a device with subgroup matrices, the tensor-core kernel: sdpa-flash-matrix.ts) over q, k, v already on the GPU (src/attention/webgpu.ts moves host tensors there and back). Covers every mask and score modifier of attention() that is data — causal (both
// alignments), key padding, sliding and dilated windows, global tokens, block-sparse, documents, prefix-LM, dense
// keep masks and biases, soft-capping, ALiBi — with GQA/MQA and head dims ≤ 256. JavaScript maskMod/scoreMod
// functions cannot run on a GPU: src/attention/webgpu.ts sends those calls to the CPU.
// The mask tables' buffers come from the device's pool and go back after the call; the pipeline is built once per device.
import type { AttentionOptions } from '../../attention/options.js';
import type { AttnShape } from '../../attention/validate.js';
import { Tensor } from '../../tensor/tensor.js';
import { QkvError } from '../../errors.js';
import { encodePass, release, submit, uniform, upload } from './buffers.js';
import { SDPA_PARAMS } from './uniforms.js';
import type { GpuDType } from './gpu-tensor.js';
import { bindBuffers, computePipeline, specialize, storageVariant } from './pipelines.js';
import { WGSL } from './sdpa-flash-wgsl.js';
import { WGSL as MASKS } from './sdpa-masks-wgsl.js';
import { matrixConfig } from './device.js';
import { matrixPipeline, matrixPlan, matrixWorkgroups, type MatrixPlan } from './sdpa-flash-matrix.js';

const SUPPORTED = new Set(['scale', 'causal', 'window', 'dilation', 'keyLengths', 'softcap', 'alibiSlopes', 'kernel',
  'globalTokens', 'blockSparse', 'cuSeqlens', 'prefix', 'mask', 'bias', 'returnWeights', 'returnStats', 'blockM', 'blockN', 'numSplits']);

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

/** Why the WGSL kernel cannot take these options, or null when it can. */
export function webgpuUnsupported(o: AttentionOptions, D: number, Dv: number): string | null {
  const extra = Object.keys(o).filter((k) => !SUPPORTED.has(k) && (o as Record<string, unknown>)[k] !== undefined);
  if (extra.length) return `option${extra.length > 1 ? 's' : ''} ${extra.join(', ')} not on WebGPU (JavaScript functions run on the CPU)`;
  if (o.mask && !(o.mask instanceof Tensor)) return 'a mask spec (masks.*) that options cannot express (most ORs, a maskMod) is not on WebGPU';
  if (o.returnWeights || o.returnStats) return 'weights and statistics come from the CPU kernels';
  if (Dv > 256 || D > 256) return `head_dim ${Math.max(D, Dv)} > 256`;
  if (D < 1) return 'empty head_dim';
  return null;
}

/** A block-sparse layout as a table of allowed (query block, key block) pairs (masks.blockSparseTable). */
export type BlockTable = { blocks: Uint8Array; rows: number; cols: number };

/**
 * What the mask functions of sdpa-masks.wgsl read: aux (u32) and fl (f32), the small tables of the masks at the offsets
 * the uniforms name, and the uniform block (struct Params). Shared by the forward and backward kernels.
 */
export function maskTables(dims: AttnShape, o: AttentionOptions, blockTable?: BlockTable, shift?: number):
  { aux: Uint32Array; fl: Float32Array; params: ArrayBuffer } {
  const { B, Hq, Hkv, L, S, D, Dv } = dims;
  const list = (x: readonly number[] | Tensor) => (x instanceof Tensor ? x.toArray() : [...x]);
  const window = o.window ?? [-1, -1];
  // aux (u32) and fl (f32): the small tables the masks read, at the offsets the uniforms name
  const aux: number[] = o.keyLengths === undefined ? Array(B).fill(0) : list(o.keyLengths);
  const take = (values: ArrayLike<number>) => { const at = aux.length; for (let x = 0; x < values.length; x++) aux.push(values[x]); return at; };
  const offGlobal = o.globalTokens ? take(Array.from({ length: S }, (_, j) => (o.globalTokens!.includes(j) ? 1 : 0))) : 0;
  const table = o.blockSparse ? blockTable ?? null : null; // built by the attention layer (masks.blockSparseTable)
  if (o.blockSparse && !table) throw new QkvError('WebGPU attention: blockSparse needs its block table');
  const offBlocks = table ? take(table.blocks) : 0;
  let offDocs = 0;
  if (o.cuSeqlens !== undefined) {
    const cu = list(o.cuSeqlens);
    const start = new Array<number>(S).fill(0);
    const end = new Array<number>(S).fill(S);
    for (let t = 0; t + 1 < cu.length; t++) for (let x = cu[t]; x < cu[t + 1]; x++) { start[x] = cu[t]; end[x] = cu[t + 1]; }
    offDocs = take([...start, ...end]);
  }
  const dense = (t: Tensor) => t.broadcastTo([B, Hq, L, S]).toArray(); // a user-given dense mask or bias, expanded
  const keep = o.mask instanceof Tensor && o.mask.dtype === 'bool' ? o.mask : null;
  const offKeep = keep ? take(dense(keep)) : 0;
  const biasT = o.bias ?? (o.mask instanceof Tensor && o.mask.dtype !== 'bool' ? o.mask : null);
  const fl: number[] = o.alibiSlopes ? Array.from(o.alibiSlopes) : Array(Hq).fill(0);
  const offBias = fl.length;
  if (biasT) fl.push(...dense(biasT));
  // the uniform block, field by field (uniforms.ts declares its layout)
  const params = SDPA_PARAMS.bytes({
    BH: B * Hq, Hq, Hkv, L, S, D, Dv, causal: o.causal ? 1 : 0, scale: o.scale ?? 1 / Math.sqrt(D), softcap: o.softcap ?? 0,
    shift: shift ?? S - L, // every structured mask places row i at i + S − L (a KV cache: its own shift) …
    causalShift: shift ?? (o.causal === 'bottom-right' ? S - L : 0), // … except a top-left causal limit (keys ≤ i)
    useAlibi: o.alibiSlopes ? 1 : 0,
    windowLeft: Number.isFinite(window[0]) ? window[0] : -1, windowRight: Number.isFinite(window[1]) ? window[1] : -1,
    dilation: o.dilation ?? 1, useKeyLengths: o.keyLengths !== undefined ? 1 : 0, prefix: o.prefix ?? -1,
    useGlobal: o.globalTokens ? 1 : 0, offGlobal,
    useBlocks: table ? 1 : 0, blockSize: o.blockSparse?.blockSize ?? 1, blockCols: table?.cols ?? 0, offBlocks,
    useDocs: o.cuSeqlens !== undefined ? 1 : 0, offDocs, useKeep: keep ? 1 : 0, offKeep, useBias: biasT ? 1 : 0, offBias, pad1: 0, pad2: 0,
  });
  return { aux: Uint32Array.from(aux), fl: Float32Array.from(fl), params };
}

/**
 * Records and submits the kernel over operands already on the GPU; writes out and lse (NEG_INF for −∞) there.
 * `b.dtype` is the storage type of q, k, v and out (float16 needs shader-f16); lse is float32.
 * `shift` overrides where row i sits (i + shift, for the causal limit and every other mask): a KV cache passes S = its
 * capacity (the head stride of its buffers) and shift = length − L, so keys past its length are never read.
 */
export function flashOnGpu(device: GPUDevice, dims: AttnShape, o: AttentionOptions,
  b: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; out: GPUBuffer; lse: GPUBuffer; dtype?: GpuDType },
  blockTable?: BlockTable, shift?: number):
  'webgpu-flash' | 'webgpu-tensor-cores' {
  const { B, Hq, L, D, Dv } = dims;
  const { aux, fl, params } = maskTables(dims, o, blockTable, shift);
  const extra = [upload(device, aux), upload(device, fl), uniform(device, params)];
  // f16 on a device with matrix units: the tensor-core kernel (unless o.kernel asks for the plain 'flash' one)
  const plan = b.dtype === 'float16' && o.kernel !== 'flash' ? tensorCorePlan(device, D, Dv, o) : null;
  const tiles = plan ? null : flashTiles(device, Dv, o);
  const pipe = plan ? matrixPipeline(device, plan) : pipeline(device, tiles!, b.dtype ?? 'float32');
  // one workgroup per (head, tile of query rows): blockM rows, or the tensor-core kernel's subgroups × SM
  const workgroups = plan ? matrixWorkgroups(dims, plan) : B * Hq * Math.ceil(L / tiles!.blockM);
  submit(device, encodePass(device, pipe, bindBuffers(device, pipe, [b.q, b.k, b.v, b.out, b.lse, ...extra]), workgroups));
  release(device, ...extra);
  return plan ? 'webgpu-tensor-cores' : 'webgpu-flash';
}

/** The tensor-core kernel's tiles for these head dims on `device` (o.blockM × o.blockN where given), or null where it
 *  has no matrix units (or they do not fit its workgroup memory). */
export function tensorCorePlan(device: GPUDevice, D: number, Dv: number, o: { blockM?: number; blockN?: number } = {}): MatrixPlan | null {
  const cfg = matrixConfig(device);
  const l = device.limits; // (its fields are getters: spelled out, not spread)
  const limits = { maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize, maxComputeInvocationsPerWorkgroup: Math.min(l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX) }; // a 1-D workgroup
  return cfg ? matrixPlan(cfg, D, Dv, limits, { blockM: o.blockM, blockN: o.blockN }) : null;
}
