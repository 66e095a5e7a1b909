// The WebAssembly SIMD rung of the CPU ladder: the ATTENTION job of asm/kernels.ts behind the same contract as the
// TypeScript kernels, on as many threads as the runtime has (runtime.ts). It covers the calls it knows — no mask or a
// causal one (with a causal sliding window or without), a key padding mask (with those or alone), every score modifier
// but a user's function (soft-capping, an additive bias, ALiBi), head_dim and value dim multiples of 4 — and the
// dispatcher (attention/dispatch.ts) gives every other call to the tiled TypeScript kernels (sdpa-flash.ts; sdpa-decode.ts
// for one query row).
// A few query rows (decoding: L ≤ 8) go to the DECODE job instead — split-K over the keys, so that threads share a
// single row's work — and the MERGE job then merges the chunks' partial results (see asm/decode.ts). It reads keys and values
// in place when they already live in the kernels' memory (a KV cache on kernel storage, storage.ts).
// Host side: q, k, v are copied into linear memory (O(L·D), small next to the O(L·S·D) work), k is packed into
// panels of 8 keys, the kernel runs, out lands in the layer's arena (tensor/arena.ts) when one is open — else it is
// copied back — and lse = m · ln 2 + log l is formed from each row's statistics.
import type {
  KernelMask, KernelScoreMods, SdpaForwardRequest, SdpaForwardResult, SdpaKernel, SdpaProblem, SimdMask, SimdMods,
} from '../contract.js';
import { sdpaFlash } from '../cpu/sdpa-flash.js';
import { QkvError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { ATTENTION_JOB, DECODE_JOB, MERGE_JOB, PACK_K_JOB } from './jobs.js';
import { activationFloats } from '../../tensor/arena.js';
import { alignLine, JOB, kernelRuntime, put, putTensor, runJob, type Runtime, scratch, take, takeInto } from './runtime.js';
import { kernelOffset } from './storage.js';

const BN = 64, BM = 4, BLOCK_M = 32; // the kernel's tiles: micro-blocks of 4 query rows × 64 keys, units of 32 rows

/** True when the WebAssembly kernel can take this problem. */
export function wasmSupports(p: SdpaProblem, req: SdpaForwardRequest = {}): boolean {
  return kernelRuntime() !== null && modsOf(p) !== null && planOf(p) !== null &&
    p.D % 4 === 0 && p.Dv % 4 === 0 && !req.stats && !req.weights;
}

// The call's mask as the jobs take it (SimdMask: causal, shift, window, a key padding mask's bytes [B, S] or null), or
// null when they cannot. Made once per mask: the dispatcher's covers, the forward's check and the forward itself ask for
// it, and a padding mask's plan is B·S bytes built afresh (masks are bound to one call's sizes, so never stale).
const NO_MASK: SimdMask = { causal: false, shift: 0, window: -1, keep: null };
const plans = new WeakMap<KernelMask, SimdMask | null>();
function planOf(p: SdpaProblem): SimdMask | null {
  if (!p.mask) return NO_MASK;
  if (!plans.has(p.mask)) plans.set(p.mask, p.mask.simdPlan());
  return plans.get(p.mask)!;
}

const NO_MODS: SimdMods = { softcap: 0, bias: null, alibiSlopes: null, shift: 0 };

// The call's score modifiers as the jobs take them, or null when they cannot: a score function, or a term too large.
// The jobs' scores are f32 in base 2 (× log2 e): a bias or ALiBi term of 2^126 or more would overflow there — torch's
// additive masks are −3.4e38 (finfo.min), and a row masked that way everywhere is transformers' uniform average, not
// an empty row — so such calls stay with the TypeScript kernels, which sum in f64. −∞ (a mask) is no term: it fits.
// Made once per call, as planOf's mask (the bias is scanned once).
const MOD_LIMIT = 2 ** 126;
const modPlans = new WeakMap<KernelScoreMods, SimdMods | null>();
function modsOf(p: SdpaProblem): SimdMods | null {
  if (!p.mods) return NO_MODS;
  if (!modPlans.has(p.mods)) {
    const m = p.mods.simdMods();
    const slopesFit = !m?.alibiSlopes || m.alibiSlopes.every((x) => Math.abs(x) * (p.L + p.S) < MOD_LIMIT);
    modPlans.set(p.mods, m !== null && slopesFit && (!m.bias || biasFits(p, m)) ? m : null);
  }
  return modPlans.get(p.mods) ?? null;
}

// every bias value the call reads is below MOD_LIMIT in size, or −∞
function biasFits(p: SdpaProblem, mods: SimdMods): boolean {
  const { data, strides } = mods.bias!;
  const sj = strides[3];
  let ok = true;
  forEachBiasRow(p, mods, (src) => {
    for (let j = 0; j < p.S && ok; j++) {
      const x = data[src + j * sj];
      ok = x < MOD_LIMIT && (x > -MOD_LIMIT || x === -Infinity);
    }
  });
  return ok;
}

// each row of S keys the call reads from the bias, in biasLayout's order: its first key's index in the bias's data
function forEachBiasRow(p: SdpaProblem, mods: SimdMods, fn: (src: number, row: number) => void): void {
  const { strides: [sb, sh, si], offset } = mods.bias!;
  const { Bb, Hb, Lb } = biasLayout(p, mods);
  let row = 0;
  for (let b = 0; b < Bb; b++) {
    for (let h = 0; h < Hb; h++) for (let i = 0; i < Lb; i++) fn(offset + b * sb + h * sh + i * si, row++);
  }
}

// An additive bias as the jobs read it: [Bb][Hb][Lb][S] floats, each of Bb, Hb, Lb 1 where the bias broadcasts along that
// dim (stride 0, or a size of 1) — T5's [1, H, L, S] stays its own size, never B × Hq × L × S — and the jobs' strides
function biasLayout(p: SdpaProblem, mods: SimdMods) {
  const [sb, sh, si] = mods.bias!.strides;
  const [Bb, Hb, Lb] = [sb === 0 ? 1 : p.B, sh === 0 ? 1 : p.Hq, si === 0 ? 1 : p.L];
  const biasB = Bb > 1 ? Hb * Lb * p.S : 0, biasH = Hb > 1 ? Lb * p.S : 0, biasI = Lb > 1 ? p.S : 0;
  return { floats: Bb * Hb * Lb * p.S, Bb, Hb, Lb, biasB, biasH, biasI };
}

// bytes of scratch for the call's mask and modifiers: keep bytes, the compact bias, the ALiBi slopes
function maskBytes(p: SdpaProblem, plan: SimdMask): number[] {
  const mods = modsOf(p)!; // (wasmSupports: not null)
  return [plan.keep?.length ?? 0, mods.bias ? 4 * biasLayout(p, mods).floats : 0, mods.alibiSlopes ? 4 * p.Hq : 0];
}

// The jobs' mask and modifier words: causal (query i sees keys … i + shift; from i + shift − window with window ≥ 0),
// soft-capping (0: none), the key padding bytes, the bias and the ALiBi slopes, put at `at` (maskBytes' three places)
// in the call's scratch (0: none of that kind)
function maskWords(r: Runtime, p: SdpaProblem, plan: SimdMask, [keepAt, biasAt, alibiAt]: number[]) {
  const mods = modsOf(p)!;
  if (plan.keep) r.bytes.set(plan.keep, keepAt);
  const words = {
    causal: plan.causal ? 1 : 0, shift: plan.shift, window: plan.window, softcap: mods.softcap, keep: plan.keep ? keepAt : 0,
    bias: 0, biasB: 0, biasH: 0, biasI: 0, alibi: 0, posShift: mods.shift,
  };
  if (mods.alibiSlopes) {
    new Float32Array(r.bytes.buffer, alibiAt, p.Hq).set(mods.alibiSlopes);
    words.alibi = alibiAt;
  }
  if (mods.bias) Object.assign(words, { bias: biasAt }, putBias(r, p, mods, biasAt));
  return words;
}

// the bias copied to `at` in biasLayout's order, row by row (each row of S keys one copy where the keys are adjacent)
function putBias(r: Runtime, p: SdpaProblem, mods: SimdMods, at: number) {
  const { data, strides } = mods.bias!;
  const sj = strides[3], layout = biasLayout(p, mods);
  const dst = new Float32Array(r.bytes.buffer, at, layout.floats);
  forEachBiasRow(p, mods, (src, row) => {
    if (sj === 1) dst.set(data.subarray(src, src + p.S), row * p.S);
    else for (let j = 0; j < p.S; j++) dst[row * p.S + j] = data[src + j * sj];
  });
  return { biasB: layout.biasB, biasH: layout.biasH, biasI: layout.biasI };
}

/** Keys per chunk of the DECODE job: at least 32, at most 16 chunks; never depends on the thread count. */
export function decodeChunk(S: number): number {
  return Math.max(32, Math.ceil(S / 16 / 8) * 8);
}

function forward(p: SdpaProblem, req: SdpaForwardRequest): SdpaForwardResult {
  if (!wasmSupports(p, req)) {
    throw new QkvError('flash-wasm: called on a problem it does not cover (the dispatcher chooses another kernel)');
  }
  if (p.L <= 8 && (p.Hq / p.Hkv) * p.L <= 32) return decodeForward(p);
  const r = kernelRuntime()!;
  const { B, Hq, Hkv, L, S, D, Dv } = p;
  const [BH, BHkv, Sp] = [B * Hq, B * Hkv, Math.ceil(S / 8) * 8];
  // bytes per thread: s tile, acc, m, l, the tile's row maxima, the block's packed q — whole cache lines, so no two
  // threads share one
  const perThread = alignLine(4 * (BM * BN + BLOCK_M * Dv + 2 * BLOCK_M + BM + BLOCK_M * D));
  // out straight into the layer's arena when one is open (every element is written), else read back from scratch
  const o = activationFloats(BH * L * Dv), oAt = kernelOffset(o);
  const floats = [BH * L * D, BHkv * S * D, BHkv * Sp * D, BHkv * S * Dv, oAt === null ? BH * L * Dv : 0, 2 * BH * L];
  const plan = planOf(p)!; // (wasmSupports: not null)
  const [q, k, kp, v, outScratch, ml, scr, ...maskAt] = scratch(r, [...floats.map((n) => 4 * n), perThread * r.threads,
    ...maskBytes(p, plan)]);
  const out = oAt ?? outScratch;
  putTensor(r, q, p.source?.q) || put(r, q, p.q);
  putTensor(r, k, p.source?.k) || put(r, k, p.k);
  putTensor(r, v, p.source?.v) || put(r, v, p.v);
  runJob(r, PACK_K_JOB.words({ kind: JOB.packK, k, kp, BHkv, S, D, Sp }));
  runJob(r, ATTENTION_JOB.words({
    kind: JOB.attention, q, kp, v, out, ml, scratch: scr, scratchStride: perThread, BH, Hq, Hkv, L, S, D, Dv,
    scale: p.scale, ...maskWords(r, p, plan, maskAt), Sp,
  }));
  // lse = m · ln 2 + log l (the kernel's m is in base 2); l = 0 (no allowed key) → −∞; NaN stays NaN
  const stats = take(r, ml, 2 * BH * L);
  const lse = new Float32Array(BH * L);
  for (let i = 0; i < BH * L; i++) lse[i] = stats[BH * L + i] === 0 ? -Infinity : stats[i] * Math.LN2 + Math.log(stats[BH * L + i]);
  return { out: oAt === null ? takeInto(r, out, o) : o, lse };
}

// The DECODE job, then the MERGE job over its chunks: each chunk s leaves (m_s, l_s, o_s), m in base 2 and o_s
// normalised by l_s, and each row's chunks merge into o (a convex combination of the o_s, so no sum overflows where
// the answer is finite) and lse (asm/decode.ts). Only out and lse are read back. An f16 KV cache in the kernels' memory
// is read as f16 (the job's f16 words; q goes in times 2^112, see load4 in asm/common.ts).
function decodeForward(p: SdpaProblem, widen = false): SdpaForwardResult {
  const r = kernelRuntime()!;
  const { B, Hq, Hkv, L, S, D, Dv } = p;
  const G = Hq / Hkv, R4 = (G * L + 3) & ~3;
  const chunk = decodeChunk(S), splits = Math.max(1, Math.ceil(S / chunk));
  const units = B * Hkv * splits;
  const perThread = alignLine(4 * BM * BN); // the score tile, in whole cache lines
  const { f16, k: kIn, v: vIn } = decodeReads(p, widen);
  const plan = planOf(p)!; // (wasmSupports: not null)
  const [q, kCopy, vCopy, part, scr, out, lse, ...maskAt] = scratch(r, [4 * B * Hq * L * D, kIn ? 0 : 4 * B * Hkv * S * D,
    vIn ? 0 : 4 * B * Hkv * S * Dv, 4 * units * R4 * (Dv + 2), perThread * r.threads, 4 * B * Hq * L * Dv, 4 * B * Hq * L,
    ...maskBytes(p, plan)]);
  // straight from the callers' tensors (a KV cache's strided views: one copy, not two)
  putTensor(r, q, p.source?.q) || put(r, q, p.q);
  // an f16 cache: q times 2^112 (load4) — unless some |q| ≥ 2^15 (or a NaN) would not survive it: then k, v widened
  const qIn = new Float32Array(r.bytes.buffer, q, B * Hq * L * D);
  if (f16 && !fitsF16Unit(qIn)) return decodeForward(p, true);
  if (f16) scaleByF16Unit(qIn);
  if (!kIn) putTensor(r, kCopy, p.source?.k) || put(r, kCopy, p.k);
  if (!vIn) putTensor(r, vCopy, p.source?.v) || put(r, vCopy, p.v);
  const [k, kStride] = kIn ?? [kCopy, S * D], [v, vStride] = vIn ?? [vCopy, S * Dv];
  runJob(r, DECODE_JOB.words({
    kind: JOB.decode, q, k, v, part, scratch: scr, scratchStride: perThread, B, Hq, Hkv, L, S, D, Dv,
    scale: p.scale, ...maskWords(r, p, plan, maskAt), chunk, splits, kStride, vStride, paged: 0, tables: 0, lens: 0, tableStride: 0,
    kScales: 0, vScales: 0, f16: f16 ? 1 : 0,
  }));
  return mergeChunks(r, { part, out, lse, B, Hq, Hkv, L, Dv, splits });
}

const F16_UNIT = 2 ** 112; // asm/common.ts: the scale an f16 key or value leaves out when the decode job widens it

/**
 * How the DECODE job reads a problem's keys and values: where a KV cache keeps them in the kernels' memory, k and v
 * each as [byte offset, elements from one head to the next] — as f16 for an f16 cache, unless `widen` — or null for
 * one copied in as f32.
 */
export function decodeReads(p: SdpaProblem, widen = false): { f16: boolean; k: [number, number] | null; v: [number, number] | null } {
  const [k16, v16] = [inPlace(p.source?.k, 'float16'), inPlace(p.source?.v, 'float16')];
  if (k16 && v16 && !widen) return { f16: true, k: k16, v: v16 };
  return { f16: false, k: inPlace(p.source?.k, 'float32'), v: inPlace(p.source?.v, 'float32') };
}

/** Whether q times 2^112 stays finite (every |q| < 2^15, no NaN): an f16 cache's keys may then be read as f16. */
export function fitsF16Unit(q: Float32Array): boolean {
  for (let i = 0; i < q.length; i++) if (!(Math.abs(q[i]) < 2 ** 15)) return false;
  return true;
}

/** q times 2^112 in place (load4's scale; fitsF16Unit(q) first). */
export function scaleByF16Unit(q: Float32Array): void {
  for (let i = 0; i < q.length; i++) q[i] *= F16_UNIT;
}

/**
 * The MERGE job over the DECODE job's partial results at `part` ([units][R4][Dv], then m, then l): out [B, Hq, L, Dv]
 * and lse [B, Hq, L], written at `out` and `lse` in the kernels' memory and read back.
 */
export function mergeChunks(r: Runtime, j: { part: number; out: number; lse: number; B: number; Hq: number; Hkv: number; L: number;
  Dv: number; splits: number }): SdpaForwardResult {
  runJob(r, MERGE_JOB.words({ kind: JOB.merge, ...j }));
  return { out: takeInto(r, j.out, activationFloats(j.B * j.Hq * j.L * j.Dv)), lse: take(r, j.lse, j.B * j.Hq * j.L) };
}

// [byte offset, elements from one (batch, head) to the next] of a [B, H, S, d] tensor of `dtype` whose storage is in
// the kernels' memory (storage.ts) with its rows dense and every head the same distance apart — a KV cache view — else null
function inPlace(t: Tensor | undefined, dtype: 'float32' | 'float16'): [number, number] | null {
  const at = t && t.dtype === dtype ? kernelOffset(t.data) : null;
  if (!t || at === null) return null;
  const [, H, , d] = t.shape;
  const [sB, sH, sS, sD] = t.strides;
  return sD === 1 && sS === d && (t.shape[0] === 1 || sB === H * sH) ? [at + (dtype === 'float16' ? 2 : 4) * t.offset, sH] : null;
}

/** The WebAssembly SIMD kernel, for the problems it covers. */
export const sdpaFlashWasm: SdpaKernel = {
  name: 'flash-wasm',
  covers: wasmSupports,
  forward,
  backward: (p, out, lse, dout, req) => sdpaFlash.backward!(p, out, lse, dout, req),
};
