// Rotary position embedding (Su et al. 2021, RoFormer, https://arxiv.org/abs/2104.09864) and its context-extension
// scalings, computed as transformers' ROPE_INIT_FUNCTIONS do.
// Each pair of dimensions (a, b) of q and k is rotated by angle θ_k = pos · inv_freq_k, inv_freq_k = base^(−2k/d):
//   a' = a cos θ − b sin θ,   b' = b cos θ + a sin θ        so q′·k′ depends only on pos_q − pos_k.
// Pairings: 'rotate-half' (Llama, GPT-NeoX: dims k and k + d/2) or 'interleaved' (GPT-J: dims 2k and 2k + 1).
// Scalings: linear (Chen et al. 2023, position interpolation), dynamic NTK (bloc97 / transformers 'dynamic'),
// Llama 3 (wavelength-banded), YaRN (Peng et al. 2023, https://arxiv.org/abs/2309.00071, with its attention factor),
// LongRoPE (Ding et al. 2024, https://arxiv.org/abs/2402.13753, Phi-3: a factor per frequency, short or long).
import { checkInt, describeValue, QkvError } from '../../errors.js';
import { rowKernels } from '../../attention/dispatch.js';
import { activationFloats } from '../../tensor/arena.js';
import { fmtShape } from '../../tensor/shape.js';
import { checkTensor, Tensor } from '../../tensor/tensor.js';

/** A RoPE configuration in transformers' words (rope_type and the keys each type reads). */
export interface RopeConfig {
  ropeType?: 'default' | 'linear' | 'dynamic' | 'llama3' | 'yarn' | 'longrope';
  ropeTheta?: number;
  headDim: number;
  partialRotaryFactor?: number;
  factor?: number;
  maxPositionEmbeddings?: number;
  originalMaxPositionEmbeddings?: number;
  /** dynamic: the current sequence length. */
  seqLen?: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  betaFast?: number;
  betaSlow?: number;
  attentionFactor?: number;
  mscale?: number;
  mscaleAllDim?: number;
  truncate?: boolean;
  /** longrope: a divisor per frequency within the original context (short) and past it (long). */
  shortFactor?: readonly number[];
  longFactor?: readonly number[];
}

/** inv_freq [d/2] and the factor cos/sin are multiplied by; LongRoPE also has the frequencies for calls whose last
 *  position is past the original context (`after` positions), as transformers switches per forward call. */
export interface RopeFrequencies { invFreq: Float64Array; attentionFactor: number; long?: { invFreq: Float64Array; after: number } }

/** The default frequencies base^(−2k/d) for k < d/2. */
function baseFreqs(base: number, dim: number): Float64Array {
  return Float64Array.from({ length: Math.floor(dim / 2) }, (_, k) => 1 / base ** ((2 * k) / dim));
}

/**
 * inv_freq and attention factor for a RoPE config (`ropeType` default, linear, dynamic, llama3, yarn or longrope). The
 * factor multiplies cos and sin, so scores by its square: a config whose numbers make that square infinite or ≤ 0
 * (YaRN's mscale of 1e308, LongRoPE's original context of 1, whose logarithm it divides by) is refused here, not
 * turned into NaN logits.
 */
export function ropeInvFreq(c: RopeConfig): RopeFrequencies {
  if (typeof c !== 'object' || c === null) throw new QkvError(`ropeInvFreq: the config must be an object, got ${describeValue(c)}`);
  // a head of at most 65536 dims, as elsewhere (10⁹ had built half a billion frequencies, then run out of memory)
  checkInt(c.headDim, 'ropeInvFreq: headDim', 1, 65536);
  const r = frequencies(c);
  if (![r.invFreq, r.long?.invFreq ?? []].every((f) => f.every(Number.isFinite))) {
    const yarn = c.ropeType === 'yarn' ? ' (YaRN divides by ln rope_theta: it must be > 1)' : '';
    throw new QkvError(`ropeInvFreq: ${c.ropeType ?? 'default'} RoPE's frequencies come out non-finite for rope_theta ` +
      `${c.ropeTheta ?? 10000}${yarn} — check the config's rope parameters`);
  }
  const a = r.attentionFactor;
  if (!(a > 0) || !Number.isFinite(Math.fround(a * a))) {
    throw new QkvError(`ropeInvFreq: ${c.ropeType ?? 'default'} RoPE's attention factor comes to ${a} (scores × ${a * a}); ` +
      'it must be > 0 with a finite square — check the config\'s attention_factor, mscale, mscale_all_dim, factor and ' +
      'original_max_position_embeddings');
  }
  return r;
}

