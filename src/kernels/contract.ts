// The contract between the attention spec (src/attention) and the kernels that compute it (src/kernels/*).
// The spec validates the call, binds masks and score modifiers to the sizes and hands every kernel the same
// SdpaProblem: dense row-major float32 q, k, v plus the mask and modifiers to apply, as the interfaces below — which
// src/attention implements. Kernels import this file, never src/attention.
import type { FloatArena } from '../tensor/arena.js';
import type { Tensor } from '../tensor/tensor.js';
import type { GpuDType, GpuTensor } from './webgpu/gpu-tensor.js';

/** A row of scores being worked on: float32 in the materialising kernel, float64 in the tiled ones. */
export type Row = Float32Array | Float64Array;

/** Result of classifying a tile of the L×S grid: no entry allowed, every entry allowed, or some. */
export const TILE_NONE = 0;
export const TILE_ALL = 1;
export const TILE_SOME = 2;
export type TileState = typeof TILE_NONE | typeof TILE_ALL | typeof TILE_SOME;

/** A mask bound to the call's sizes, as a kernel uses it (src/attention/masks.ts: Mask). */
export interface KernelMask {
  /** Rows i0..i1−1 × keys j0..j1−1: none allowed (skip the tile), all, or some (mask element by element). */
  tile(b: number, h: number, i0: number, i1: number, j0: number, j1: number): TileState;
  /** Sets row[c] = −∞ for every key j0 + c (c < n) that query i may not attend. */
  maskRow(row: Row, b: number, h: number, i: number, j0: number, n: number): void;
  /** The mask as the WebAssembly kernels take it (see SimdMask), or null when they cannot. */
  simdPlan(): SimdMask | null;
}

/**
 * What the WebAssembly kernels mask: causal, query i sees keys … i + shift, and with window ≥ 0 only from
 * i + shift − window (a causal sliding window; −1: none); keep (a key padding mask, [B, S] bytes, 0 = padding) or null.
 * Any AND of a causal mask, a causal window and a key padding mask.
 */
export interface SimdMask { causal: boolean; shift: number; window: number; keep: Uint8Array | null }

/**
 * The widest window the jobs' i32 window word takes: a window of this many keys or more leaves out no key a kernel could
 * hold (4 GiB of memory), so it is no window (−1).
 */
export const SIMD_WINDOW_LIMIT = 2 ** 30;

/** A float32 tensor seen through broadcast strides as [B, Hq, L, S] (a stride of 0: broadcast along that dim). */
export interface Strided4 { data: Float32Array; strides: readonly [number, number, number, number]; offset: number }

/**
 * The score modifiers the WebAssembly kernels apply themselves: soft-capping (0: none), an additive bias (null: none),
 * ALiBi slopes [Hq] (null: none) with query i at key position i + shift — every modifier but a user's score function.
 */
export interface SimdMods { softcap: number; bias: Strided4 | null; alibiSlopes: Float32Array | null; shift: number }

/** The score modifiers bound to the call's sizes, as a kernel uses them (src/attention/score-mods.ts: ScoreMods). */
export interface KernelScoreMods {
  /** Modifies scaled scores row[c] for keys j0 + c, c < n, of query i in place. */
  apply(row: Row, b: number, h: number, i: number, j0: number, n: number): void;
  /** dds[c] = ∂ modified score / ∂ raw score at raw[c] (the backward pass). */
  derivative(raw: Row, dds: Row, n: number): void;
  /** The modifiers as the WebAssembly kernels apply them, or null when they cannot (a score function). */
  simdMods(): SimdMods | null;
}

/** The sizes of one attention call: q [B, Hq, L, D], k [B, Hkv, S, D], v [B, Hkv, S, Dv]. */
export interface AttnDims { B: number; Hq: number; Hkv: number; L: number; S: number; D: number; Dv: number }

/**
 * A mask and the score modifiers lowered to data (src/attention/mask-plan.ts), as the WGSL kernels read them
 * (sdpa-masks.wgsl): flags and sizes, and two small tables the offsets index — aux (u32: key lengths [B], global-key
 * flags [S], the block-sparse table, document bounds, a dense keep mask) and fl (f32: ALiBi slopes [Hq], a dense bias).
 */
export interface MaskPlan {
  scale: number;
  /** 0: none. */
  softcap: number;
  causal: boolean;
  /** Row i sits at key position i + shift for every structured mask (a KV cache: length − L) … */
  shift: number;
  /** … and may see keys ≤ i + causalShift under the causal mask (top-left: 0). */
  causalShift: number;
  /** Keys i − left … i + right (−1: unbounded), every dilation-th. */
  windowLeft: number; windowRight: number; dilation: number;
  /** Every key < prefix is visible to all (prefix-LM); −1: none. */
  prefix: number;
  /** aux[0 … B) holds each row's key count. */
  keyLengths: boolean;
  /** fl[0 … Hq) holds ALiBi slopes. */
  alibi: boolean;
  /** aux offsets (null: the mask is not used). */
  global: number | null;
  blocks: { offset: number; size: number; cols: number } | null;
  docs: number | null;
  keep: number | null;
  /** fl offset of a dense bias [B, Hq, L, S] (null: none). */
  bias: number | null;
  aux: Uint32Array;
  fl: Float32Array;
}

