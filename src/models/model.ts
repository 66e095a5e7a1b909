// What every model family offers: a causal LM (GPT-2, Llama, Mistral, Qwen2, Gemma 2), an encoder (BERT, ViT) or an
// encoder-decoder (T5). Inputs are token ids as plain arrays, one row per sequence.
import type { KVCache } from '../cache/kv-cache.js';
import { describeValue, QkvError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';

/** Facts about a model, for `qkv info`, the KV-cache calculator and the lab. */
export interface ModelInfo {
  architecture: string;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  hiddenSize: number;
  vocabSize: number;
  /** Longest context the checkpoint was trained for. */
  maxPositions: number;
  eosTokenIds: number[];
  bosTokenId: number | null;
  padTokenId: number | null;
}

/** One layer's attention inputs (CausalForwardOptions.outputQkv). */
export interface LayerQkv {
  q: Tensor; k: Tensor; v: Tensor; scale: number;
  /** The layer's attention input [B, T, E] after its norm, which q, k and v are projected from (Llama-family models). */
  x?: Tensor;
}

/** Options of a causal LM forward pass. */
export interface CausalForwardOptions {
  /** Keys and values of earlier tokens; the new ones are appended. */
  cache?: KVCache;
  /** Position of every new token, per row; default cache length + 0, 1, …. */
  positionIds?: readonly (readonly number[])[];
  /** 1 = real token, 0 = padding, per row, over all keys (cached + new). */
  attentionMask?: readonly (readonly number[])[];
  /** Return every layer's attention weights [B, H, T, S]. */
  outputAttentions?: boolean;
  /** Return every layer's q [B, Hq, T, D], k and v [B, Hkv, T, D] as attention uses them (after RoPE and qk-norm) and
   *  its softmax scale: what the lab's step-by-step view shows. Without a cache only. */
  outputQkv?: boolean;
  /** Compute logits for the last position only (generation). */
  lastOnly?: boolean;
  /** Break things on purpose to see why they exist (the lab's experiments; Llama family). */
  ablate?: Ablations;
}

/** Deliberate changes to a model's attention, for experiments. */
export interface Ablations {
  /** Drop the 1/√d scaling of the scores. */
  noScale?: boolean;
  /** Drop the causal mask: every token sees the future too. */
  noCausal?: boolean;
  /** Drop the rotary position embedding. */
  noPositions?: boolean;
  /** Impose a sliding window of W keys. */
  slidingWindow?: number;
  /** Mean-pool the key/value heads down to this many (GQA → MQA), as converting the weights would. */
  kvHeads?: number;
  /** Remove these heads: their outputs are zeroed before the output projection (CPU forward). */
  heads?: readonly { layer: number; head: number }[];
  /**
   * Activation patching: this head attends with `weights` [T', T'] (another prompt's pattern) instead of its own, over
   * its own values: o_i = Σ_j w_ij v_j for the rows and keys both prompts have (CPU forward).
   */
  patch?: { layer: number; head: number; weights: Float32Array; size: number };
}

export interface CausalLM {
  readonly kind: 'causal-lm';
  readonly info: ModelInfo;
  /** logits [B, T, V] (or [B, 1, V] with lastOnly) and, on request, attentions per layer. */
  forward(inputIds: readonly (readonly number[])[], o?: CausalForwardOptions): { logits: Tensor; attentions?: Tensor[]; qkv?: LayerQkv[] };
}

export interface EncoderModel {
  readonly kind: 'encoder';
  readonly info: ModelInfo;
  forward(inputs: EncoderInputs): { lastHiddenState: Tensor; attentions?: Tensor[] };
}

/** Encoder inputs: token ids (BERT) or pixels (ViT). */
export interface EncoderInputs {
  inputIds?: readonly (readonly number[])[];
  attentionMask?: readonly (readonly number[])[];
  tokenTypeIds?: readonly (readonly number[])[];
  pixelValues?: Tensor;
  outputAttentions?: boolean;
}

export interface Seq2SeqLM {
  readonly kind: 'seq2seq';
  readonly info: ModelInfo & { decoderStartTokenId: number };
  encode(inputIds: readonly (readonly number[])[], attentionMask?: readonly (readonly number[])[], outputAttentions?: boolean): { hidden: Tensor; attentions?: Tensor[] };
  decode(decoderIds: readonly (readonly number[])[], hidden: Tensor, o?: {
    attentionMask?: readonly (readonly number[])[]; cache?: KVCache; outputAttentions?: boolean; lastOnly?: boolean;
  }): { logits: Tensor; attentions?: Tensor[]; crossAttentions?: Tensor[] };
}

export type Model = CausalLM | EncoderModel | Seq2SeqLM;

/**
 * Throws a QkvError for `fn` unless `model` is a model of `kind` (with its info), as loadCheckpoint gives it:
 * JavaScript callers are not type-checked. Returns the model.
 */
export function checkModelKind<M>(model: M, kind: 'causal-lm' | 'seq2seq', fn: string): M {
  const m = model as { kind?: unknown; info?: unknown } | null;
  if (typeof m !== 'object' || m === null || m.kind !== kind || typeof m.info !== 'object' || m.info === null) {
    throw new QkvError(`${fn}: model must be a ${kind === 'seq2seq' ? 'seq2seq model (T5)' : 'causal LM'}, got ${describeValue(model)}`);
  }
  return model;
}
