// Request validation for the HTTP API: every problem becomes a 4xx with a JSON body that says which field and why,
// in OpenAI's error shape: { error: { message, type, param, code } }.

import { describeValue } from '../../errors.js';
import { checkMessages, type ChatMessage } from '../../generate/chat.js';

/** An HTTP error with a status, the field at fault and OpenAI's error code (e.g. 'model_not_found'). */
export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null, readonly type = 'invalid_request_error',
    readonly code: string | null = null) {
    super(message);
  }
}

/** Limits the server enforces. */
export interface Limits {
  /** Request body bytes (default 64 KiB). */
  maxBodyBytes: number;
  /** max_tokens cap (default 512). */
  maxTokens: number;
  /** Prompt characters (default 8000). */
  maxPromptChars: number;
  /** Tokens of a prompt for /api/attention and /api/experiment (default 128). */
  maxAttentionTokens: number;
  /** Generations waiting for admission (and lab requests for the model) before 503 (default 256). */
  maxQueue: number;
}

export const DEFAULT_LIMITS: Limits = { maxBodyBytes: 64 * 1024, maxTokens: 512, maxPromptChars: 8000, maxAttentionTokens: 128, maxQueue: 256 };

type Body = Record<string, unknown>;

/** The body as a JSON object. */
export function parseJson(text: string): Body {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'request body must be a JSON object');
  return v as Body;
}

function num(b: Body, key: string, o: { min: number; max: number; integer?: boolean; fallback: number; minExclusive?: boolean }): number {
  const v = b[key];
  if (v === undefined || v === null) return o.fallback;
  const bad = typeof v !== 'number' || !Number.isFinite(v) || (o.integer && !Number.isInteger(v)) || v > o.max || (o.minExclusive ? v <= o.min : v < o.min);
  if (bad) {
    const range = `${o.minExclusive ? '(' : '['}${o.min}, ${o.max}]`;
    throw new HttpError(400, `'${key}' must be ${o.integer ? 'an integer' : 'a number'} in ${range}, got ${describeValue(v)}`, key);
  }
  return v as number;
}

/** The prompt field: a non-empty string within the character limit. */
export function promptOf(b: Body, limits: Limits): string {
  const p = b.prompt;
  const kind = p === undefined ? 'nothing' : Array.isArray(p) ? 'an array' : typeof p;
  if (typeof p !== 'string') throw new HttpError(400, `'prompt' must be a string, got ${kind}`, 'prompt');
  if (p.length === 0) throw new HttpError(400, "'prompt' must not be empty", 'prompt');
  if (p.length > limits.maxPromptChars) throw new HttpError(400, `'prompt' is ${p.length} characters; the limit is ${limits.maxPromptChars}`, 'prompt');
  return p;
}

/** What every generation request asks for besides its input. */
export interface SamplingRequest {
  maxTokens: number; temperature: number; topP: number; stop: string[]; seed: number; stream: boolean;
  presencePenalty: number; frequencyPenalty: number;
  /** Choices per prompt. */
  n: number;
  /** Top log-probabilities per token (0: the chosen token's only), or null for none. */
  logprobs: number | null;
  logitBias: Map<number, number>;
  /** A last stream event with the usage (stream_options.include_usage). */
  includeUsage: boolean;
}
/** A validated /v1/completions request: one or more prompts, each text or token ids. */
export interface CompletionRequest extends SamplingRequest { prompts: (string | number[])[]; echo: boolean }
/** A validated /v1/chat/completions request. */
export interface ChatRequest extends SamplingRequest { messages: ChatMessage[] }

const SAMPLING = [
  'model', 'max_tokens', 'temperature', 'top_p', 'stop', 'seed', 'stream', 'n', 'logprobs', 'user', 'presence_penalty', 'frequency_penalty',
  'logit_bias', 'stream_options',
];
const KNOWN = new Set([...SAMPLING, 'prompt', 'echo']);
const KNOWN_CHAT = new Set([...SAMPLING, 'messages', 'max_completion_tokens', 'top_logprobs', 'response_format', 'tools', 'tool_choice']);
const MAX_PROMPTS = 16;