/** One attention call, ready to compute. q [B, Hq, L, D], k [B, Hkv, S, D], v [B, Hkv, S, Dv], all dense. */
export interface SdpaProblem {
  B: number; Hq: number; Hkv: number; L: number; S: number; D: number; Dv: number;
  scale: number;
  q: Float32Array; k: Float32Array; v: Float32Array;
  /** The tensors q, k, v were made from (k and v may be strided views of a KV cache): a kernel that copies them
   *  elsewhere anyway (the WebAssembly one) reads these, and q/k/v above are then never materialised. */
  source?: { q: Tensor; k: Tensor; v: Tensor };
  /** null: every key allowed. */
  mask: KernelMask | null;
  /** null: scores are just scale · q·k. */
  mods: KernelScoreMods | null;
  /** Tiles visited and skipped by tiled kernels (tests prove structured masks skip work), and the scratch bytes a
   *  kernel allocated (the lab plots reference vs tiled memory). */
  counters?: { tiles: number; skipped: number; scratchBytes?: number };
}

/** What a forward kernel may be asked for beyond out and lse. */
export interface SdpaForwardRequest {
  weights?: boolean;
  stats?: boolean;
  blockM?: number;
  blockN?: number;
  numSplits?: number;
}

/** Forward results, dense float32: out [B, Hq, L, Dv], lse / entropy / meanDistance [B, Hq, L], weights [B, Hq, L, S]. */
export interface SdpaForwardResult {
  out: Float32Array;
  lse: Float32Array;
  weights?: Float32Array;
  entropy?: Float32Array;
  meanDistance?: Float32Array;
}

/** Gradients, dense float32 in the shapes of q, k, v. */
export interface SdpaBackwardResult { dq: Float32Array; dk: Float32Array; dv: Float32Array }

/** A forward kernel, and optionally its backward (given out, lse and the upstream gradient dout [B, Hq, L, Dv]). */
export interface SdpaKernel {
  readonly name: string;
  /** For a kernel that takes only some problems (the WebAssembly one: the masks of SimdMask, the modifiers of
   *  SimdMods, head dims in 4s): whether it takes this one. The dispatcher (attention/dispatch.ts) hands the rest on. */
  covers?(p: SdpaProblem, req: SdpaForwardRequest): boolean;
  forward(p: SdpaProblem, req: SdpaForwardRequest): SdpaForwardResult;
  backward?(p: SdpaProblem, out: Float32Array, lse: Float32Array, dout: Float32Array, req: SdpaForwardRequest): SdpaBackwardResult;
}

// ---- paged attention: keys and values read through block tables ---------------------------------------------------

/** A block pool: [numBlocks, Hkv, BLOCK, D] keys and [numBlocks, Hkv, BLOCK, Dv] values, float32 or int8 + scales. */
export interface BlockPool {
  blockSize: number; Hkv: number; D: number; Dv: number;
  /** f32, int8 (with the scales below) or f16 bits (a float16 pool, which holds finite values only) */
  k: Float32Array | Int8Array | Uint16Array; v: Float32Array | Int8Array | Uint16Array;
  /** int8 pools: one scale per (block, head, slot). */
  kScale?: Float32Array; vScale?: Float32Array;
}

/** One paged attention call. q [B, Hq, T, D] dense; the keys of row b are its first seqLens[b] slots. */
export interface PagedProblem {
  q: Float32Array; B: number; Hq: number; T: number;
  scale: number; softcap: number; causal: boolean;
  /** Keys j > i − window only (null: no window). */
  window: number | null;
  blockTables: readonly (readonly number[])[];
  seqLens: readonly number[];
  /** Per row over its keys: 0 = padding (never attended). */
  keyMask?: readonly (readonly number[])[];
  pool: BlockPool;
  /** Learned sink logits [Hq] (attention/sinks.ts), applied to the kernel's results by attention/paged.ts. */
  sinks?: Float32Array;
}

/** Paged attention's results: out [B, Hq, T, Dv], lse [B, Hq, T], weights [B, Hq, T, maxS] on request. */
export interface PagedResult { out: Float32Array; lse: Float32Array; weights?: Float32Array; maxS: number }

