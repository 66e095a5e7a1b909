// Paged attention in WebAssembly SIMD (Kwon et al. 2023): the DECODE job of asm/decode.ts with one unit per
// (row, kv head, split) — each unit reads its split's blocks of the pool where the paged KV cache keeps them (in the
// kernels' memory, storage.ts), one block a tile, for every query head of its GQA group — and the MERGE job merges the
// splits' partial results as the split-K decode's (mergeChunks). A row's keys are split only as far as the threads
// need units to share: a batch of 64 decoding rows is one unit per (row, kv head), one sequence's long context is
// cut into several (see `plan`). It covers float32 and float16 pools in kernel memory (an f16 pool read as f16, q times
// 2^112 as for the f16 contiguous cache: asm/common.ts's load4), and int8 ones (with D and Dv multiples of 16) whose
// values and scales are there too, with a causal mask or none, a sliding window or none, soft-capping or none and a
// key padding mask or none (a row's keyMask as the job's keep bytes [B][maxS]); attention weights go to the TypeScript
// kernel (cpu/sdpa-paged.ts), which attention/dispatch.ts chooses for them.
import { SIMD_WINDOW_LIMIT, type PagedKernel, type PagedProblem, type PagedResult } from '../contract.js';
import { QkvError } from '../../errors.js';
import { DECODE_JOB } from './jobs.js';
import { alignLine, JOB, kernelRuntime, put, residentOffset, runJob, scratch } from './runtime.js';
import { fitsF16Unit, mergeChunks, scaleByF16Unit } from './sdpa-flash-wasm.js';
import { kernelOffset } from './storage.js';

const BN = 64, BM = 4; // the DECODE job's score tile: 4 query rows × 64 keys
const MAX_PARTS = 64 * 2 ** 20; // bytes of partial results per call; a longer prefill chunk goes to the TypeScript kernel

/** True when this kernel can take the call (see the file's comment). */
export function pagedWasmCovers(p: PagedProblem, returnWeights = false): boolean {
  const { pool } = p;
  if (kernelRuntime() === null || returnWeights || windowWord(p.window) === null) return false;
  if (p.softcap && !(p.softcap > 0 && Number.isFinite(p.softcap))) return false; // (the TypeScript kernel's to answer)
  if (pool.D % 4 !== 0 || pool.Dv % 4 !== 0 || poolOffsets(p) === null) return false;
  if (pool.k instanceof Uint16Array && !fitsF16Unit(p.q)) return false; // q · 2^112 would overflow
  return partsBytes(p, plan(p, kernelRuntime()!.threads).splits) <= MAX_PARTS;
}

// the DECODE job's window word for a sliding window W (keys j > i − W): W − 1; −1 for none (null or 0) or for one wider
// than any pool's keys (SIMD_WINDOW_LIMIT); null (the TypeScript kernel's) for a W that is not a positive integer
function windowWord(W: number | null): number | null {
  if (!W) return -1;
  return Number.isSafeInteger(W) && W > 0 ? (W - 1 >= SIMD_WINDOW_LIMIT ? -1 : W - 1) : null;
}

/** Where the pool's keys, values and (int8) scales lie in the kernels' memory, or null when some does not. */
function poolOffsets(p: PagedProblem): { k: number; v: number; kScales: number; vScales: number; f16: boolean } | null {
  const { pool } = p;
  if (!pool.kScale && !pool.vScale) {
    const [k, v] = [kernelOffset(pool.k), kernelOffset(pool.v)];
    const f16 = pool.k instanceof Uint16Array;
    return k === null || v === null || f16 !== pool.v instanceof Uint16Array ? null : { k, v, kScales: 0, vScales: 0, f16 };
  }
  if (!(pool.k instanceof Int8Array) || !(pool.v instanceof Int8Array) || pool.D % 16 !== 0 || pool.Dv % 16 !== 0) return null;
  const [k, v, kScales, vScales] = [residentOffset(pool.k), residentOffset(pool.v), kernelOffset(pool.kScale), kernelOffset(pool.vScale)];
  return k === null || v === null || kScales === null || vScales === null ? null : { k, v, kScales, vScales, f16: false };
}

const UNITS_PER_THREAD = 8; // enough units that uneven rows still share out evenly

/**
 * How the job cuts the keys: tableStride = blocks of the longest row (the job's table is [B][tableStride]); each row's
 * keys in `splits` units of `chunk` keys (whole blocks), splits as few as give every thread UNITS_PER_THREAD units.
 */
function plan(p: PagedProblem, threads: number): { tableStride: number; splits: number; chunk: number } {
  const { blockSize, Hkv } = p.pool;
  const tableStride = Math.max(1, ...p.seqLens.map((S) => Math.ceil(S / blockSize)));
  const wanted = Math.min(tableStride, Math.ceil((UNITS_PER_THREAD * threads) / (p.B * Hkv)));
  const blocksPerSplit = Math.ceil(tableStride / wanted);
  return { tableStride, splits: Math.ceil(tableStride / blocksPerSplit), chunk: blocksPerSplit * blockSize };
}

function partsBytes(p: PagedProblem, splits: number): number {
  const R4 = ((p.Hq / p.pool.Hkv) * p.T + 3) & ~3;
  return 4 * p.B * p.pool.Hkv * splits * R4 * (p.pool.Dv + 2);
}

