// Host side of the tensor-core FlashAttention kernel (sdpa-flash-matrix.wgsl): f16 q, k, v, out on a device opened
// with subgroup matrices (device.ts: matrixConfig). Same masks, score modifiers, GQA and results as sdpa-flash.wgsl
// — it reads the same uniforms and tables (the mask plan) — except that P is rounded to f16 before P·V, as on every
// tensor-core FlashAttention. flashOnGpu (sdpa-flash.ts) sends f16 calls here when the device has the matrix units.
import type { AttnDims } from '../contract.js';
import type { MatrixConfig } from './device.js';
import { QkvError } from '../../errors.js';
import { computePipeline, specialize } from './pipelines.js';
import { WGSL } from './sdpa-flash-matrix-wgsl.js';
import { WGSL as MASKS } from './sdpa-masks-wgsl.js';

/** The tile sizes of one call: subgroups per workgroup, keys per tile, the head dims padded to whole matrices. */
export type MatrixPlan = { cfg: MatrixConfig; subgroups: number; blockN: number; DP: number; DVP: number };

const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;

/** Workgroup memory of a plan, in bytes: the K/V tile (f16), the per-subgroup scratch (f32) and P tile (f16), the row scales. */
export function planBytes(p: MatrixPlan): number {
  const rows = p.subgroups * p.cfg.M;
  return 2 * p.blockN * (p.DP + p.DVP) + 4 * rows * Math.max(p.blockN, p.DVP) + 2 * rows * p.blockN + 4 * rows;
}

/**
 * The tiles of a call: up to 4 subgroups (4·SM query rows) per workgroup and up to 64 keys per tile, fewer where the
 * head dims make the tiles too big for the device's workgroup memory; or exactly `want` (blockM query rows = a whole
 * number of subgroups × SM, blockN keys), which must fit. Null when nothing fits, or when a matrix has more rows than a
 * subgroup has lanes (the softmax gives each row a lane).
 */
export function matrixPlan(cfg: MatrixConfig, D: number, Dv: number, limits: { maxComputeWorkgroupStorageSize: number; maxComputeInvocationsPerWorkgroup: number },
  want: { blockM?: number; blockN?: number } = {}): MatrixPlan | null {
  if (cfg.M > cfg.lanes) return null;
  const DP = roundUp(D, cfg.K);
  const DVP = roundUp(Dv, cfg.N);
  const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
  const step = (cfg.N * cfg.K) / gcd(cfg.N, cfg.K); // a key tile is whole S columns (SN) and whole P·V steps (SK) …
  const minBlock = roundUp(cfg.M, step); // … and holds one subgroup's Q rows while they are staged
  const fits = (p: MatrixPlan) => p.subgroups * cfg.lanes <= limits.maxComputeInvocationsPerWorkgroup && planBytes(p) <= limits.maxComputeWorkgroupStorageSize;
  if (want.blockM !== undefined || want.blockN !== undefined) return wantedPlan(cfg, DP, DVP, step, minBlock, want, fits);
  for (const subgroups of [4, 2, 1]) {
    for (let blockN = Math.max(roundUp(64, step), minBlock); blockN >= minBlock; blockN -= step) {
      const plan = { cfg, subgroups, blockN, DP, DVP };
      if (fits(plan)) return plan;
    }
  }
  return null;
}

// the plan `want` asks for (the rest as large as fits), or a QkvError that says what the tiles may be
function wantedPlan(cfg: MatrixConfig, DP: number, DVP: number, step: number, minBlock: number, want: { blockM?: number; blockN?: number },
  fits: (p: MatrixPlan) => boolean): MatrixPlan {
  const { blockM, blockN } = want;
  if (blockM !== undefined && (!Number.isInteger(blockM / cfg.M) || blockM < cfg.M)) throw new QkvError(`attentionWebGPU: blockM ${blockM} on the tensor cores must be a multiple of their ${cfg.M} rows`);
  if (blockN !== undefined && (!Number.isInteger(blockN / step) || blockN < minBlock)) throw new QkvError(`attentionWebGPU: blockN ${blockN} on the tensor cores must be a multiple of ${step}, at least ${minBlock}`);
  for (const subgroups of blockM !== undefined ? [blockM / cfg.M] : [4, 2, 1]) {
    for (const n of blockN !== undefined ? [blockN] : [64, 48, 32, 16, 8].map((x) => roundUp(x, step)).filter((x) => x >= minBlock)) {
      const plan = { cfg, subgroups, blockN: n, DP, DVP };
      if (fits(plan)) return plan;
    }
  }
  throw new QkvError(`attentionWebGPU: tiles of ${blockM ?? 'any'} rows × ${blockN ?? 'any'} keys at head dims ${DP}/${DVP} do not fit this device's workgroup memory or invocations`);
}

/** The shader for a plan: its `const` lines set, the shared mask code after the `enable` directives. */
export function matrixShader(p: MatrixPlan): string {
  const body = specialize(WGSL, { SM: p.cfg.M, SN: p.cfg.N, SK: p.cfg.K, SG: p.cfg.lanes, NSG: p.subgroups, BLOCK_N: p.blockN, DP: p.DP, DVP: p.DVP, W: Math.max(p.blockN, p.DVP) });
  const enables = body.match(/^enable [^;]+;$/gm) ?? [];
  return ['enable f16;', ...enables, MASKS, body.replace(/^enable [^;]+;$/gm, '')].join('\n');
}

/** The pipeline of a plan, built once per device and plan. */
export function matrixPipeline(device: GPUDevice, p: MatrixPlan): GPUComputePipeline {
  const { M, N, K, lanes } = p.cfg;
  return computePipeline(device, `sdpa-flash-matrix ${M}x${N}x${K}/${lanes} ${p.subgroups}sg n${p.blockN} d${p.DP}x${p.DVP}`, () => matrixShader(p));
}

/** Workgroups of a call: one per (head, NSG·SM query rows). */
export function matrixWorkgroups(dims: AttnDims, p: MatrixPlan): number {
  return dims.B * dims.Hq * Math.ceil(dims.L / (p.subgroups * p.cfg.M));
}
