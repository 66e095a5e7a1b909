// Host side of the tensor-core FlashAttention kernel (sdpa-flash-matrix.wgsl): f16 q, k, v, out on a device opened
// with subgroup matrices (device.ts: matrixConfig). Same masks, score modifiers, GQA and results as sdpa-flash.wgsl
// — it reads the same uniforms and tables (maskTables) — except that P is rounded to f16 before P·V, as on every
// tensor-core FlashAttention. flashOnGpu (sdpa-flash.ts) sends f16 calls here when the device has the matrix units.
import type { AttnShape } from '../../attention/validate.js';
import type { MatrixConfig } from './device.js';
import { computePipeline } from './pipelines.js';
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
 * The largest tiles that fit the device: up to 4 subgroups (4·SM query rows) per workgroup and up to 64 keys per
 * tile, fewer where the head dims make the tiles too big for its workgroup memory. Null when not even one subgroup
 * with the smallest key tile fits, or when a matrix has more rows than a subgroup has lanes.
 */
export function matrixPlan(cfg: MatrixConfig, D: number, Dv: number, limits: { maxComputeWorkgroupStorageSize: number; maxComputeInvocationsPerWorkgroup: number }): MatrixPlan | null {
  if (cfg.M > cfg.lanes) return null; // the softmax gives each row of a subgroup's SM to one of its lanes
  const DP = roundUp(D, cfg.K);
  const DVP = roundUp(Dv, cfg.N);
  const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
  const step = (cfg.N * cfg.K) / gcd(cfg.N, cfg.K); // a key tile is whole S columns (SN) and whole P·V steps (SK) …
  const minBlock = roundUp(cfg.M, step); // … and holds one subgroup's Q rows while they are staged
  for (const subgroups of [4, 2, 1]) {
    if (subgroups * cfg.lanes > limits.maxComputeInvocationsPerWorkgroup) continue;
    for (let blockN = Math.max(roundUp(64, step), minBlock); blockN >= minBlock; blockN -= step) {
      const plan = { cfg, subgroups, blockN, DP, DVP };
      if (planBytes(plan) <= limits.maxComputeWorkgroupStorageSize) return plan;
    }
  }
  return null;
}

/** The shader for a plan: its `const` lines set, the shared mask code after the `enable` directives. */
export function matrixShader(p: MatrixPlan): string {
  const consts: Record<string, number> = { SM: p.cfg.M, SN: p.cfg.N, SK: p.cfg.K, SG: p.cfg.lanes, NSG: p.subgroups, BLOCK_N: p.blockN, DP: p.DP, DVP: p.DVP, W: Math.max(p.blockN, p.DVP) };
  let body = WGSL;
  for (const [name, value] of Object.entries(consts)) body = body.replace(new RegExp(`const ${name}: u32 = \\d+u;`), `const ${name}: u32 = ${value}u;`);
  const enables = body.match(/^enable [^;]+;$/gm) ?? [];
  return ['enable f16;', ...enables, MASKS, body.replace(/^enable [^;]+;$/gm, '')].join('\n');
}

/** The pipeline of a plan, built once per device and plan. */
export function matrixPipeline(device: GPUDevice, p: MatrixPlan): Promise<GPUComputePipeline> {
  const { M, N, K, lanes } = p.cfg;
  return computePipeline(device, `sdpa-flash-matrix ${M}x${N}x${K}/${lanes} ${p.subgroups}sg n${p.blockN} d${p.DP}x${p.DVP}`, matrixShader(p));
}

/** Workgroups of a call: one per (head, NSG·SM query rows). */
export function matrixWorkgroups(dims: AttnShape, p: MatrixPlan): number {
  return dims.B * dims.Hq * Math.ceil(dims.L / (p.subgroups * p.cfg.M));
}