// every block a row reads is in the pool and every row has room for its keys: the kernel reads memory unchecked
function check(p: PagedProblem, blocks: number): void {
  const { B, Hq, T, pool } = p;
  if (!Number.isInteger(Hq / pool.Hkv) || p.q.length !== B * Hq * T * pool.D) {
    const want = `B·Hq·T·D = ${B}·${Hq}·${T}·${pool.D} floats with Hq a multiple of Hkv=${pool.Hkv}`;
    throw new QkvError(`paged-wasm: q must hold ${want}, got ${p.q.length}`);
  }
  if (p.blockTables.length !== B || p.seqLens.length !== B) {
    throw new QkvError(`paged-wasm: ${B} rows need ${B} block tables and seqLens, got ${p.blockTables.length} and ${p.seqLens.length}`);
  }
  for (let b = 0; b < B; b++) {
    const S = p.seqLens[b], table = p.blockTables[b];
    if (!Number.isInteger(S) || S < T || Math.ceil(S / pool.blockSize) > table.length) {
      const most = `${table.length * pool.blockSize} (its blocks × ${pool.blockSize})`;
      throw new QkvError(`paged-wasm: row ${b} has seqLen ${S}; it needs ≥ T=${T} and ≤ ${most}`);
    }
    for (let x = 0; x < Math.ceil(S / pool.blockSize); x++) {
      if (!Number.isInteger(table[x]) || table[x] < 0 || table[x] >= blocks) {
        throw new QkvError(`paged-wasm: row ${b}'s block ${x} is ${table[x]}; the pool has blocks 0..${blocks - 1}`);
      }
    }
  }
}

function forward(p: PagedProblem, returnWeights = false): PagedResult {
  if (!pagedWasmCovers(p, returnWeights)) {
    throw new QkvError('paged-wasm: called on a problem it does not cover (the dispatcher chooses another kernel)');
  }
  const r = kernelRuntime()!;
  const { B, Hq, T, pool } = p;
  const { Hkv, D, Dv, blockSize } = pool;
  const perBlock = Hkv * blockSize;
  const scales = pool.kScale && pool.vScale ? Math.floor(Math.min(pool.kScale.length, pool.vScale.length) / perBlock) : Infinity;
  check(p, Math.min(Math.floor(pool.k.length / (perBlock * D)), Math.floor(pool.v.length / (perBlock * Dv)), scales));
  const { tableStride, splits, chunk } = plan(p, r.threads);
  const at = poolOffsets(p)!;
  // the score tile (and an int8 tile's keys and values widened), in whole cache lines
  const perThread = alignLine(4 * BM * BN + (at.kScales ? 4 * BN * (D + Dv) : 0));
  const maxS = Math.max(0, ...p.seqLens);
  const padded = p.keyMask?.some((row, b) => !keepsAll(row, p.seqLens[b])) ?? false;
  const [q, part, tables, lens, scr, out, lse, keep] = scratch(r, [4 * B * Hq * T * D, partsBytes(p, splits), 4 * B * tableStride,
    4 * B, perThread * r.threads, 4 * B * Hq * T * Dv, 4 * B * Hq * T, padded ? B * maxS : 0]);
  put(r, q, p.q);
  if (at.f16) scaleByF16Unit(new Float32Array(r.memory.buffer, q, B * Hq * T * D)); // covers checked that it fits
  // the block tables as one [B][tableStride] array (a shorter row's last entries are never read), and the rows' lengths
  const table = new Uint32Array(r.memory.buffer, tables, B * tableStride);
  p.blockTables.forEach((t, b) => table.set(t.slice(0, Math.min(t.length, tableStride)), b * tableStride));
  new Uint32Array(r.memory.buffer, lens, B).set(p.seqLens);
  // a padding mask: row b's key j kept where keyMask[b][j] is (a row shorter than its keys masks the rest, as the
  // TypeScript kernel reads it), as bytes [B][maxS]
  if (padded) p.keyMask!.forEach((row, b) => { for (let j = 0; j < p.seqLens[b]; j++) r.bytes[keep + b * maxS + j] = row[j] ? 1 : 0; });
  runJob(r, DECODE_JOB.words({
    kind: JOB.decode, q, k: at.k, v: at.v, part, scratch: scr, scratchStride: perThread,
    B, Hq, Hkv, L: T, S: maxS, D, Dv, scale: p.scale, causal: p.causal ? 1 : 0, shift: 0, chunk, splits,
    kStride: 0, vStride: 0, paged: blockSize, tables, lens, tableStride, kScales: at.kScales, vScales: at.vScales, f16: at.f16 ? 1 : 0,
    window: windowWord(p.window)!, softcap: p.softcap || 0, keep: padded ? keep : 0, // keys j > i − W: from i − (W − 1)
    bias: 0, biasB: 0, biasH: 0, biasI: 0, alibi: 0, posShift: 0,
  }));
  return { ...mergeChunks(r, { part, out, lse, B, Hq, Hkv, L: T, Dv, splits }), maxS };
}

// whether a row's key mask keeps each of its S keys
function keepsAll(row: readonly number[], S: number): boolean {
  for (let j = 0; j < S; j++) if (!row[j]) return false;
  return true;
}

/** The WebAssembly paged kernel, as the registry holds it. */
export const sdpaPagedWasm: PagedKernel = { name: 'paged-wasm', covers: pagedWasmCovers, forward };
