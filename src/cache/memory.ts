// KV-cache memory: 2 (k and v) × layers × kv_heads × head_dim × bytes per element × tokens × batch (k and v of their own
// head dims when they differ); multi-head latent attention (absorbed) keeps layers × (latent + RoPE key) per token.
// Presets are public configurations (their config.json numbers). The same functions feed `qkv kv` and the lab.
import { describeValue, QkvError } from '../errors.js';

/** The shape facts the formula needs. */
export interface KvShape {
  name: string;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Sliding window of the model's local layers and how many layers use it (Mistral v0.1: all; Gemma 2: half). */
  slidingWindow?: number;
  slidingLayers?: number;
  context?: number;
  /** The value head dim when it differs from the key's (DeepSeek: k 192, v 128). */
  valueDim?: number;
  /** Multi-head latent attention: the latent rank and the decoupled RoPE key's dims (one of each per token and layer). */
  mla?: { kvRank: number; ropeDim: number };
}

/** Well-known public configurations (layers, query heads, kv heads, head_dim from each model's config.json). */
export const KV_PRESETS: Record<string, KvShape> = {
  'gpt2': { name: 'GPT-2 (124M)', layers: 12, heads: 12, kvHeads: 12, headDim: 64, context: 1024 },
  'llama-2-7b': { name: 'Llama-2-7B', layers: 32, heads: 32, kvHeads: 32, headDim: 128, context: 4096 },
  'llama-2-13b': { name: 'Llama-2-13B', layers: 40, heads: 40, kvHeads: 40, headDim: 128, context: 4096 },
  'llama-2-70b': { name: 'Llama-2-70B', layers: 80, heads: 64, kvHeads: 8, headDim: 128, context: 4096 },
  'llama-3-8b': { name: 'Llama-3-8B', layers: 32, heads: 32, kvHeads: 8, headDim: 128, context: 8192 },
  'llama-3-70b': { name: 'Llama-3-70B', layers: 80, heads: 64, kvHeads: 8, headDim: 128, context: 8192 },
  'mistral-7b': { name: 'Mistral-7B-v0.1', layers: 32, heads: 32, kvHeads: 8, headDim: 128, slidingWindow: 4096, slidingLayers: 32, context: 32768 },
  'qwen2.5-7b': { name: 'Qwen2.5-7B', layers: 28, heads: 28, kvHeads: 4, headDim: 128, context: 32768 },
  'gemma-2-9b': { name: 'Gemma-2-9B', layers: 42, heads: 16, kvHeads: 8, headDim: 256, slidingWindow: 4096, slidingLayers: 21, context: 8192 },
  'phi-3-mini': { name: 'Phi-3-mini-4k', layers: 32, heads: 32, kvHeads: 32, headDim: 96, context: 4096 },
  'smollm-135m': { name: 'SmolLM-135M', layers: 30, heads: 9, kvHeads: 3, headDim: 64, context: 2048 },
  'qkv-tiny': { name: 'qkv-tiny', layers: 4, heads: 8, kvHeads: 2, headDim: 32, context: 1024 },
  'deepseek-v3': {
    name: 'DeepSeek-V3', layers: 61, heads: 128, kvHeads: 128, headDim: 192, valueDim: 128, mla: { kvRank: 512, ropeDim: 64 }, context: 163840,
  },
};

/** Bytes per element of each storage dtype (int8/int4 add their scales separately). */
export const KV_DTYPE_BYTES: Record<string, number> = { f32: 4, f16: 2, bf16: 2, int8: 1, int4: 0.5 };

/** KV-cache bytes = layers × kv_heads × (head_dim + value head_dim) × bytes × tokens × batch (2 × head_dim when equal). */
export function kvCacheBytes(s: { layers: number; kvHeads: number; headDim: number; valueDim?: number }, bytesPerElement: number,
  tokens: number, batch = 1): number {
  if (typeof s !== 'object' || s === null) {
    throw new QkvError(`kvCacheBytes: the shape must be { layers, kvHeads, headDim }, got ${describeValue(s)}`);
  }
  const valueDim = s.valueDim ?? s.headDim;
  for (const [k, v] of Object.entries({ layers: s.layers, kvHeads: s.kvHeads, headDim: s.headDim, valueDim, tokens, batch })) {
    if (!Number.isInteger(v) || v < 0) throw new QkvError(`kvCacheBytes: ${k} must be a non-negative integer, got ${String(v)}`);
  }
  return s.layers * s.kvHeads * (s.headDim + valueDim) * bytesPerElement * tokens * batch;
}

/** Absorbed MLA's cache: layers × (latent rank + RoPE key dims) × bytes × tokens × batch — no heads, no values. */
export function mlaCacheBytes(s: { layers: number; mla: { kvRank: number; ropeDim: number } }, bytesPerElement: number, tokens: number,
  batch = 1): number {
  return s.layers * (s.mla.kvRank + s.mla.ropeDim) * bytesPerElement * tokens * batch;
}

