// Hugging Face config.json → one typed, camelCase config. Raw keys stay snake_case in HfConfig; each family reads
// what it needs through these helpers, which accept both transformers 4 names (rope_theta, rope_scaling) and
// transformers 5 names (rope_parameters).
import { describeValue, QkvError } from '../errors.js';
import type { RopeConfig } from '../nn/positional/rope.js';

/** config.json as parsed: snake_case keys, as transformers writes them. */
export type HfConfig = Record<string, unknown> & { architectures?: string[]; model_type?: string };

/** What a number read from config.json may be: an integer, and its bounds. */
export interface Range { integer?: boolean; min?: number; max?: number; minExclusive?: boolean }

/** Integers ≥ 1 (sizes and counts), at most 2²⁶ — past any real model, short of what would exhaust memory. */
export const COUNT: Range = { integer: true, min: 1, max: 2 ** 26 };

function rangeText(r: Range): string {
  const kind = r.integer ? 'an integer' : 'a number';
  const lo = r.min === undefined ? '' : ` ${r.minExclusive ? '>' : '≥'} ${r.min}`;
  const hi = r.max === undefined ? '' : `${lo ? ' and' : ''} ≤ ${r.max}`;
  return `${kind}${lo}${hi}`;
}

/**
 * Throws unless x is a finite number within `r` that float32 can hold (the kernels compute in float32: a scale of
 * 1e308 would be ∞ there); `what` names it in the message.
 */
export function checkNumber(x: unknown, what: string, r: Range = {}): number {
  const inRange = typeof x === 'number' && Number.isFinite(x) && (!r.integer || Number.isInteger(x)) &&
    (r.min === undefined || (r.minExclusive ? x > r.min : x >= r.min)) && (r.max === undefined || x <= r.max);
  const f32 = inRange && !Number.isFinite(Math.fround(x)) ? ' that float32 holds (|x| ≤ 3.4e38)' : '';
  if (!inRange || f32) throw new QkvError(`config.json: ${what} must be ${rangeText(r)}${f32}, got ${describeValue(x)}`);
  return x as number;
}

/** A number from the config within `range`, or `fallback` when absent; an error naming the key, the rule and the value. */
export function num(c: HfConfig, key: string, fallback?: number, range: Range = {}): number {
  const x = Object.hasOwn(c, key) ? c[key] : undefined;
  if (x === undefined || x === null) {
    if (fallback !== undefined) return fallback;
    throw new QkvError(`config.json: missing '${key}'`);
  }
  return checkNumber(x, `'${key}'`, range);
}

/** A count or size (an integer ≥ 1). */
export function count(c: HfConfig, key: string, fallback?: number): number {
  return num(c, key, fallback, COUNT);
}

/** A model's sliding window (keys j > i − W), or null when the config has none: a count when it is there. */
export function slidingWindowOf(c: HfConfig): number | null {
  return c.sliding_window === undefined || c.sliding_window === null ? null : count(c, 'sliding_window');
}

/** First of several alternative keys (GPT-2's n_embd vs hidden_size, …). */
export function numOf(c: HfConfig, keys: string[], fallback?: number, range: Range = COUNT): number {
  for (const k of keys) if (c[k] !== undefined && c[k] !== null) return num(c, k, undefined, range);
  if (fallback !== undefined) return fallback;
  throw new QkvError(`config.json: missing '${keys[0]}'`);
}

// A token id is an integer in [0, 2³¹): not necessarily < vocab_size — tiny test checkpoints keep GPT-2's eos 50256
// with a vocabulary of 512, and transformers accepts that (such an id is never sampled).
const TOKEN_ID: Range = { integer: true, min: 0, max: 2 ** 31 - 1 };

/** Token ids that end generation: eos_token_id as an id or a list of ids. */
export function tokenIds(x: unknown, key = 'eos_token_id'): number[] {
  if (x === undefined || x === null) return [];
  const ids = Array.isArray(x) ? x : [x];
  return ids.map((id, i) => checkNumber(id, `'${key}'${Array.isArray(x) ? `[${i}]` : ''}`, TOKEN_ID));
}

/** One optional token id (bos, pad): null, or an id. */
export function tokenId(c: HfConfig, key: string): number | null {
  const x = c[key];
  return x === undefined || x === null ? null : checkNumber(x, `'${key}'`, TOKEN_ID);
}

/** Hq, Hkv, head_dim of a decoder, checked together: Hkv divides Hq; head_dim given, or hidden_size / Hq exactly. */
export function attentionShape(c: HfConfig, hiddenSize: number, headsKey = 'num_attention_heads'):
  { numHeads: number; numKvHeads: number; headDim: number } {
  const numHeads = count(c, headsKey);
  const numKvHeads = count(c, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new QkvError(`config.json: 'num_key_value_heads' (${numKvHeads}) must divide '${headsKey}' (${numHeads}): ` +
      'each kv head serves a whole group of query heads');
  }
  if ((c.head_dim === undefined || c.head_dim === null) && hiddenSize % numHeads !== 0) {
    throw new QkvError(`config.json: 'hidden_size' (${hiddenSize}) must be a multiple of '${headsKey}' (${numHeads}) ` +
      "when 'head_dim' is not given");
  }
  return { numHeads, numKvHeads, headDim: count(c, 'head_dim', hiddenSize / numHeads) };
}

