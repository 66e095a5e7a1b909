// Answers to /v1/completions and /v1/chat/completions in OpenAI's shapes: every prompt × n choices is one sequence of
// the batch engine, all generated together; streamed as server-sent events (a chunk per piece of text, each naming its
// choice) or answered whole; with log-probabilities, echo, and usage (also as a stream's last event on request). Echo
// with logprobs scores the prompt too — each prompt token's log-probability given those before it, the first none — and
// max_tokens 0 with echo scores it alone: how lm-evaluation-harness computes log-likelihoods through this API.
import type { ServerResponse } from 'node:http';
import { type BatchEngine, EngineBusyError, type EngineSequence } from '../../generate/engine.js';
import { generateStream, type GeneratedToken } from '../../generate/generate.js';
import { scoreTokens } from '../../generate/score.js';
import type { Tokenizer } from '../../generate/tokenizer.js';
import type { CausalLM } from '../../models/model.js';
import type { ServerMetrics } from './metrics.js';
import { HttpError, type SamplingRequest } from './validate.js';

export type Shape = 'text' | 'chat';

interface Context {
  model: CausalLM; tokenizer: Tokenizer; modelName: string; engine: BatchEngine; metrics: ServerMetrics;
  stats: { completions: number; tokensGenerated: number; aborted: number };
  usageOf: WeakMap<ServerResponse, Record<string, number>>; inFlight: Set<AbortController>;
  /** The server's JSON answer (server.ts). */
  sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void;
  /** Runs model work outside the batch in turn with the other such requests (attention maps, experiments), or 503s. */
  outOfBatch<T>(job: () => Promise<T>): Promise<T>;
}

// a token with its log-probability and the most likely ones, where it has them (a prompt's first token has none: null)
interface Scored { id: number; logprob?: number | null; top?: { id: number; logprob: number }[] | null }
interface Choice { index: number; prompt: number[]; text: string; tokens: GeneratedToken[]; finish: string | null; scored: Scored[] | null }