/** Throws 404 model_not_found (OpenAI's answer) unless `model`, when given, names the loaded model. */
export function checkModel(b: Body, modelName: string): void {
  const m = b.model;
  if (m === undefined || m === null || m === modelName) return;
  if (typeof m !== 'string') throw new HttpError(400, `'model' must be a string, got ${describeValue(m)}`, 'model');
  const message = `The model '${m.slice(0, 100)}' does not exist; this server has '${modelName}'`;
  throw new HttpError(404, message, 'model', 'invalid_request_error', 'model_not_found');
}

export function completionRequest(b: Body, limits: Limits, vocab: number): CompletionRequest {
  for (const k of Object.keys(b)) if (!KNOWN.has(k)) throw new HttpError(400, `unknown field '${k.slice(0, 100)}'`, k.slice(0, 100));
  if (b.echo !== undefined && typeof b.echo !== 'boolean') throw new HttpError(400, "'echo' must be a boolean", 'echo');
  const none = b.logprobs === undefined || b.logprobs === null;
  const logprobs = none ? null : num(b, 'logprobs', { min: 0, max: 5, integer: true, fallback: 0 });
  // max_tokens 0 with echo: the prompt alone, scored when logprobs are asked for (lm-evaluation-harness's loglikelihood)
  const s = samplingRequest(b, limits, 'max_tokens', vocab, b.echo === true ? 0 : 1);
  return { ...s, prompts: promptsOf(b, limits, vocab), echo: b.echo === true, logprobs };
}

// a prompt: text, token ids, or a list of either (at most MAX_PROMPTS)
function promptsOf(b: Body, limits: Limits, vocab: number): (string | number[])[] {
  const p = b.prompt;
  const isIds = (x: unknown): x is number[] =>
    Array.isArray(x) && x.length > 0 && x.every((i) => Number.isInteger(i) && i >= 0 && i < vocab);
  const list = typeof p === 'string' || isIds(p) ? [p] : Array.isArray(p) ? p : null;
  const what = "'prompt' must be a string, a list of token ids, or a list of up to 16 of either";
  if (!list || list.length === 0 || list.length > MAX_PROMPTS) throw new HttpError(400, `${what}, got ${describeValue(p)}`, 'prompt');
  return list.map((x) => {
    if (typeof x === 'string') return promptOf({ prompt: x }, limits);
    if (isIds(x) && x.length <= limits.maxPromptChars) return x;
    throw new HttpError(400, `${what} (token ids are integers in [0, ${vocab})); got ${describeValue(x)}`, 'prompt');
  });
}

/** /v1/chat/completions: messages (role and content, content a string or text parts) and the sampling fields. */
export function chatRequest(b: Body, limits: Limits, vocab: number): ChatRequest {
  for (const k of Object.keys(b)) if (!KNOWN_CHAT.has(k)) throw new HttpError(400, `unknown field '${k.slice(0, 100)}'`, k.slice(0, 100));
  let messages: ChatMessage[];
  try {
    messages = checkMessages(b.messages, "'messages'");
  } catch (e) {
    throw new HttpError(400, (e as Error).message, 'messages');
  }
  const chars = messages.reduce((s, m) => s + m.content.length, 0);
  if (chars > limits.maxPromptChars) {
    throw new HttpError(400, `'messages' hold ${chars} characters; the limit is ${limits.maxPromptChars}`, 'messages');
  }
  // tools: none, or an empty list with no choice of one (some clients always send the field); calling them is refused by name
  const noTools = (b.tools === undefined || (Array.isArray(b.tools) && b.tools.length === 0)) &&
    (b.tool_choice === undefined || b.tool_choice === null || b.tool_choice === 'none');
  if (!noTools) {
    const param = b.tools !== undefined && !(Array.isArray(b.tools) && b.tools.length === 0) ? 'tools' : 'tool_choice';
    throw new HttpError(400, `'${param}': this server generates text only; it does not call tools (function calling)`, param);
  }
  // response_format: plain text is what every answer is (clients send it as their default); JSON output would need
  // decoding constrained to a grammar, which qkv does not do — said so, not ignored
  const format = b.response_format;
  if (format !== undefined && format !== null && (typeof format !== 'object' || (format as { type?: unknown }).type !== 'text')) {
    const type = typeof format === 'object' ? describeValue((format as { type?: unknown }).type) : describeValue(format);
    const why = `'response_format' must be {"type": "text"}: JSON output needs constrained decoding, which this server does not do`;
    throw new HttpError(400, `${why} (got type ${type})`, 'response_format');
  }
  const s = samplingRequest(b, limits, b.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens', vocab);
  if (b.logprobs !== undefined && b.logprobs !== null && typeof b.logprobs !== 'boolean') {
    throw new HttpError(400, "'logprobs' must be a boolean", 'logprobs');
  }
  const top = num(b, 'top_logprobs', { min: 0, max: 20, integer: true, fallback: 0 });
  if (b.top_logprobs !== undefined && b.top_logprobs !== null && b.logprobs !== true) {
    throw new HttpError(400, "'top_logprobs' needs 'logprobs': true", 'top_logprobs');
  }
  return { messages, ...s, logprobs: b.logprobs === true ? top : null };
}

// logit_bias: { "token id": bias in [−100, 100] }, own keys only
function logitBiasOf(b: Body, vocab: number): Map<number, number> {
  const v = b.logit_bias;
  const bias = new Map<number, number>();
  if (v === undefined || v === null) return bias;
  const fail = (why: string): never => { throw new HttpError(400, `'logit_bias' ${why}`, 'logit_bias'); };
  if (typeof v !== 'object' || Array.isArray(v)) fail('must be an object of token id → bias');
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > 300) fail(`names ${entries.length} tokens; the limit is 300`);
  for (const [k, x] of entries) {
    const id = Number(k);
    if (!/^\d+$/.test(k) || id >= vocab) fail(`keys must be token ids in [0, ${vocab}), got '${k.slice(0, 40)}'`);
    if (typeof x !== 'number' || !(Math.abs(x) <= 100)) fail(`values must be numbers in [-100, 100], got ${describeValue(x)}`);
    bias.set(id, x as number);
  }
  return bias;
}

