// The uniform block of every WGSL kernel, declared once (layout.ts): the host writes it by field name, and a test
// checks each against the `struct Params` of its shader.
import { Layout } from '../layout.js';

/** sdpa-masks.wgsl (shared by the flash, tensor-core and backward kernels): sizes, scale and every mask's table. */
export const SDPA_PARAMS = new Layout('Params', [
  ['BH', 'u32'], ['Hq', 'u32'], ['Hkv', 'u32'], ['L', 'u32'],
  ['S', 'u32'], ['D', 'u32'], ['Dv', 'u32'], ['causal', 'u32'],
  ['scale', 'f32'], ['softcap', 'f32'], ['shift', 'i32'], ['useAlibi', 'u32'],
  ['windowLeft', 'i32'], ['windowRight', 'i32'], ['dilation', 'i32'], ['useKeyLengths', 'u32'],
  ['prefix', 'i32'], ['useGlobal', 'u32'], ['offGlobal', 'u32'], ['useBlocks', 'u32'],
  ['blockSize', 'u32'], ['blockCols', 'u32'], ['offBlocks', 'u32'], ['useDocs', 'u32'],
  ['offDocs', 'u32'], ['useKeep', 'u32'], ['offKeep', 'u32'], ['useBias', 'u32'],
  ['offBias', 'u32'], ['causalShift', 'i32'], ['pad1', 'u32'], ['pad2', 'u32'],
]);

/** sdpa-decode.wgsl: split-K decoding through block tables. */
export const DECODE_PARAMS = new Layout('Params', [
  ['B', 'u32'], ['Hq', 'u32'], ['Hkv', 'u32'], ['T', 'u32'],
  ['D', 'u32'], ['Dv', 'u32'], ['blockSize', 'u32'], ['maxBlocks', 'u32'],
  ['splits', 'u32'], ['chunk', 'u32'], ['causal', 'u32'], ['window', 'i32'],
  ['scale', 'f32'], ['softcap', 'f32'], ['useKeyMask', 'u32'], ['maxS', 'u32'],
]);

/** matmul.wgsl: C [M, N] = A [M, K] · Wᵀ (+ bias). */
export const MATMUL_PARAMS = new Layout('Params', [['M', 'u32'], ['K', 'u32'], ['N', 'u32'], ['useBias', 'u32']]);

/** ops.wgsl: sizes whose meaning each entry point gives (see ops.ts), and ε of RMSNorm. */
export const OPS_PARAMS = new Layout('Params', [
  ['n', 'u32'], ['a', 'u32'], ['b', 'u32'], ['c', 'u32'], ['d', 'u32'], ['e', 'u32'], ['pad', 'u32'], ['eps', 'f32'],
]);

/** scatter.wgsl: x [R, H, C] → pool slots [R] of a [blocks, H, blockSize, C] pool. */
export const SCATTER_PARAMS = new Layout('Params', [['R', 'u32'], ['H', 'u32'], ['C', 'u32'], ['blockSize', 'u32']]);

/** transpose.wgsl: x [A, B, C] → out [B, capA, C] at rows off …. */
export const TRANSPOSE_PARAMS = new Layout('Params', [
  ['A', 'u32'], ['B', 'u32'], ['C', 'u32'], ['capA', 'u32'], ['off', 'u32'], ['pad0', 'u32'], ['pad1', 'u32'], ['pad2', 'u32'],
]);