function frequencies(c: RopeConfig): RopeFrequencies {
  const base = c.ropeTheta ?? 10000;
  const dim = Math.floor(c.headDim * (c.partialRotaryFactor ?? 1));
  const factor = c.factor ?? 1;
  const type = c.ropeType ?? 'default';
  const need = (x: number | undefined, name: string) => {
    if (x === undefined) throw new QkvError(`ropeInvFreq: rope_type '${type}' needs ${name}`);
    return x;
  };
  switch (type) {
    case 'default': return { invFreq: baseFreqs(base, dim), attentionFactor: 1 };
    case 'linear': return { invFreq: baseFreqs(base, dim).map((f) => f / factor), attentionFactor: 1 };
    case 'dynamic': {
      // NTK-aware: grow the base once the sequence outruns the trained context
      const maxPos = need(c.maxPositionEmbeddings, 'maxPositionEmbeddings');
      const seqLen = Math.max(c.seqLen ?? maxPos, maxPos);
      const b = base * ((factor * seqLen) / maxPos - (factor - 1)) ** (dim / (dim - 2));
      return { invFreq: baseFreqs(b, dim), attentionFactor: 1 };
    }
    case 'llama3': return { invFreq: llama3(baseFreqs(base, dim), c, factor), attentionFactor: 1 };
    case 'yarn': return yarn(base, dim, c, factor);
    case 'longrope': return longrope(base, dim, c);
    default: throw new QkvError(`ropeInvFreq: unknown rope_type '${type as string}' (known: ${KNOWN})`);
  }
}

const KNOWN = 'default, linear, dynamic, llama3, yarn, longrope';

/** Llama 3: long wavelengths are divided by factor, short ones kept, the band between interpolated smoothly. */
function llama3(inv: Float64Array, c: RopeConfig, factor: number): Float64Array {
  const low = c.lowFreqFactor ?? 1;
  const high = c.highFreqFactor ?? 4;
  const oldCtx = c.originalMaxPositionEmbeddings ?? 8192;
  const [lowWavelen, highWavelen] = [oldCtx / low, oldCtx / high];
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / factor;
    const smooth = (oldCtx / wavelen - low) / (high - low);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}

/** YaRN's magnitude correction for a context scaled by `scale`: 0.1 · m · ln(scale) + 1 (1 when not scaled up). */
export const yarnMscale = (scale: number, m = 1): number => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);

