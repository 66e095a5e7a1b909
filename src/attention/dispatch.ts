// From public options to a kernel call: binds every mask and score modifier to the call's sizes, makes q, k, v
// dense float32 (a no-op for dense float32 inputs) and chooses the kernel.
import { describeValue, QkvError } from '../errors.js';
import type {
  AttnDims, GpuOperands, GpuSdpaKernel, GpuSdpaRequest, MaskPlan, MatmulKernel, MatmulProblem, MatrixData, PagedKernel, PagedProblem,
  RowKernels, SdpaForwardRequest, SdpaKernel, SdpaProblem,
} from '../kernels/contract.js';
import { getGpuSdpaKernel, getMatmulKernel, getPagedKernel, getRowKernels, getSdpaKernel } from '../kernels/registry.js';
import '../kernels/cpu/index.js';
import { Tensor } from '../tensor/tensor.js';
import { denseBias, denseMask } from './dense.js';
import * as masks from './masks.js';
import type { Mask } from './masks.js';
import type { KernelName, AttentionOptions } from './options.js';
import { ScoreMods } from './score-mods.js';
import { checkFinite, checkPositiveInt, floatList, intList, type AttnShape } from './validate.js';

/** Every mask option of the call as one spec (AND of the parts; global tokens OR into the sparse pattern). */
export function maskSpecOf(o: AttentionOptions, dims: AttnShape): masks.MaskSpec | null {
  const parts: masks.MaskSpec[] = [];
  if (o.causal !== undefined && typeof o.causal !== 'boolean' && o.causal !== 'top-left' && o.causal !== 'bottom-right') {
    throw new QkvError(`attention: causal must be true, false, 'top-left' or 'bottom-right', got ${describeValue(o.causal)}`);
  }
  if (o.causal) parts.push(masks.causal(o.causal === 'bottom-right' ? 'bottom-right' : 'top-left'));
  // the sparse pattern: window and/or block-sparse, widened by global tokens
  const pattern: masks.MaskSpec[] = [];
  if (o.window) {
    if (!Array.isArray(o.window) || o.window.length !== 2) throw new QkvError(`attention: window must be [left, right], got ${describeValue(o.window)}`);
    pattern.push(masks.slidingWindow(o.window[0], o.window[1], o.dilation ?? 1));
  } else if (o.dilation !== undefined && o.dilation !== 1) {
    throw new QkvError('attention: dilation needs a window [left, right]');
  }
  if (o.blockSparse) pattern.push(masks.blockSparse(o.blockSparse));
  if (o.globalTokens) {
    const g = masks.globalTokens(o.globalTokens);
    parts.push(pattern.length ? masks.or(masks.and(...pattern), g) : g);
  } else if (pattern.length) parts.push(...pattern);
  if (o.keyLengths !== undefined) parts.push(masks.keyPadding(intList(o.keyLengths, 'keyLengths')));
  if (o.cuSeqlens !== undefined) parts.push(masks.documents(intList(o.cuSeqlens, 'cuSeqlens')));
  if (o.prefix !== undefined) parts.push(masks.prefixLM(o.prefix));
  if (o.maskMod) parts.push(masks.maskMod(o.maskMod));
  if (o.mask instanceof Tensor) {
    if (o.mask.dtype === 'bool') parts.push(masks.fromMask(denseMask(o.mask, fullShape(dims))));
  } else if (o.mask) {
    if (o.mask.kind !== 'mask-spec') throw new QkvError('attention: mask must be a Tensor or a mask spec from masks.*');
    parts.push(o.mask);
  }
  if (parts.length === 0) return null;
  return parts.length === 1 ? parts[0] : masks.and(...parts);
}

function fullShape(d: AttnShape): number[] {
  return [d.B, d.Hq, d.L, d.S];
}

