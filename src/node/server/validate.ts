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
  /** Requests waiting for the model before 503 (default 16). */
  maxQueue: number;
}

export const DEFAULT_LIMITS: Limits = { maxBodyBytes: 64 * 1024, maxTokens: 512, maxPromptChars: 8000, maxAttentionTokens: 128, maxQueue: 16 };

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
}
/** A validated /v1/completions request. */
export interface CompletionRequest extends SamplingRequest { prompt: string }
/** A validated /v1/chat/completions request. */
export interface ChatRequest extends SamplingRequest { messages: ChatMessage[] }

const SAMPLING = [
  'model', 'max_tokens', 'temperature', 'top_p', 'stop', 'seed', 'stream', 'n', 'logprobs', 'user', 'presence_penalty', 'frequency_penalty',
];
const KNOWN = new Set([...SAMPLING, 'prompt', 'echo']);
const KNOWN_CHAT = new Set([...SAMPLING, 'messages', 'max_completion_tokens']);

/** Throws 404 model_not_found (OpenAI's answer) unless `model`, when given, names the loaded model. */
export function checkModel(b: Body, modelName: string): void {
  const m = b.model;
  if (m === undefined || m === null || m === modelName) return;
  if (typeof m !== 'string') throw new HttpError(400, `'model' must be a string, got ${describeValue(m)}`, 'model');
  const message = `The model '${m.slice(0, 100)}' does not exist; this server has '${modelName}'`;
  throw new HttpError(404, message, 'model', 'invalid_request_error', 'model_not_found');
}

export function completionRequest(b: Body, limits: Limits): CompletionRequest {
  for (const k of Object.keys(b)) if (!KNOWN.has(k)) throw new HttpError(400, `unknown field '${k.slice(0, 100)}'`, k.slice(0, 100));
  if (b.echo !== undefined && b.echo !== false) throw new HttpError(400, "'echo' is not supported", 'echo');
  return { prompt: promptOf(b, limits), ...samplingRequest(b, limits, 'max_tokens') };
}

/** /v1/chat/completions: messages (role and content, content a string or text parts) and the sampling fields. */
export function chatRequest(b: Body, limits: Limits): ChatRequest {
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
  return { messages, ...samplingRequest(b, limits, b.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens') };
}

function samplingRequest(b: Body, limits: Limits, maxKey: string): SamplingRequest {
  if (b.n !== undefined && b.n !== 1) throw new HttpError(400, "'n' must be 1 (one completion per request)", 'n');
  if (b.logprobs !== undefined && b.logprobs !== null && b.logprobs !== false) {
    throw new HttpError(400, "'logprobs' is not supported", 'logprobs');
  }
  const stop = b.stop === undefined || b.stop === null ? [] : typeof b.stop === 'string' ? [b.stop] : b.stop;
  if (!Array.isArray(stop) || stop.length > 4 || !stop.every((s) => typeof s === 'string' && s.length > 0)) {
    throw new HttpError(400, "'stop' must be a non-empty string or a list of up to 4 non-empty strings", 'stop');
  }
  if (b.stream !== undefined && typeof b.stream !== 'boolean') throw new HttpError(400, "'stream' must be a boolean", 'stream');
  return {
    maxTokens: num(b, maxKey, { min: 1, max: limits.maxTokens, integer: true, fallback: 16 }),
    temperature: num(b, 'temperature', { min: 0, max: 2, fallback: 1 }),
    topP: num(b, 'top_p', { min: 0, max: 1, fallback: 1, minExclusive: true }),
    stop: stop as string[],
    // no seed: a fresh one, so that sampled completions differ from request to request (as OpenAI's do)
    seed: num(b, 'seed', { min: 0, max: 2 ** 32 - 1, integer: true, fallback: Math.floor(Math.random() * 2 ** 32) }),
    presencePenalty: num(b, 'presence_penalty', { min: -2, max: 2, fallback: 0 }),
    frequencyPenalty: num(b, 'frequency_penalty', { min: -2, max: 2, fallback: 0 }),
    stream: b.stream === true,
  };
}