/** YaRN: per-dimension blend of interpolated (÷ factor) and extrapolated frequencies, and an attention factor. */
function yarn(base: number, dim: number, c: RopeConfig, configFactor: number): RopeFrequencies {
  const factor = configFactor;
  // the context the model was trained with: where the correction range is measured
  const origMax = c.originalMaxPositionEmbeddings ?? c.maxPositionEmbeddings ?? 2048;
  const attentionFactor = c.attentionFactor ??
    (c.mscale && c.mscaleAllDim ? yarnMscale(factor, c.mscale) / yarnMscale(factor, c.mscaleAllDim) : yarnMscale(factor));
  // the dimension whose wavelength makes `rotations` turns over the original context
  const correctionDim = (rotations: number) => (dim * Math.log(origMax / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
  let lo = correctionDim(c.betaFast ?? 32);
  let hi = correctionDim(c.betaSlow ?? 1);
  if (c.truncate ?? true) { lo = Math.floor(lo); hi = Math.ceil(hi); }
  lo = Math.max(lo, 0);
  hi = Math.min(hi, dim - 1);
  if (lo === hi) hi += 0.001;
  const invFreq = Float64Array.from({ length: Math.floor(dim / 2) }, (_, k) => {
    const pos = base ** ((2 * k) / dim);
    const ramp = Math.min(Math.max((k - lo) / (hi - lo), 0), 1);
    const extrapolation = 1 - ramp; // 1 for high-frequency dims: keep them as trained
    return (1 / (factor * pos)) * (1 - extrapolation) + (1 / pos) * extrapolation;
  });
  return { invFreq, attentionFactor };
}

/**
 * LongRoPE: inv_freq_k = base^(−2k/d) / λ_k with λ the short factors inside the original context and the long ones
 * past it; cos and sin scaled by √(1 + ln s / ln L₀), s = max_position_embeddings / L₀ (L₀ the original context).
 */
function longrope(base: number, dim: number, c: RopeConfig): RopeFrequencies {
  const origMax = c.originalMaxPositionEmbeddings ?? c.maxPositionEmbeddings ?? 4096;
  const scale = (c.maxPositionEmbeddings ?? origMax) / origMax;
  const attentionFactor = c.attentionFactor ?? (scale <= 1 ? 1 : Math.sqrt(1 + Math.log(scale) / Math.log(origMax)));
  const divided = (factors: readonly number[] | undefined, name: string) => {
    if (!factors || factors.length !== dim / 2) {
      throw new QkvError(`ropeInvFreq: longrope needs ${name} with ${dim / 2} numbers, got ${factors?.length ?? 'none'}`);
    }
    return baseFreqs(base, dim).map((f, k) => f / factors[k]);
  };
  const long = { invFreq: divided(c.longFactor, 'long_factor'), after: origMax };
  return { invFreq: divided(c.shortFactor, 'short_factor'), attentionFactor, long };
}

/** How to apply RoPE. */
export interface ApplyRopeOptions {
  /** Position of each token [T] (or [B, T]); default offset, offset + 1, …. */
  positions?: readonly number[] | Tensor;
  offset?: number;
  /** Frequencies from `ropeInvFreq`; default base 10000 over the rotary dims. */
  freqs?: RopeFrequencies;
  base?: number;
  style?: 'rotate-half' | 'interleaved';
  /** Rotate only the first `rotaryDim` dims (partial rotary, e.g. GPT-NeoX, Phi); default all. */
  rotaryDim?: number;
}

// cos θ and sin θ (× the attention factor) for each position and frequency, remembered for the last positions seen
// with these frequencies: every layer of a model, and q and k, rotate by the same angles in a forward pass. The entry
// keeps the frequencies and factor it was computed from, so frequencies changed in place (a learner trying another
// θ) are computed afresh, never answered from the entry.
interface Angles { key: string; inv: Float64Array; factor: number; cos: Float64Array; sin: Float64Array }
// the last two sets of positions per frequencies: a layer rotates q and k by the same positions, or (the sinks cache:
// keys by their index in the cache, the query by its own) by two sets in turn, every layer and step
const lastAngles = new WeakMap<RopeFrequencies, Angles[]>();
/** cos θ and sin θ, θ = position · inv_freq_k, scaled by the attention factor: [positions, half] each. */
export function ropeAngles(freqs: RopeFrequencies, pos: readonly number[]): { cos: Float64Array; sin: Float64Array } {
  const key = pos.join(',');
  // LongRoPE: the long factors for a call that reaches past the original context
  const inv = freqs.long && pos.reduce((a, p) => Math.max(a, p), 0) + 1 > freqs.long.after ? freqs.long.invFreq : freqs.invFreq;
  const seen = lastAngles.get(freqs) ?? [];
  const hit = seen.find((e) => e.key === key && e.factor === freqs.attentionFactor && sameValues(e.inv, inv));
  if (hit) return hit;
  const half = freqs.invFreq.length;
  const cos = new Float64Array(pos.length * half), sin = new Float64Array(pos.length * half);
  pos.forEach((p, t) => {
    for (let k = 0; k < half; k++) {
      const th = p * inv[k];
      cos[t * half + k] = Math.cos(th) * freqs.attentionFactor;
      sin[t * half + k] = Math.sin(th) * freqs.attentionFactor;
    }
  });
  const entry = { key, inv: inv.slice(), factor: freqs.attentionFactor, cos, sin };
  lastAngles.set(freqs, [entry, ...seen.slice(0, 1)]);
  return entry;
}

const sameValues = (a: Float64Array, b: Float64Array) => a.length === b.length && a.every((x, k) => x === b[k]);

/** RoPE on x [B, H, T, D] (q or k). */
export function applyRope(x: Tensor, o: ApplyRopeOptions = {}): Tensor {
  checkTensor(x, 'applyRope: x');
  if (typeof o !== 'object' || o === null) throw new QkvError(`applyRope: options must be an object, got ${describeValue(o)}`);
  if (x.rank !== 4) throw new QkvError(`applyRope: x must be [batch, heads, seq, head_dim], got ${fmtShape(x.shape)}`);
  const [B, H, T, D] = x.shape;
  const R = o.rotaryDim ?? (o.freqs ? 2 * o.freqs.invFreq.length : D);
  if (R % 2 !== 0 || R > D) throw new QkvError(`applyRope: rotaryDim must be even and ≤ head_dim=${D}, got ${R}`);
  const freqs = o.freqs ?? { invFreq: baseFreqs(o.base ?? 10000, R), attentionFactor: 1 };
  if (freqs.invFreq.length !== R / 2) throw new QkvError(`applyRope: ${freqs.invFreq.length} frequencies for ${R} rotary dims`);
  const pos = o.positions instanceof Tensor ? o.positions.toArray() : o.positions ? [...o.positions] : Array.from({ length: T }, (_, t) => t + (o.offset ?? 0));
  const perBatch = pos.length === B * T && B > 1;
  if (pos.length !== T && !perBatch) throw new QkvError(`applyRope: positions must be [T=${T}] or [B=${B}, T], got ${pos.length} values`);
  const half = R / 2;
  const interleaved = o.style === 'interleaved';
  const out = activationFloats(x.size);
  if (out.length === 0) return Tensor.from(out, x.shape); // nothing to rotate (however many empty rows)
  const { cos, sin } = ropeAngles(freqs, pos);
  // a decoder layer's q or k in its arena (tensor/arena.ts), even as a transposed view: the SIMD kernel, the same bits
  if (!interleaved && rowKernels()?.rope(x, out, cos, sin, half, perBatch)) return Tensor.from(out, x.shape);
  const a = x.toFloat32();
  out.set(a); // the dims past rotaryDim as they are
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) {
    const at = (perBatch ? b * T + t : t) * half; // this position's row of the cos / sin tables
    const row = ((b * H + h) * T + t) * D;
    // (a, b)' = (a cos θ − b sin θ, b cos θ + a sin θ), θ = p · inv_freq_k, both scaled by the attention factor
    for (let k = 0; k < half; k++) {
      const [ia, ib] = interleaved ? [row + 2 * k, row + 2 * k + 1] : [row + k, row + k + half];
      out[ia] = a[ia] * cos[at + k] - a[ib] * sin[at + k];
      out[ib] = a[ib] * cos[at + k] + a[ia] * sin[at + k];
    }
  }
  return Tensor.from(out, x.shape);
}
