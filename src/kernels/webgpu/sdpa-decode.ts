// Host side of the WGSL split-K decode kernel (sdpa-decode.wgsl): paged attention through block tables, and dense
// attention for a few query rows as the one-block-per-row special case. Two passes in one submission: `partial`
// (a workgroup per (row, chunk of keys)) and `merge` (a workgroup per row).
import type { AttnDims, GpuPagedKernel, GpuPagedProblem, GpuSdpaKernel, MaskPlan, PagedProblem } from '../contract.js';
import { QkvError } from '../../errors.js';
import { acquire, encodePass, readBack, release, STORAGE, submit, uniform, upload } from './buffers.js';
import { DECODE_PARAMS } from './uniforms.js';
import type { GpuDType } from './gpu-tensor.js';
import { bindBuffers, computePipeline, storageVariant, validated } from './pipelines.js';
import { WGSL } from './sdpa-decode-wgsl.js';

const BLOCK_N = 64;
/** Query rows one dispatch takes (its y dimension). */
export const MAX_ROWS = 65535;

/** Keys per chunk: whole tiles, at most 32 chunks per row. */
export function decodeChunking(maxS: number): { splits: number; chunk: number } {
  const splits = Math.max(1, Math.min(32, Math.ceil(maxS / BLOCK_N)));
  const chunk = BLOCK_N * Math.max(1, Math.ceil(maxS / splits / BLOCK_N));
  return { splits: Math.max(1, Math.ceil(maxS / chunk)), chunk };
}

/** Why the decode kernel cannot take this paged problem, or null. */
export function pagedUnsupported(p: PagedProblem): string | null {
  if (!(p.pool.k instanceof Float32Array) || !(p.pool.v instanceof Float32Array)) return 'int8 and f16 pools are read on the CPU only';
  if (p.pool.D > 256 || p.pool.Dv > 256) return `head_dim ${Math.max(p.pool.D, p.pool.Dv)} > 256`;
  if (p.B * p.Hq * p.T > MAX_ROWS) return `${p.B * p.Hq * p.T} query rows > ${MAX_ROWS}`;
  return null;
}

/** Paged attention on the GPU: out [B, Hq, T, Dv] and lse [B, Hq, T], as src/kernels/cpu/sdpa-paged.ts computes them. */
export async function webgpuPagedAttention(device: GPUDevice, p: PagedProblem): Promise<{ out: Float32Array; lse: Float32Array }> {
  const why = pagedUnsupported(p);
  if (why) throw new QkvError(`webgpuPagedAttention: ${why}`);
  const { B, Hq, T, pool } = p;
  const { blockSize, Hkv, D, Dv } = pool;
  if (p.blockTables.length !== B || p.seqLens.length !== B) throw new QkvError(`webgpuPagedAttention: ${B} rows need ${B} block tables and seqLens, got ${p.blockTables.length} and ${p.seqLens.length}`);
  if (p.q.length !== B * Hq * T * D) throw new QkvError(`webgpuPagedAttention: q has ${p.q.length} values, expected B·Hq·T·D = ${B}·${Hq}·${T}·${D}`);
  if (Hq % Hkv !== 0) throw new QkvError(`webgpuPagedAttention: Hkv=${Hkv} must divide Hq=${Hq}`);
  const numBlocks = pool.k.length / (Hkv * blockSize * D);
  if (!Number.isInteger(numBlocks) || pool.v.length !== numBlocks * Hkv * blockSize * Dv) {
    throw new QkvError(`webgpuPagedAttention: pools of ${pool.k.length} keys and ${pool.v.length} values are not whole blocks of [Hkv=${Hkv}, ${blockSize}, D=${D} / Dv=${Dv}]`);
  }
  const maxS = Math.max(1, ...p.seqLens);
  const maxBlocks = Math.max(1, ...p.blockTables.map((t) => t.length));
  // aux = seqLens [B] · tables [B, maxBlocks] · keyMask [B, maxS]; every table entry a real block, checked here
  const aux = new Uint32Array(B + B * maxBlocks + (p.keyMask ? B * maxS : 0));
  for (let b = 0; b < B; b++) {
    const S = p.seqLens[b];
    if (!Number.isInteger(S) || S < T || Math.ceil(S / blockSize) > p.blockTables[b].length) {
      throw new QkvError(`webgpuPagedAttention: row ${b} has seqLen ${S}; it needs ≥ T=${T} and ≤ ${p.blockTables[b].length * blockSize} (its blocks × ${blockSize})`);
    }
    aux[b] = S;
    p.blockTables[b].forEach((blk, x) => {
      if (!Number.isInteger(blk) || blk < 0 || blk >= numBlocks) throw new QkvError(`webgpuPagedAttention: block table ${b} entry ${x} is ${blk}; the pool has ${numBlocks} blocks`);
      aux[B + b * maxBlocks + x] = blk;
    });
    if (p.keyMask) for (let j = 0; j < S; j++) aux[B + B * maxBlocks + b * maxS + j] = p.keyMask[b][j] ? 1 : 0;
  }
  const rows = B * Hq * T;
  const buffers = [upload(device, p.q), upload(device, pool.k), upload(device, pool.v)];
  const out = acquire(device, 4 * rows * Dv, STORAGE()), lse = acquire(device, 4 * rows, STORAGE());
  try {
    return await validated(device, 'sdpa-decode', async () => {
      decodeOnGpu(device, { ...p, q: buffers[0], k: buffers[1], v: buffers[2], aux, maxS, maxBlocks, out, lse });
      const [o, l] = await readBack(device, [], [[out, 4 * rows * Dv], [lse, 4 * rows]]);
      return { out: o, lse: l.map((x) => (x <= -3.4e38 ? -Infinity : x)) };
    });
  } finally {
    release(device, ...buffers, out, lse);
  }
}