/** The output projection's rule: tie_word_embeddings false means lm_head.weight must be there, as in transformers. */
export function checkTied(c: HfConfig, hasLmHead: boolean, source: string): void {
  if (c.tie_word_embeddings !== undefined && typeof c.tie_word_embeddings !== 'boolean') {
    throw new QkvError(`config.json: 'tie_word_embeddings' must be true or false, got ${describeValue(c.tie_word_embeddings)}`);
  }
  if (c.tie_word_embeddings === false && !hasLmHead) {
    throw new QkvError(`${source}: missing tensor 'lm_head.weight', which config.json's tie_word_embeddings: false requires`);
  }
}

const ROPE_TYPES = ['default', 'linear', 'dynamic', 'llama3', 'yarn', 'longrope'];
const POSITIVE: Range = { min: 0, minExclusive: true };
const FRACTION: Range = { min: 0, max: 1, minExclusive: true };

/** obj[key] checked against `range` (named `label` in the message), or undefined when absent or null. */
function optional(obj: Record<string, unknown>, key: string, label: string, range: Range): number | undefined {
  const x = Object.hasOwn(obj, key) ? obj[key] : undefined;
  return x === undefined || x === null ? undefined : checkNumber(x, `'${label}'`, range);
}

/**
 * RoPE settings from either rope_parameters (transformers 5) or rope_theta + rope_scaling (transformers 4), each value
 * checked where the formula needs it: theta > 0, factor > 0, llama3's two frequency factors unequal, dynamic NTK with
 * more than 2 rotary dims, yarn with a factor, an even rotary part of head_dim.
 */
export function ropeConfig(c: HfConfig, headDim: number, layerType?: string): RopeConfig {
  const key = c.rope_parameters !== undefined && c.rope_parameters !== null ? 'rope_parameters' : 'rope_scaling';
  let raw: unknown = c[key] ?? {};
  // one set per layer type (Gemma 3: sliding_attention, full_attention)
  if (layerType && typeof raw === 'object' && raw !== null && Object.hasOwn(raw, layerType)) {
    raw = (raw as Record<string, unknown>)[layerType];
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new QkvError(`config.json: '${key}' must be an object, got ${describeValue(raw)}`);
  }
  const params = raw as Record<string, unknown>;
  const pick = (k: string, r: Range = {}) => optional(params, k, `${key}.${k}`, r);
  const type = params.rope_type ?? params.type ?? 'default';
  if (typeof type !== 'string' || !ROPE_TYPES.includes(type)) {
    throw new QkvError(`config.json: '${key}.rope_type' must be one of ${ROPE_TYPES.join(', ')}, got ${describeValue(type)}`);
  }
  // rotation acts on pairs of dimensions: the rotary part of head_dim must be even
  const partial = pick('partial_rotary_factor', FRACTION) ?? optional(c, 'partial_rotary_factor', 'partial_rotary_factor', FRACTION);
  const rotary = Math.floor(headDim * (partial ?? 1));
  if (headDim % 2 !== 0 || rotary % 2 !== 0 || rotary < 2) {
    throw new QkvError(`config.json: RoPE rotates pairs of dimensions, so the rotary part of head_dim (${rotary} of ${headDim}) ` +
      'must be even and ≥ 2');
  }
  const factor = pick('factor', POSITIVE);
  if (type !== 'default' && type !== 'longrope' && factor === undefined) {
    throw new QkvError(`config.json: rope_type '${type}' needs '${key}.factor' (a number > 0)`);
  }
  const [low, high] = [pick('low_freq_factor', POSITIVE), pick('high_freq_factor', POSITIVE)];
  if (type === 'llama3' && (low ?? 1) === (high ?? 4)) {
    throw new QkvError(`config.json: llama3 RoPE needs low_freq_factor ≠ high_freq_factor (both ${low ?? 1}): ` +
      'the band between them is divided by their difference');
  }
  // dynamic NTK grows the base by (…)^(d/(d−2))
  if (type === 'dynamic' && rotary <= 2) throw new QkvError(`config.json: dynamic NTK RoPE needs more than 2 rotary dims, got ${rotary}`);
  return {
    ropeType: type as RopeConfig['ropeType'],
    ropeTheta: pick('rope_theta', POSITIVE) ?? optional(c, 'rope_theta', 'rope_theta', POSITIVE) ?? 10000,
    headDim,
    partialRotaryFactor: partial,
    factor,
    maxPositionEmbeddings: optional(c, 'max_position_embeddings', 'max_position_embeddings', COUNT),
    lowFreqFactor: low, highFreqFactor: high,
    betaFast: pick('beta_fast', POSITIVE), betaSlow: pick('beta_slow', POSITIVE), attentionFactor: pick('attention_factor', POSITIVE),
    mscale: pick('mscale'), mscaleAllDim: pick('mscale_all_dim'),
    truncate: params.truncate === false ? false : undefined, // YaRN: gpt-oss keeps the correction range unrounded
    // LongRoPE configs (Phi-3) keep the original context at the top level too
    originalMaxPositionEmbeddings: pick('original_max_position_embeddings', COUNT) ?? (type === 'longrope'
      ? optional(c, 'original_max_position_embeddings', 'original_max_position_embeddings', COUNT) : undefined),
    shortFactor: factorList(params, 'short_factor', key), longFactor: factorList(params, 'long_factor', key),
  };
}

// a list of positive numbers (LongRoPE's short_factor / long_factor), or undefined when absent
function factorList(params: Record<string, unknown>, k: string, key: string): number[] | undefined {
  const x = Object.hasOwn(params, k) ? params[k] : undefined;
  if (x === undefined || x === null) return undefined;
  if (!Array.isArray(x) || x.length > 1 << 16) {
    throw new QkvError(`config.json: '${key}.${k}' must be a list of numbers, got ${describeValue(x)}`);
  }
  return x.map((v, i) => checkNumber(v, `'${key}.${k}[${i}]'`, POSITIVE));
}