/** Score modifiers of the call, or null when there are none. A float `mask` tensor is an additive bias (torch). */
export function scoreModsOf(o: AttentionOptions, dims: AttnShape): ScoreMods | null {
  const biasTensor = o.mask instanceof Tensor && o.mask.dtype !== 'bool' ? o.mask : undefined;
  if (biasTensor && o.bias) throw new QkvError('attention: give an additive mask either as a float `mask` or as `bias`, not both');
  const biasT = o.bias ?? biasTensor;
  const bias = biasT ? denseBias(biasT, fullShape(dims), o.bias ? 'bias' : 'mask') : null;
  const softcap = o.softcap === undefined ? 0 : checkFinite(o.softcap, 'softcap', true);
  let slopes: Float32Array | null = null;
  if (o.alibiSlopes !== undefined) {
    slopes = floatList(o.alibiSlopes, 'alibiSlopes');
    if (slopes.length !== dims.Hq) throw new QkvError(`attention: alibiSlopes has ${slopes.length} entries, expected one per query head (Hq=${dims.Hq})`);
    slopes.forEach((x, h) => checkFinite(x, `alibiSlopes[${h}]`));
  }
  if (o.scoreMod !== undefined && typeof o.scoreMod !== 'function') throw new QkvError('attention: scoreMod must be a function (score, b, h, i, j) => number');
  if (!bias && !softcap && !slopes && !o.scoreMod) return null;
  return new ScoreMods(softcap, bias, slopes, dims.S - dims.L, o.scoreMod ?? null);
}

/** The dense float32 problem every kernel receives. */
export function problemOf(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions, dims: AttnShape): SdpaProblem {
  const scale = o.scale === undefined ? 1 / Math.sqrt(dims.D) : checkFinite(o.scale, 'scale');
  const spec = maskSpecOf(o, dims);
  return new Problem(dims, scale, { q, k, v }, spec ? spec.build(dims) : null, scoreModsOf(o, dims));
}

// A class rather than an object literal with getters: one is built per attention call, and a decode step makes one
// per layer (the literal took ~6 µs to build, the class well under one).
class Problem implements SdpaProblem {
  readonly B: number; readonly Hq: number; readonly Hkv: number; readonly L: number; readonly S: number; readonly D: number; readonly Dv: number;
  counters?: SdpaProblem['counters'];
  private readonly dense: (Float32Array | undefined)[] = [undefined, undefined, undefined];

  constructor(dims: AttnShape, readonly scale: number, readonly source: { q: Tensor; k: Tensor; v: Tensor }, readonly mask: Mask | null, readonly mods: ScoreMods | null) {
    ({ B: this.B, Hq: this.Hq, Hkv: this.Hkv, L: this.L, S: this.S, D: this.D, Dv: this.Dv } = dims);
  }

  // q, k, v as dense float32 on first use (a KV-cache view is copied only by kernels that read it here)
  get q(): Float32Array { return (this.dense[0] ??= this.source.q.toFloat32()); }
  get k(): Float32Array { return (this.dense[1] ??= this.source.k.toFloat32()); }
  get v(): Float32Array { return (this.dense[2] ??= this.source.v.toFloat32()); }
}

/**
 * The tile options a CPU kernel receives, clamped to the problem: a tile never has more rows than L or more keys than
 * S, and there are never more key splits than keys (blockM: 1e9 would otherwise size scratch for a billion rows).
 */
export function tileRequest(o: AttentionOptions, dims: AttnShape): { blockM?: number; blockN?: number; numSplits?: number } {
  const clamp = (x: number | undefined, n: number) => (x === undefined ? undefined : Math.min(x, Math.max(1, n)));
  return { blockM: clamp(o.blockM, dims.L), blockN: clamp(o.blockN, dims.S), numSplits: clamp(o.numSplits, dims.S) };
}