/** A decode problem whose operands are on the GPU already (aux as built by webgpuPagedAttention or a GPU paged cache). */
export type GpuDecodeProblem = GpuPagedProblem;

/** Records and submits both passes; out [rows, Dv] and lse [rows] (NEG_INF for −∞) are written on the GPU. */
export function decodeOnGpu(device: GPUDevice, p: GpuDecodeProblem): void {
  const { B, Hq, T, pool } = p;
  const { blockSize, Hkv, D, Dv } = pool;
  const { splits, chunk } = decodeChunking(p.maxS);
  const rows = B * Hq * T;
  const params = DECODE_PARAMS.bytes({
    B, Hq, Hkv, T, D, Dv, blockSize, maxBlocks: p.maxBlocks, splits, chunk, causal: p.causal ? 1 : 0, window: p.window ?? 0,
    scale: p.scale, softcap: p.softcap, useKeyMask: p.useKeyMask || (p.aux.length > B + B * p.maxBlocks) ? 1 : 0, maxS: p.maxS,
  });
  const aux = upload(device, p.aux), part = acquire(device, 4 * rows * splits * (Dv + 2), STORAGE()), u = uniform(device, params);
  const buffers = [p.q, p.k, p.v, aux, part, p.out, p.lse, u];
  const dtype = p.dtype ?? 'float32';
  const code = () => storageVariant(WGSL, dtype);
  const [partial, merge] = [computePipeline(device, `sdpa-decode ${dtype}`, code, 'partial'), computePipeline(device, `sdpa-decode ${dtype}`, code, 'merge')];
  submit(device,
    encodePass(device, partial, bindBuffers(device, partial, buffers, [0, 1, 2, 3, 4, 7]), splits, rows),
    encodePass(device, merge, bindBuffers(device, merge, buffers, [4, 5, 6, 7]), rows),
  );
  release(device, aux, part, u); // later queue work comes after these passes
}

/**
 * Dense keys and values on the GPU, k [B, Hkv, S, D] and v [B, Hkv, S, Dv] (S: the buffers' head stride, e.g. a KV
 * cache's capacity), as the decode kernel's block pool: B blocks of S slots, row b's table [b], its first `len` keys.
 */
export function denseDecodeOnGpu(device: GPUDevice, dims: AttnDims, o: { scale: number; softcap: number; causal: boolean; window: number | null },
  b: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; out: GPUBuffer; lse: GPUBuffer; dtype?: GpuDType }, len = dims.S): void {
  const { B, Hq, Hkv, L, S, D, Dv } = dims;
  const aux = Uint32Array.from([...Array<number>(B).fill(len), ...Array.from({ length: B }, (_, x) => x)]);
  return decodeOnGpu(device, { ...b, ...o, B, Hq, T: L, pool: { blockSize: S, Hkv, D, Dv }, aux, maxS: len, maxBlocks: 1 });
}

// what the decode kernel reads of a plan: causal at the plan's offset (or no mask), a causal window, soft-capping
function decodeReads(p: MaskPlan): boolean {
  const tables = p.keyLengths || p.alibi || p.global !== null || p.blocks !== null || p.docs !== null || p.keep !== null || p.bias !== null;
  if (tables || p.prefix !== -1 || p.dilation !== 1 || p.shift < 0) return false;
  if (!p.causal) return p.windowLeft === -1 && p.windowRight === -1;
  return p.causalShift === p.shift; // bottom-right: row i sees keys ≤ i + shift (a right window adds nothing)
}

/**
 * Split-K decoding of dense keys and values as a block pool of one block per row: a few query rows (≤ 8) whose masks
 * are what it reads. Row i sits at key i + shift, so the keys it reads are the first shift + L (a KV cache's length).
 */
export const webgpuDecode: GpuSdpaKernel = {
  name: 'webgpu-decode',
  covers: (_device, d, plan) => d.L <= 8 && d.D <= 256 && d.Dv <= 256 && d.B * d.Hq * d.L <= MAX_ROWS && decodeReads(plan),
  record(device, dims, p, b) {
    const window = p.causal && p.windowLeft >= 0 ? p.windowLeft + 1 : null; // keys j ≥ i − left, i.e. j > i − W
    denseDecodeOnGpu(device, dims, { scale: p.scale, softcap: p.softcap, causal: p.causal, window }, b, p.shift + dims.L);
  },
};

/** Paged attention through block tables (f32 pools). */
export const webgpuPaged: GpuPagedKernel = {
  name: 'webgpu-paged', unsupported: pagedUnsupported, run: webgpuPagedAttention, record: decodeOnGpu,
};