function samplingRequest(b: Body, limits: Limits, maxKey: string, vocab: number, minTokens = 1): SamplingRequest {
  const n = num(b, 'n', { min: 1, max: 8, integer: true, fallback: 1 });
  const so = b.stream_options;
  const odd = (x: object) => Array.isArray(x) || Object.keys(x).some((k) => k !== 'include_usage');
  if (so !== undefined && so !== null && (typeof so !== 'object' || odd(so))) {
    throw new HttpError(400, "'stream_options' must be an object with at most 'include_usage'", 'stream_options');
  }
  const includeUsage = (so as { include_usage?: unknown } | null | undefined)?.include_usage;
  if (includeUsage !== undefined && typeof includeUsage !== 'boolean') {
    throw new HttpError(400, "'stream_options.include_usage' must be a boolean", 'stream_options');
  }
  if (so && b.stream !== true) throw new HttpError(400, "'stream_options' needs 'stream': true", 'stream_options');
  const stop = b.stop === undefined || b.stop === null ? [] : typeof b.stop === 'string' ? [b.stop] : b.stop;
  if (!Array.isArray(stop) || stop.length > 4 || !stop.every((s) => typeof s === 'string' && s.length > 0)) {
    throw new HttpError(400, "'stop' must be a non-empty string or a list of up to 4 non-empty strings", 'stop');
  }
  if (b.stream !== undefined && typeof b.stream !== 'boolean') throw new HttpError(400, "'stream' must be a boolean", 'stream');
  return {
    maxTokens: num(b, maxKey, { min: minTokens, max: limits.maxTokens, integer: true, fallback: 16 }),
    temperature: num(b, 'temperature', { min: 0, max: 2, fallback: 1 }),
    topP: num(b, 'top_p', { min: 0, max: 1, fallback: 1, minExclusive: true }),
    stop: stop as string[],
    // no seed: a fresh one, so that sampled completions differ from request to request (as OpenAI's do)
    seed: num(b, 'seed', { min: 0, max: 2 ** 32 - 1, integer: true, fallback: Math.floor(Math.random() * 2 ** 32) }),
    presencePenalty: num(b, 'presence_penalty', { min: -2, max: 2, fallback: 0 }),
    frequencyPenalty: num(b, 'frequency_penalty', { min: -2, max: 2, fallback: 0 }),
    stream: b.stream === true,
    n, logprobs: null, logitBias: logitBiasOf(b, vocab), includeUsage: includeUsage === true,
  };
}