/**
 * The kernel that runs problem `p`: the one named, unless it does not cover the problem (the WebAssembly kernel's
 * rule is in its file: masks it takes, no score function, head dims in 4s — or WebAssembly is not there), in which case
 * the TypeScript kernel for it: decode for one query row, else flash. The one place a kernel is chosen; a result names it.
 */
export function kernelFor(name: Exclude<KernelName, 'auto'>, p: SdpaProblem, req: SdpaForwardRequest): SdpaKernel {
  const kernel = getSdpaKernel(name);
  if (!kernel.covers || kernel.covers(p, req)) return kernel;
  return getSdpaKernel(p.L === 1 && !req.stats ? 'decode' : 'flash');
}

/**
 * The WGSL kernel for a call on the GPU (its kernels are registered by kernels/webgpu/index.ts): split-K decoding where
 * it covers the call (≤ 8 query rows, causal/window/soft-capping only), the tensor-core kernel for f16 operands where
 * the device has matrix units, else the tiled kernel, which takes every call.
 */
export function gpuKernelFor(device: GPUDevice, dims: AttnDims, plan: MaskPlan, b: GpuOperands, req: GpuSdpaRequest): GpuSdpaKernel {
  for (const name of ['webgpu-decode', 'webgpu-tensor-cores']) {
    const kernel = getGpuSdpaKernel(name);
    if (kernel.covers(device, dims, plan, b, req)) return kernel;
  }
  return getGpuSdpaKernel('webgpu-flash');
}

/** The kernel for paged attention: the WebAssembly one where it covers the call (a pool in its memory), else TypeScript. */
export function pagedKernelFor(p: PagedProblem, returnWeights: boolean): PagedKernel {
  const wasm = getPagedKernel('paged-wasm');
  return wasm.covers!(p, returnWeights) ? wasm : getPagedKernel('paged');
}

/** The kernel for a linear layer's product: the WebAssembly one where it covers the weight, else the TypeScript one. */
export function matmulFor(p: MatmulProblem): MatmulKernel {
  const wasm = getMatmulKernel('matmul-wasm');
  return wasm.covers!(p) ? wasm : getMatmulKernel('matmul');
}

/** The CPU's elementwise layer kernels (RMSNorm, residual adds and RoPE over a layer's arena), or null. */
export function rowKernels(): RowKernels | null {
  return getRowKernels();
}

/** The kernel for a gated product (SwiGLU, GeGLU) in one pass, or null when both weights are not covered by one. */
export function gatedMatmulFor(p: MatmulProblem, up: MatrixData): MatmulKernel | null {
  const wasm = getMatmulKernel('matmul-wasm');
  return p.b.dtype === up.dtype && wasm.covers!(p) && wasm.covers!({ ...p, b: up }) ? wasm : null;
}

/** Resolves `kernel: 'auto'` and checks tile options. */
export function chooseKernel(o: AttentionOptions, dims: AttnShape): Exclude<KernelName, 'auto'> {
  if (o.blockM !== undefined) checkPositiveInt(o.blockM, 'blockM');
  if (o.blockN !== undefined) checkPositiveInt(o.blockN, 'blockN');
  if (o.numSplits !== undefined) checkPositiveInt(o.numSplits, 'numSplits');
  const k = o.kernel ?? 'auto';
  // auto: the SIMD kernel (split-K for a few query rows, tiles otherwise) for what it covers — kernelFor gives the rest
  // to the TypeScript kernels (decode for one query row, else flash); statistics and weights come from flash
  if (k === 'auto') return o.returnStats || o.returnWeights ? 'flash' : 'flash-wasm';
  if (k !== 'reference' && k !== 'flash' && k !== 'flash-wasm' && k !== 'decode') {
    throw new QkvError(`attention: kernel must be 'reference', 'flash', 'flash-wasm', 'decode' or 'auto', got ${describeValue(k)}`);
  }
  if (k === 'decode' && o.returnStats) throw new QkvError("attention: returnStats needs kernel 'flash' or 'reference', not 'decode'");
  return k;
}