/** One row of the comparison table. */
export interface KvRow { layout: string; cache: string; kvHeads: number; bytes: number; note: string }

/**
 * The comparison `qkv kv` prints: MHA / GQA / MQA head layouts, and the cache strategies at the given dtype —
 * contiguous, paged (waste ≤ one partial block per sequence), int8 and int4 (+ scales), sliding window, sinks.
 */
export function kvTable(s: KvShape, o: { context: number; batch: number; dtype: string; blockSize?: number; window?: number; sinks?: number }): KvRow[] {
  for (const [n, x] of [['shape', s], ['options', o]] as const) {
    if (typeof x !== 'object' || x === null) throw new QkvError(`kvTable: ${n} must be an object, got ${describeValue(x)}`);
  }
  const bytes = KV_DTYPE_BYTES[o.dtype];
  if (bytes === undefined) throw new QkvError(`kv: dtype must be one of ${Object.keys(KV_DTYPE_BYTES).join(', ')}; got '${o.dtype}'`);
  const rows: KvRow[] = [];
  const layouts: [string, number][] = [[`MHA (${s.heads} kv heads)`, s.heads], [`GQA (${s.kvHeads} kv heads, as trained)`, s.kvHeads], ['MQA (1 kv head)', 1]];
  for (const [layout, kvHeads] of layouts) {
    if (layout.startsWith('GQA') && (kvHeads === s.heads || kvHeads === 1)) continue; // the model is itself MHA or MQA
    rows.push({ layout, cache: `contiguous ${o.dtype}`, kvHeads, bytes: kvCacheBytes({ ...s, kvHeads }, bytes, o.context, o.batch), note: '' });
  }
  if (s.mla) {
    const note = `latent ${s.mla.kvRank} + RoPE key ${s.mla.ropeDim} per token, shared by all heads`;
    const mlaBytes = mlaCacheBytes({ ...s, mla: s.mla }, bytes, o.context, o.batch);
    rows.push({ layout: 'MLA (absorbed, as trained)', cache: `contiguous ${o.dtype}`, kvHeads: 1, bytes: mlaBytes, note });
  }
  const own = { ...s };
  const perTokenHead = 2 * s.layers * s.kvHeads; // key and value rows per token, over layers and kv heads
  const bs = o.blockSize ?? 16;
  const pagedTokens = Math.ceil(o.context / bs) * bs;
  rows.push({ layout: 'as trained', cache: `paged ${o.dtype}, block ${bs}`, kvHeads: s.kvHeads, bytes: kvCacheBytes(own, bytes, pagedTokens, o.batch), note: `≤ ${bs - 1} tokens of waste per sequence` });
  // quantized: 1 byte (int8) or ½ byte (int4) per element, plus a float32 scale per token and head (int8) or per group of 32 (int4)
  rows.push({ layout: 'as trained', cache: 'int8 + scale per token·head', kvHeads: s.kvHeads, bytes: kvCacheBytes(own, 1, o.context, o.batch) + perTokenHead * 4 * o.context * o.batch, note: 'dequantized in the kernel' });
  rows.push({ layout: 'as trained', cache: 'int4 + scale per 32 values', kvHeads: s.kvHeads, bytes: kvCacheBytes(own, 0.5, o.context, o.batch) + (kvCacheBytes(own, 1, o.context, o.batch) / 32) * 4, note: 'estimate (qkv has no int4 cache)' });
  const window = o.window ?? s.slidingWindow;
  if (window) {
    const slidingLayers = s.slidingLayers ?? s.layers;
    const kept = Math.min(window, o.context);
    const b = kvCacheBytes({ ...s, layers: slidingLayers }, bytes, kept, o.batch) + kvCacheBytes({ ...s, layers: s.layers - slidingLayers }, bytes, o.context, o.batch);
    rows.push({ layout: 'as trained', cache: `sliding window ${window} ${o.dtype}`, kvHeads: s.kvHeads, bytes: b, note: slidingLayers < s.layers ? `${slidingLayers} of ${s.layers} layers slide` : '' });
  }
  const sinks = o.sinks ?? 4;
  const recent = o.window ?? 1020;
  rows.push({ layout: 'as trained', cache: `sinks ${sinks} + window ${recent} ${o.dtype}`, kvHeads: s.kvHeads, bytes: kvCacheBytes(own, bytes, Math.min(o.context, sinks + recent), o.batch), note: 'bounded: any length' });
  return rows;
}

/** 68719476736 → "64.0 GiB". */
export function humanBytes(bytes: number): string {
  if (typeof bytes !== 'number' || Number.isNaN(bytes)) throw new QkvError(`humanBytes: bytes must be a number, got ${String(bytes)}`);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (bytes >= 1024 && u < units.length - 1) { bytes /= 1024; u++; }
  return `${u === 0 ? bytes.toFixed(0) : bytes.toFixed(1)} ${units[u]}`;
}