/** A paged attention kernel. */
export interface PagedKernel {
  readonly name: string;
  /** Whether it takes this call (absent: every call). */
  covers?(p: PagedProblem, returnWeights?: boolean): boolean;
  forward(p: PagedProblem, returnWeights?: boolean): PagedResult;
}

// ---- GPU attention: operands in device buffers; a kernel records its passes without waiting ----------------------

/** q, k, v, out and lse of one call in GPU buffers: q, k, v and out stored as `dtype`, lse as float32. */
export interface GpuOperands { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; out: GPUBuffer; lse: GPUBuffer; dtype: 'float32' | 'float16' }

/** What a GPU call may ask of its kernel: the plain tiled one (not the tensor cores), and its tiles. */
export interface GpuSdpaRequest { plain?: boolean; blockM?: number; blockN?: number }

/** A WGSL attention kernel: reads the mask plan, writes out and lse; covers() says which calls it takes. */
export interface GpuSdpaKernel {
  readonly name: string;
  covers(device: GPUDevice, dims: AttnDims, plan: MaskPlan, b: GpuOperands, req: GpuSdpaRequest): boolean;
  record(device: GPUDevice, dims: AttnDims, plan: MaskPlan, b: GpuOperands, req: GpuSdpaRequest): void;
}

/** Paged attention on the GPU (host problem in, out and lse back). */
export interface GpuPagedKernel {
  readonly name: string;
  /** Why it cannot take this problem, or null. */
  unsupported(p: PagedProblem): string | null;
  run(device: GPUDevice, p: PagedProblem): Promise<{ out: Float32Array; lse: Float32Array }>;
  /** Records the passes over operands already on the GPU (a GPU paged KV cache); out and lse are written there. */
  record(device: GPUDevice, p: GpuPagedProblem): void;
}

/** A paged problem whose operands are on the GPU: q [B, Hq, T, D], the pools, out [B, Hq, T, Dv] and lse [B, Hq, T]. */
export interface GpuPagedProblem extends Omit<PagedProblem, 'q' | 'pool' | 'blockTables' | 'seqLens' | 'keyMask'> {
  q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; out: GPUBuffer; lse: GPUBuffer;
  pool: { blockSize: number; Hkv: number; D: number; Dv: number };
  /** seqLens [B] · tables [B, maxBlocks] · keyMask [B, maxS] (when useKeyMask). */
  aux: Uint32Array; maxS: number; maxBlocks: number; useKeyMask?: boolean;
  /** Storage type of q, k, v and out (float16 needs shader-f16); default float32. */
  dtype?: GpuDType;
}

/** The backward pass on the GPU over q, k, v already there, the forward's out and lse, and dout. */
export interface GpuBackwardKernel {
  readonly name: string;
  run(device: GPUDevice, dims: AttnDims, qkv: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer }, out: Float32Array, lse: Float32Array,
    dout: Float32Array, plan: MaskPlan): Promise<SdpaBackwardResult>;
}

// ---- GPU layers: the kernels a model's forward runs between attention calls, on tensors that stay on the GPU -------

/** The layer kernels of a GPU backend (kernels/webgpu/index.ts registers WebGPU's). Each records its pass and returns
 *  a new tensor without waiting. */
export interface GpuLayerKernels {
  readonly name: string;
  /** x [.., K] · Wᵀ (+ bias) with W [N, K] (f32 values or f16 bits) kept resident on the GPU. */
  matmul(x: GpuTensor, w: Float32Array | Uint16Array, N: number, bias: Float32Array | null): GpuTensor;
  /** RMSNorm over the last dim: x / √(mean(x²) + ε) · (offset + w). */
  rmsNorm(x: GpuTensor, w: Float32Array, eps: number, offset: number): GpuTensor;
  /** RoPE (rotate-half) on x [T, H, D] with a cos/sin table [T, 2, half]. */
  rope(x: GpuTensor, table: GpuTensor): GpuTensor;
  /** act(gate) ⊙ up. */
  gated(act: GluActivation, gate: GpuTensor, up: GpuTensor): GpuTensor;
  add(a: GpuTensor, b: GpuTensor): GpuTensor;
  /** c · tanh(x / c). */
  softcap(x: GpuTensor, c: number): GpuTensor;
  /** x [A, B, C] → [B, A, C], or written into `into` [B, capA, C] at rows off … (a KV cache), in `dtype`. */
  transpose01(x: GpuTensor, into?: { dst: GpuTensor; capA: number; off: number }, dtype?: GpuDType): GpuTensor;
  /** Rows [first, first + n) of x [R, C]. */
  rows(x: GpuTensor, first: number, n: number): GpuTensor;
  /** x [R, H, C] into a paged pool [blocks, H, blockSize, C] at token slots (block · blockSize + offset). */
  scatter(x: GpuTensor, slots: Uint32Array, into: { dst: GpuTensor; blockSize: number }): void;
}