const SSE = { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' };
let served = 0;

/** The function that answers a generation request on `ctx.engine`. */
export function answerer(ctx: Context) {
  const { model, tokenizer, modelName, engine, metrics } = ctx;
  const piece = (id: number) => tokenizer.decode([id]);
  const bytes = (s: string) => [...new TextEncoder().encode(s)];

  // log-probabilities of some tokens, in the endpoint's shape (text: parallel lists; chat: one entry per token)
  function logprobsOf(shape: Shape, tokens: readonly Scored[], offset: number): unknown {
    if (shape === 'chat') {
      return { content: tokens.map((t) => ({
        token: piece(t.id), logprob: t.logprob, bytes: bytes(piece(t.id)),
        top_logprobs: (t.top ?? []).map((x) => ({ token: piece(x.id), logprob: x.logprob, bytes: bytes(piece(x.id)) })),
      })) };
    }
    const text_offset: number[] = [];
    for (const t of tokens) { text_offset.push(offset); offset += piece(t.id).length; }
    return {
      tokens: tokens.map((t) => piece(t.id)), token_logprobs: tokens.map((t) => t.logprob ?? null), text_offset,
      top_logprobs: tokens.map((t) => (t.top === null ? null : Object.fromEntries((t.top ?? []).map((x) => [piece(x.id), x.logprob])))),
    };
  }

  // the whole answer's log-probabilities (text): the prompt's, scored, then the generated tokens' after the echoed text
  function textLogprobs(c: Choice): unknown {
    const generated = logprobsOf('text', c.tokens, c.scored ? tokenizer.decode(c.prompt).length : 0) as Record<string, unknown[]>;
    if (!c.scored) return generated;
    const prompt = logprobsOf('text', c.scored, 0) as Record<string, unknown[]>;
    return Object.fromEntries(Object.keys(prompt).map((key) => [key, [...prompt[key], ...generated[key]]]));
  }

  // one choice of a chunk or of a whole answer
  function choiceOf(shape: Shape, whole: boolean, c: Choice, text: string, tokens: readonly Scored[] | null, first: boolean, offset = 0) {
    const logprobs = tokens ? logprobsOf(shape, tokens, offset) : null;
    if (shape === 'text') return { text, index: c.index, logprobs, finish_reason: c.finish };
    if (whole) return { index: c.index, message: { role: 'assistant', content: text }, logprobs, finish_reason: c.finish };
    const delta = { ...(first ? { role: 'assistant' } : {}), ...(text ? { content: text } : {}) };
    return { index: c.index, delta, logprobs, finish_reason: c.finish };
  }

  // each prompt token's log-probability given those before it (the first has none), outside the batch: in chunks
  // through a cache of its own, the event loop turning between them (generate/score.ts), each chunk no longer than a
  // tick's prefill would be now (engine.prefillBudget: short while streams decode) — one request at a time, in
  // turn with the lab's attention maps and experiments, so that concurrent requests hold one prompt's cache and one
  // chunk's logits, not one each (the batch's are budgeted), and too many waiting get a 503
  function scoreInTurn(prompts: readonly number[][], top: number, signal: AbortSignal): Promise<Scored[][]> {
    return ctx.outOfBatch(async () => {
      const all: Scored[][] = [];
      for (const prompt of prompts) {
        all.push(await scoreTokens(model, prompt, { top, signal, chunk: () => engine.prefillBudget() }));
        metrics.promptTokensScored += prompt.length;
      }
      return all;
    });
  }

  return async function answer(res: ServerResponse, headers: Record<string, string>, prompts: number[][], r: SamplingRequest,
    shape: Shape, echo: boolean): Promise<void> {
    for (const ids of prompts) {
      if (ids.length + r.maxTokens > model.info.maxPositions) {
        const why = `prompt (${ids.length} tokens) + max_tokens (${r.maxTokens}) exceeds the model's context of ${model.info.maxPositions}`;
        throw new HttpError(400, why, 'max_tokens');
      }
    }
    const t0 = performance.now();
    const abort = new AbortController();
    res.on('close', () => { if (!res.writableFinished) abort.abort(); }); // the client went away: stop generating
    let scored: (Scored[] | null)[];
    try {
      scored = echo && r.logprobs !== null ? await scoreInTurn(prompts, r.logprobs, abort.signal) : prompts.map(() => null);
    } catch (e) {
      if (abort.signal.aborted) return; // the client left while its prompt waited or was scored
      throw e;
    }
    const choices: Choice[] = prompts.flatMap((prompt, p) => Array.from({ length: r.n }, (_, i) =>
      ({ index: p * r.n + i, prompt, text: echo ? tokenizer.decode(prompt) : '', tokens: [], finish: null, scored: scored[p] })));
    // max_tokens 0 (echo): nothing to generate, no sequence
    const sequences = r.maxTokens === 0 ? [] : await openAll(choices, r, abort.signal);
    if (!sequences) return; // the client left while waiting
    ctx.inFlight.add(abort);
    try {
      const id = `${shape === 'text' ? 'cmpl' : 'chatcmpl'}-${++served}`;
      const created = Math.floor(Date.now() / 1000);
      const object = shape === 'text' ? 'text_completion' : r.stream ? 'chat.completion.chunk' : 'chat.completion';
      const event = (body: object) => res.write(`data: ${JSON.stringify({ id, object, created, model: modelName, ...body })}\n\n`);
      const send = (choice: unknown) => event({ choices: [choice] });
      if (r.stream) res.writeHead(200, { ...SSE, ...headers });
      const logged = { prompt_tokens: prompts.reduce((s, p) => s + p.length, 0), completion_tokens: 0, ttft_ms: 0 };
      ctx.usageOf.set(res, logged);
      metrics.promptTokens += logged.prompt_tokens;
      let last = 0;
      const onToken = () => {
        const now = performance.now();
        if (last === 0) { metrics.ttft.observe((now - t0) / 1000); logged.ttft_ms = Math.round(now - t0); }
        else metrics.interToken.observe((now - last) / 1000);
        last = now;
        logged.completion_tokens++;
        ctx.stats.tokensGenerated++;
        metrics.generationTokens++;
      };
      // the echoed prompt first, with its log-probabilities when asked for
      if (r.stream && echo) for (const c of choices) send(choiceOf(shape, false, c, c.text, c.scored, true));
      const stream = r.stream ? send : null;
      if (r.maxTokens === 0) for (const c of choices) { c.finish = 'length'; stream?.(choiceOf(shape, false, c, '', null, false)); }
      else await Promise.all(choices.map((c, i) => generateChoice(c, sequences[i], r, abort.signal, onToken, shape, stream)));
      if (abort.signal.aborted) { ctx.stats.aborted++; metrics.aborted++; return; }
      ctx.stats.completions++;
      const usage = { prompt_tokens: logged.prompt_tokens, completion_tokens: logged.completion_tokens,
        total_tokens: logged.prompt_tokens + logged.completion_tokens };
      if (r.stream) {
        if (r.includeUsage) event({ choices: [], usage });
        res.end('data: [DONE]\n\n');
        return;
      }
      const whole = choices.map((c) => (shape === 'text' && r.logprobs !== null
        ? { ...choiceOf(shape, true, c, c.text, null, false), logprobs: textLogprobs(c) }
        : choiceOf(shape, true, c, c.text, r.logprobs === null ? null : c.tokens, false, echo ? tokenizer.decode(c.prompt).length : 0)));
      ctx.sendJson(res, 200, { id, object, created, model: modelName, choices: whole, usage }, headers);
    } finally {
      for (const s of sequences) s.release(); // at once, also when the client left or generation failed: blocks go back
      ctx.inFlight.delete(abort);
    }
  };

  // a sequence for every choice, or none: a refusal releases those already open
  async function openAll(choices: Choice[], r: SamplingRequest, signal: AbortSignal): Promise<EngineSequence[] | null> {
    const opened = await Promise.allSettled(choices.map(async (c) => engine.open(c.prompt, r.maxTokens, signal)));
    const failed = opened.find((o) => o.status === 'rejected') as PromiseRejectedResult | undefined;
    if (!failed) return opened.map((o) => (o as PromiseFulfilledResult<EngineSequence>).value);
    for (const o of opened) if (o.status === 'fulfilled') o.value.release();
    if (signal.aborted) return null;
    const e = failed.reason as Error;
    if (e instanceof EngineBusyError) {
      throw Object.assign(new HttpError(503, e.message, null, 'server_error', 'server_busy'), { retryAfter: 1 });
    }
    throw new HttpError(400, e.message, 'max_tokens');
  }

  // one choice: its tokens streamed (send) or collected into c
  async function generateChoice(c: Choice, sequence: EngineSequence, r: SamplingRequest, gone: AbortSignal, onToken: () => void,
    shape: Shape, send: ((choice: unknown) => void) | null): Promise<void> {
    const it = generateStream(model, tokenizer, c.prompt, {
      maxTokens: r.maxTokens, temperature: r.temperature, topP: r.topP, seed: (r.seed + c.index) >>> 0, stopStrings: r.stop,
      greedy: r.temperature === 0, presencePenalty: r.presencePenalty, frequencyPenalty: r.frequencyPenalty, logitBias: r.logitBias,
      logprobs: r.logprobs ?? undefined, sequence,
    });
    let first = !c.text; // an echo (sent already) was the first chunk
    let held: GeneratedToken[] = []; // tokens whose text is still held back (a possible stop string, half a character)
    let offset = c.text.length;
    let result = await it.next();
    for (; !result.done; result = await it.next()) {
      onToken();
      if (gone.aborted) { await it.return(undefined as never); return; }
      const t = result.value;
      c.tokens.push(t);
      held.push(t);
      if (!send || !t.text) continue;
      send(choiceOf(shape, false, c, t.text, r.logprobs === null ? null : held, first, offset));
      offset += t.text.length;
      [first, held] = [false, []];
    }
    c.finish = result.value.finishReason === 'stop' ? 'stop' : 'length';
    c.text += result.value.text;
    if (send) send(choiceOf(shape, false, c, '', r.logprobs === null || held.length === 0 ? null : held, first, offset));
  }
}
