// Host of the GEMM jobs of asm/kernels.ts for linear layers: C[M, N] = A[M, K] · B[N, K]ᵀ with B (the weight) in
// f32, f16, bf16, int8 with a scale per row or int4 with a scale per row and block of 32, widened to f32 inside the
// kernel (decode with int8/int4: integer dot products, asm/gemv-q.ts). A model's weight is resident in the module's
// memory — read there by the checkpoint loader (storage.ts), or, being constant (tensor/constant.ts), copied in on first
// use and kept — so each call copies only the activations in and the result out (neither, inside a decoder layer's
// arena: tensor/arena.ts); the columns are shared among the runtime's threads. Any other B (a weight built in memory,
// which its owner may change between calls), or a weight past the resident limit (a checkpoint larger than
// WebAssembly's 4 GiB), is copied in for each call instead: slower than resident, far faster than the TypeScript loops.
// It covers a weight where the SIMD path applies (WebAssembly SIMD present, K a multiple of the format's vector width,
// f16 weights free of ±∞/NaN); the chooser (attention/dispatch.ts) gives the rest to the TypeScript kernel.
// The gated products of GLU feed-forwards (SwiGLU, GeGLU) run as one job: gate and up product and the activation.
import { QkvError } from '../../errors.js';
import type { GluActivation, MatmulKernel, MatmulProblem, MatrixData } from '../contract.js';
import { activationFloats } from '../../tensor/arena.js';
import { isConstant } from '../../tensor/constant.js';
import { F16_SHIFT } from '../../tensor/f16-matrix.js';
import { GEMM_JOB } from './jobs.js';
import {
  alignLine, canReside, isResident, JOB, kernelRuntime, MAX_BYTES, put, resident, runJob, type Runtime, scratch, takeInto,
} from './runtime.js';
import { kernelOffset, scaleF16At } from './storage.js';

export type { GluActivation, MatrixData } from '../contract.js';

const KIND = { float32: JOB.gemmF32, float16: JOB.gemmF16, bfloat16: JOB.gemmBF16, int8: JOB.gemmI8, int4: JOB.gemmI4 } as const;
const K_MULTIPLE = { float32: 4, float16: 8, bfloat16: 8, int8: 16, int4: 32 } as const;
const finiteF16 = new WeakMap<Uint16Array, boolean>();

// an f16 weight with ±∞ or NaN (exponent all ones) cannot take the kernel's widening shortcut; checked once per
// constant weight (tensor/constant.ts), on every call for any other, two values per 32-bit word where the array is
// aligned (an F16Matrix needs no scan: every |w| < 64)
function allFinite(h: Uint16Array): boolean {
  let ok = finiteF16.get(h);
  if (ok === undefined) {
    const even = h.byteOffset % 4 === 0 ? h.length & ~1 : 0;
    const w = even ? new Uint32Array(h.buffer, h.byteOffset, even / 2) : new Uint32Array(0);
    let bad = false;
    for (let i = 0; i < w.length && !bad; i++) bad = (w[i] & 0x7c00) === 0x7c00 || (w[i] & 0x7c000000) === 0x7c000000;
    for (let i = even; i < h.length && !bad; i++) bad = (h[i] & 0x7c00) === 0x7c00;
    ok = !bad;
    if (isConstant(h)) finiteF16.set(h, ok);
  }
  return ok;
}

// where the kernel finds an array of B (its weights, or an int8/int4 matrix's scales): its offset when it lies in the
// kernels' memory — placed there by the loader, where it is the array itself — or a constant (tensor/constant.ts)
// copied in to stay; −1 when it is copied in for this call only: any other array (activations, a weight a learner may
// change between calls: a kept copy would answer with its old values), or a weight past the resident limit
function keptAt(r: Runtime, data: Float32Array | Uint16Array | Int8Array | Uint8Array): number {
  return isResident(data) || (isConstant(data) && canReside(r, data)) ? resident(r, data) : -1;
}

// B's weights by keptAt's rule. An f16 weight copied in to stay (one the loader did not place: a browser's private
// memory) is scaled there as an F16Matrix is (tensor/f16-matrix.ts): the copy is the kernel's own, so only its
// f16Scale has to know.
function weightAt(r: Runtime, b: MatrixData): number {
  const copied = !isResident(b.data);
  const at = keptAt(r, b.data);
  if (at >= 0 && copied && b.dtype === 'float16' && !b.shift && b.data.length % 8 === 0 && scaleF16At(r, at, b.data.length)) {
    scaledCopies.add(b.data);
  }
  return at;
}

// an int8/int4 matrix's scales (0: a format without), by keptAt's rule
const scalesAt = (r: Runtime, m: MatrixData | null) => (m?.dtype === 'int8' || m?.dtype === 'int4' ? keptAt(r, m.scales) : 0);
const scaledCopies = new WeakSet<object>();

// the power of two an f16 weight's bits in the kernels' memory hold it scaled by: an F16Matrix's, its scaled resident
// copy's (F16_SHIFT), else 0 (a weight copied in for one call is as stored); the kernel widens them × 2^(112 − shift)
function shiftOf(m: MatrixData | null): number {
  if (m?.dtype !== 'float16') return 0;
  return m.shift ?? (scaledCopies.has(m.data) ? F16_SHIFT : 0);
}

