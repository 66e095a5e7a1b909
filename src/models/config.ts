// Hugging Face config.json → one typed, camelCase config. Raw keys stay snake_case in HfConfig; each family reads
// what it needs through these helpers, which accept both transformers 4 names (rope_theta, rope_scaling) and
// transformers 5 names (rope_parameters).
import { QkvError } from '../errors.js';
import type { RopeConfig } from '../nn/positional/rope.js';

/** config.json as parsed: snake_case keys, as transformers writes them. */
export type HfConfig = Record<string, unknown> & { architectures?: string[]; model_type?: string };

/** A number from the config, or `fallback`; an error naming the key when it is missing or not a number. */
export function num(c: HfConfig, key: string, fallback?: number): number {
  const x = c[key];
  if (x === undefined || x === null) {
    if (fallback !== undefined) return fallback;
    throw new QkvError(`config.json: missing '${key}'`);
  }
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new QkvError(`config.json: '${key}' must be a number, got ${JSON.stringify(x)}`);
  return x;
}

/** First of several alternative keys (GPT-2's n_embd vs hidden_size, …). */
export function numOf(c: HfConfig, keys: string[], fallback?: number): number {
  for (const k of keys) if (c[k] !== undefined && c[k] !== null) return num(c, k);
  if (fallback !== undefined) return fallback;
  throw new QkvError(`config.json: missing '${keys[0]}'`);
}

/** Token ids that end generation (eos_token_id may be a number or a list). */
export function tokenIds(x: unknown): number[] {
  if (typeof x === 'number') return [x];
  if (Array.isArray(x)) return x.filter((v): v is number => typeof v === 'number');
  return [];
}

/** RoPE settings from either rope_parameters (transformers 5) or rope_theta + rope_scaling (transformers 4). */
export function ropeConfig(c: HfConfig, headDim: number): RopeConfig {
  const params = (c.rope_parameters ?? c.rope_scaling ?? {}) as Record<string, unknown>;
  const pick = (k: string) => (typeof params[k] === 'number' ? (params[k] as number) : undefined);
  const type = (params.rope_type ?? params.type ?? 'default') as RopeConfig['ropeType'];
  return {
    ropeType: type,
    ropeTheta: pick('rope_theta') ?? (typeof c.rope_theta === 'number' ? c.rope_theta : 10000),
    headDim,
    partialRotaryFactor: pick('partial_rotary_factor') ?? (typeof c.partial_rotary_factor === 'number' ? c.partial_rotary_factor : undefined),
    factor: pick('factor'),
    maxPositionEmbeddings: typeof c.max_position_embeddings === 'number' ? c.max_position_embeddings : undefined,
    originalMaxPositionEmbeddings: pick('original_max_position_embeddings'),
    lowFreqFactor: pick('low_freq_factor'), highFreqFactor: pick('high_freq_factor'),
    betaFast: pick('beta_fast'), betaSlow: pick('beta_slow'), attentionFactor: pick('attention_factor'),
    mscale: pick('mscale'), mscaleAllDim: pick('mscale_all_dim'),
  };
}