// ---- storage: where KV caches and weights live ----------------------------------------------------------------------

/** Storage a backend offers to KV caches and to a checkpoint loader (the WebAssembly kernels' memory, so the kernels
 *  read caches and weights in place); plain arrays where no backend offers any. */
export interface KernelStorage {
  floats(n: number): Float32Array;
  /** n f16 slots for an f16 KV cache, which the decode kernel may read in place (it stores finite values only). */
  halves(n: number): Uint16Array;
  release(a: Float32Array | Uint16Array): void;
  /** Arenas for decoder layers' activations (tensor/arena.ts), or null where there are none: one a layer writes in,
   *  emptied as each layer begins, and two its result is copied to, taken in turn (the next layer's input). */
  arenas?(): readonly [LayerArena, LayerArena, LayerArena] | null;
  /** Room for a weight matrix of `n` elements that the matrix kernel reads where it lies, or null (keep it elsewhere). */
  matrix?(dtype: 'float32' | 'float16' | 'bfloat16' | 'int8' | 'int4', n: number):
    Float32Array | Uint16Array | Int8Array | Uint8Array | null;
  /** Returns a matrix's room now (not when its view is collected); the caller promises the view is not used again.
   *  No-op for arrays `matrix` did not give. */
  releaseMatrix?(view: ArrayBufferView): void;
  /** Whether `view` is a matrix's room that `matrix` gave (its owner may then rewrite it for the kernel). */
  holdsMatrix?(view: ArrayBufferView): boolean;
  /** An f16 matrix's room times 2^10 in place (F16Matrix's rule) where the backend does it faster than a loop: true when
   *  done, false when some |w| ≥ 64 would not fit (untouched), null when it does not take this one. */
  scaleF16?(view: Uint16Array): boolean | null;
}

/**
 * A decoder layer's elementwise work on the CPU where its arrays lie in the kernels' memory (a layer's arena:
 * tensor/arena.ts). Each returns false, having done nothing, when an array is elsewhere: the caller runs its own loop.
 */
export interface RowKernels {
  readonly name: string;
  /** y = x / √(mean(x²) + ε) · (offset + g) over rows of C floats (g [C]). */
  rmsNorm(x: Float32Array, g: Float32Array, y: Float32Array, C: number, eps: number, offset: number): boolean;
  /** y = a + b. */
  add(a: Float32Array, b: Float32Array, y: Float32Array): boolean;
  /** RoPE (rotate-half pairs) on x [B, H, T, D] — any strides over its kernel-memory storage, the last 1 — into y
   *  [B, H, T, D]; cos, sin [T or B·T, half] in f64. */
  rope(x: Tensor, y: Float32Array, cos: Float64Array, sin: Float64Array, half: number, perBatch: boolean): boolean;
}

/** A layer's activations (tensor/arena.ts): reset() empties it, and every array it gave is dead after. */
export interface LayerArena extends FloatArena {
  reset(): void;
}

// ---- matrix products of linear layers: C [M, N] = A [M, K] · Bᵀ, the weight B [N, K] as stored --------------------

/** A weight matrix [N, K] as stored: f32, 16-bit floats (raw bits; f16 with a `shift` holds w · 2^shift: F16Matrix), int8
 *  with one f32 scale per row, or int4 (two weights a byte, blocks of 32 in Q4_0's order: tensor/quantize.ts) with one
 *  f32 scale per row and block of 32. */
export type MatrixData =
  | { dtype: 'float32'; data: Float32Array }
  | { dtype: 'float16' | 'bfloat16'; data: Uint16Array; shift?: number }
  | { dtype: 'int8'; data: Int8Array; scales: Float32Array }
  | { dtype: 'int4'; data: Uint8Array; scales: Float32Array };

/** One product of a linear layer: activations a [M, K] (row-major f32) and the weight b [N, K]. */
export interface MatmulProblem { a: Float32Array; b: MatrixData; M: number; K: number; N: number }

/** The activations of gated products: SiLU (SwiGLU) and GELU with the tanh approximation (GeGLU). */
export type GluActivation = 'silu' | 'gelu_tanh';

/** A matrix-product kernel. */
export interface MatmulKernel {
  readonly name: string;
  /** For a kernel that takes only some problems (the WebAssembly one: K in its vector width, finite f16): whether it
   *  takes this one; the chooser (attention/dispatch.ts) gives the rest to another. */
  covers?(p: MatmulProblem): boolean;
  forward(p: MatmulProblem): Float32Array;
  /** act(A · Bᵀ) ⊙ (A · Upᵀ) in one pass (gate B and up weight of one format and shape), where the kernel has it. */
  gated?(p: MatmulProblem, up: MatrixData, act: GluActivation): Float32Array;
}