// the SIMD path takes B when K suits its vector width, (f16) no weight is ±∞/NaN, (int4) N is a multiple of 4, and B is
// resident, may become so, or fits the memory for one call beside everything resident
const applies = (r: Runtime, b: MatrixData, N: number, K: number) =>
  K % K_MULTIPLE[b.dtype] === 0 && b.data.length === (b.dtype === 'int4' ? N * K / 2 : N * K) &&
  (b.dtype !== 'float16' || (b.shift ?? 0) > 0 || allFinite(b.data)) && (b.dtype !== 'int4' || N % 4 === 0) &&
  (canReside(r, b.data) || alignLine(r.top) + 2 * b.data.byteLength + ONE_CALL_ROOM <= MAX_BYTES);

// rows of A from which the GEMM takes the outer-product tile (asm/gemm.ts): packing A costs M·K per thread, and below
// this the 2×4 tile was as fast (alone: M 16 16.1 against 15.4 GMAC/s; M 64 18.2 against 19.8)
const OUTER_M = 32;

// room kept for a call's activations, results and panels beside a weight copied in for that call
const ONE_CALL_ROOM = 2 ** 27;

/** C = A · Bᵀ for a row-major A [M, K] and weight B [N, K]; null when the SIMD path does not apply. */
export function wasmMatmulTransB(a: Float32Array, b: MatrixData, M: number, K: number, N: number): Float32Array | null {
  return product(a, b, null, 0, M, K, N);
}

const GLU = { silu: 1, gelu_tanh: 2 } as const;

/**
 * H = act(A · Gᵀ) ⊙ (A · Uᵀ) for gate and up weights [N, K] of one format, as one job (each thread forms the gate and
 * up columns of its own range, then H there); null when the SIMD path does not apply.
 */
export function wasmGatedMatmul(a: Float32Array, gate: MatrixData, up: MatrixData, act: GluActivation, M: number, K: number, N: number): Float32Array | null {
  if (gate.dtype !== up.dtype) return null;
  return product(a, gate, up, GLU[act], M, K, N);
}

function product(a: Float32Array, b: MatrixData, b2: MatrixData | null, glu: number, M: number, K: number, N: number): Float32Array | null {
  const r = kernelRuntime();
  if (!r || !applies(r, b, N, K) || (b2 && !applies(r, b2, N, K))) return null;
  // everything resident first: scratch starts where the resident weights end
  let [bAt, b2At] = [weightAt(r, b), b2 ? weightAt(r, b2) : 0];
  let [sAt, s2At] = [scalesAt(r, b), scalesAt(r, b2)];
  // per thread: four rows of B widened to f32; with the outer-product tile (M ≥ OUTER_M, asm/gemm.ts) a [K][12] panel and
  // A packed in threes of rows after it — in whole cache lines
  const outer = M >= OUTER_M ? 1 : 0;
  const panel = alignLine(16 * K + outer * (48 * K + 12 * Math.ceil(M / 3) * K));
  const oneOff = (at: number, m: MatrixData | null) => (at < 0 ? m!.data.byteLength : 0);
  const scalesOnce = (at: number, m: MatrixData | null) => (at < 0 && (m?.dtype === 'int8' || m?.dtype === 'int4') ? m.scales.byteLength : 0);
  // A and C where they lie when they are in the kernels' memory (a layer's arena: tensor/arena.ts), else copied
  const c = activationFloats(M * N);
  const [aIn, cIn] = [kernelOffset(a), kernelOffset(c)];
  const [aAt, cAt, c2At, panelAt, bOnce, b2Once, sOnce, s2Once] = scratch(r, [aIn === null ? 4 * a.length : 0,
    cIn === null ? 4 * M * N : 0, b2 ? 4 * M * N : 0, panel * r.threads, oneOff(bAt, b), oneOff(b2At, b2), scalesOnce(sAt, b),
    scalesOnce(s2At, b2)]);
  if (aIn === null) put(r, aAt, a);
  if (bAt < 0) { put(r, bOnce, b.data); bAt = bOnce; }
  if (b2At < 0) { put(r, b2Once, b2!.data); b2At = b2Once; }
  if (sAt < 0) { put(r, sOnce, (b as { scales: Float32Array }).scales); sAt = sOnce; }
  if (s2At < 0) { put(r, s2Once, (b2 as { scales: Float32Array }).scales); s2At = s2Once; }
  runJob(r, GEMM_JOB.words({
    kind: KIND[b.dtype], a: aIn ?? aAt, b: bAt, c: cIn ?? cAt, M, K, N, scales: sAt, scratch: panelAt, scratchStride: panel,
    glu, b2: b2At, scales2: s2At, c2: c2At, f16Scale: 2 ** (112 - shiftOf(b)), f16Scale2: 2 ** (112 - shiftOf(b2)), outer,
  }));
  if (cIn === null) takeInto(r, cAt, c);
  return c;
}

/** The WebAssembly SIMD product of linear layers, for the problems it covers (and the gated one in one job). */
export const matmulWasm: MatmulKernel = {
  name: 'matmul-wasm',
  covers: (p: MatmulProblem) => { const r = kernelRuntime(); return r !== null && applies(r, p.b, p.N, p.K); },
  forward: (p: MatmulProblem) => {
    const c = wasmMatmulTransB(p.a, p.b, p.M, p.K, p.N);
    if (!c) throw new QkvError('matmul-wasm: called on a problem it does not cover (the chooser picks another kernel)');
    return c;
  },
  gated: (p: MatmulProblem, up: MatrixData, act: GluActivation) => {
    const h = wasmGatedMatmul(p.a, p.b, up, act, p.M, p.K, p.N);
    if (!h) throw new QkvError('matmul-wasm: the gated product does not apply to these weights');
    return h;
  },
};
