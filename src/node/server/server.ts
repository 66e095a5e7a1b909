// The qkv HTTP server: the Attention Lab and an OpenAI-compatible API over one loaded model, on 127.0.0.1 by default.
//   GET  /                     the lab (lab/index.html and its modules, all served here)
//   GET  /v1/models[/{id}]     the loaded model
//   POST /v1/completions       prompt, max_tokens, temperature, top_p, stop, seed, penalties, stream (server-sent events)
//   POST /v1/chat/completions  messages through the checkpoint's chat template (generate/chat.ts), the same fields
//   POST /api/attention        a prompt's tokens, every layer × head attention map, and per-head metrics (JSON)
//   POST /api/experiment       one of the lab's experiments, run here when the page cannot
//   GET  /api/info             the model's facts and the KV-cache table, for the calculators
//   GET  /health, /ready       liveness, and readiness (503 while shutting down)
//   GET  /metrics              Prometheus metrics (metrics.ts)
// Generations run on the batch engine (generate/engine.ts): every request joins the running batch, on a paged KV cache
// of `kvMemoryBytes` with prompt-prefix sharing; past `maxBatch` running and `maxQueue` waiting, 503 with Retry-After.
// A client that disconnects stops its generation and frees its blocks. The lab's attention maps and experiments run
// one at a time. Bad requests get 4xx JSON errors; nothing a client sends crashes the server. Host, Origin, content
// type, the API key and the connections themselves are checked first (guard.ts).
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { KV_PRESETS, kvTable } from '../../cache/memory.js';
import { BatchEngine } from '../../generate/engine.js';
import { EXPERIMENTS } from '../../inspect/experiments.js';
import { headMetrics } from '../../inspect/metrics.js';
import type { CausalLM } from '../../models/model.js';
import type { Checkpoint } from '../checkpoint.js';
import { NumericsError, QkvError } from '../../errors.js';
import {
  checkHost, checkJsonBody, checkOrigin, closeAfterResponse, corsHeaders, limitConnections, requestUrl, TIMEOUTS, type GuardOptions,
} from './guard.js';
import { answerer } from './completions.js';
import { TextSandbox } from '../text-sandbox.js';
import { ServerMetrics } from './metrics.js';
import { staticFile } from './static.js';
import {
  chatRequest, checkModel, completionRequest, DEFAULT_LIMITS, HttpError, parseJson, promptOf, type Limits,
} from './validate.js';

export interface ServerOptions {
  host?: string; port?: number; limits?: Partial<Limits>; modelName?: string;
  /** Host names to accept besides localhost, IP literals and `host` (see guard.ts). */
  allowedHosts?: readonly string[];
  /** Browser origins allowed to call the API (CORS); none by default. */
  corsOrigins?: readonly string[];
  /** Open connections at most (default 512, well inside the common 1,024-descriptor limit). */
  maxConnections?: number;
  /** Generations decoded together (default 16; 1 turns batching off). */
  maxBatch?: number;
  /** Bytes of the paged KV cache shared by all generations (default 256 MiB). */
  kvMemoryBytes?: number;
  /** The KV pool's storage on the CPU: float32 (default), float16 (2× the tokens in kvMemoryBytes) or int8 (~4×). */
  kvDtype?: 'float32' | 'float16' | 'int8';
  /** While generations stream, how long one piece of a new prompt's prefill may hold them, in ms (default 500;
   *  Infinity: whole 256-token chunks). Echoed prompts are scored in pieces of the same size. */
  maxStallMs?: number;
  /** Required as `Authorization: Bearer <key>` on /v1 and /api routes when set. */
  apiKey?: string;
  /** Generate on this WebGPU device (weights and the KV pool on the GPU); default the CPU. */
  gpu?: GPUDevice;
  /** Receives one JSON line per request (method, path, status, tokens, timings). */
  log?: (line: string) => void;
}

/** Counters a server keeps (tests read them to see that a disconnect stopped generation). */
export interface ServerStats { completions: number; tokensGenerated: number; aborted: number }

/** What createQkvServer returns besides the http.Server. */
export interface QkvServerExtras {
  stats: ServerStats;
  engine: BatchEngine;
  /** Stops taking requests (/ready answers 503), lets running generations finish for up to `graceMs`, then cuts them. */
  shutdown(graceMs?: number): Promise<void>;
}

/** KV blocks of `blockSize` tokens that fit in `bytes` of keys and values for `model`: float32, or int8 with an f32
 *  scale per token and head. */
export function kvBlocksFor(model: CausalLM, bytes: number, blockSize = 16, dtype: 'float32' | 'float16' | 'int8' = 'float32'): number {
  const { numLayers, numKvHeads, headDim } = model.info;
  const perHead = dtype === 'int8' ? headDim + 4 : (dtype === 'float16' ? 2 : 4) * headDim; // one key or value row of one head
  return Math.max(1, Math.floor(bytes / (blockSize * numLayers * numKvHeads * 2 * perHead)));
}

// On the CPU the KV pool lives in the kernels' WebAssembly memory (4 GiB at most, wasm32) beside the weights: a cache
// that cannot fit is refused at start, not by every request (each had failed its first store)
function checkKvMemory(bytes: number, weightBytes: number, gpu: boolean): void {
  const room = 4 * 2 ** 30 - weightBytes;
  if (!gpu && bytes > room) {
    const [gib, w] = [(b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`, `${(weightBytes / 2 ** 20).toFixed(1)} MiB`];
    throw new QkvError(`kvMemoryBytes (--kv-memory) is ${gib(bytes)}; on the CPU the KV cache shares the kernels' 4 GiB of ` +
      `WebAssembly memory with the weights (${w} read): at most ${gib(room)}`);
  }
}

/** One request at a time on the model outside the batch (attention maps, experiments, echoed prompts' scores); a bounded line. */
export class ModelQueue {
  private tail: Promise<void> = Promise.resolve();
  #waiting = 0;
  #running = 0;
  constructor(private readonly max: number) {}
  /** Requests waiting for their turn, and running (0 or 1): the metrics read them. */
  get waiting(): number { return this.#waiting; }
  get running(): number { return this.#running; }
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.#waiting >= this.max) {
      const why = `the server is busy: ${this.#waiting} requests are already waiting`;
      const busy = new HttpError(503, why, null, 'server_error', 'server_busy');
      throw Object.assign(busy, { retryAfter: 1 }); // as the batch's full waiting line: when to come back, in seconds
    }
    this.#waiting++;
    const before = this.tail;
    let release!: () => void;
    this.tail = new Promise((r) => { release = r; });
    await before;
    this.#waiting--;
    this.#running++;
    try { return await job(); } finally { this.#running--; release(); }
  }
}

/** The request body as text, at most `limit` bytes: a larger one (declared or sent) is refused with 413 at once. */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const tooLarge = (what: string) =>
    new HttpError(413, `request body ${what}; the limit is ${limit} bytes`, null, 'invalid_request_error', 'body_too_large');
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) { reject(tooLarge(`is ${declared} bytes`)); return; }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= limit) { chunks.push(c); return; }
      req.off('data', onData);
      req.pause(); // the error answer closes the connection (closeAfterResponse)
      reject(tooLarge('exceeds the limit'));
    };
    req.on('data', onData);
    req.on('end', () => { if (size <= limit) resolve(Buffer.concat(chunks).toString('utf8')); });
    req.on('error', reject);
    // a client that hangs up (or is timed out) mid-body: settled, not left pending (after 'end' this does nothing)
    req.on('close', () => reject(new HttpError(400, 'the connection closed before the whole body arrived')));
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) { res.end(); return; }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers,
  });
  res.end(text);
}

/** An error in OpenAI's shape; a stream that already started gets it as its last event. Never throws. */
function sendError(req: IncomingMessage, res: ServerResponse, e: unknown, headers: Record<string, string>): void {
  const http = e instanceof HttpError ? e : null;
  const qkv = e instanceof QkvError;
  const status = http?.status ?? (qkv && !(e instanceof NumericsError) ? 400 : 500);
  const error = {
    message: e instanceof Error ? e.message : String(e), type: http?.type ?? (status < 500 ? 'invalid_request_error' : 'server_error'),
    param: http?.param ?? null, code: http?.code ?? null,
  };
  if (res.headersSent) {
    if (!res.writableEnded && !res.destroyed) res.end(`data: ${JSON.stringify({ error })}\n\n`);
    return;
  }
  if (status === 413) closeAfterResponse(req, res);
  const retry = (e as { retryAfter?: number }).retryAfter; // busy: when to come back, in seconds
  sendJson(res, status, { error }, retry ? { ...headers, 'retry-after': String(retry) } : headers);
}

/** Creates (not yet listening) the server for a loaded checkpoint. */
export function createQkvServer(ckpt: Checkpoint, o: ServerOptions = {}): Server & QkvServerExtras {
  const limits: Limits = { ...DEFAULT_LIMITS, ...o.limits };
  const guard: GuardOptions = { host: o.host ?? '127.0.0.1', allowedHosts: o.allowedHosts, corsOrigins: o.corsOrigins };
  const queue = new ModelQueue(limits.maxQueue);
  const modelName = o.modelName ?? ckpt.dir.split('/').filter(Boolean).pop() ?? 'model';
  if (ckpt.model.kind !== 'causal-lm' || !ckpt.tokenizer) throw new QkvError(`qkv serve needs a causal language model with a tokenizer; ${ckpt.dir} has ${ckpt.config.architectures?.[0]}${ckpt.tokenizer ? '' : ' and no tokenizer.json'}`);
  const model = ckpt.model as CausalLM;
  const tokenizer = ckpt.tokenizer;
  const stats: ServerStats = { completions: 0, tokensGenerated: 0, aborted: 0 };
  const metrics = new ServerMetrics();
  const usageOf = new WeakMap<ServerResponse, Record<string, number>>(); // a generation's tokens and timings, for its log line
  const kvMemoryBytes = o.kvMemoryBytes ?? 256 * 2 ** 20;
  checkKvMemory(kvMemoryBytes, ckpt.bytes, o.gpu !== undefined);
  const engine = new BatchEngine(model, {
    kvBlocks: kvBlocksFor(model, kvMemoryBytes, 16, o.kvDtype), maxBatch: o.maxBatch ?? 16,
    maxWaiting: limits.maxQueue, onDecode: (n) => metrics.batch.observe(n), gpu: o.gpu, kvDtype: o.kvDtype,
    maxStallMs: o.maxStallMs,
  });
  let draining = false;
  const inFlight = new Set<AbortController>();

  const sandbox = new TextSandbox(ckpt.dir, tokenizer); // the tokenizer and chat template, in a worker (node/text-sandbox.ts)
  const encode = async (prompt: string, param: string) => {
    try {
      return await sandbox.encode(prompt);
    } catch (e) {
      throw new HttpError(400, (e as Error).message, param);
    }
  };
  const tokensOf = async (prompt: string) => {
    const ids = await encode(prompt, 'prompt');
    if (ids.length > limits.maxAttentionTokens) throw new HttpError(400, `'prompt' is ${ids.length} tokens; the limit here is ${limits.maxAttentionTokens}`, 'prompt');
    return ids;
  };
  const body = async (req: IncomingMessage) => parseJson(await readBody(req, limits.maxBodyBytes));

  const outOfBatch = <T>(job: () => Promise<T>) => queue.run(job);
  const answer = answerer({ model, tokenizer, modelName, engine, metrics, stats, usageOf, inFlight, sendJson, outOfBatch });

  async function completions(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>): Promise<void> {
    const b = await body(req);
    checkModel(b, modelName);
    const r = completionRequest(b, limits, model.info.vocabSize);
    const prompts = await Promise.all(r.prompts.map((p) => (typeof p === 'string' ? encode(p, 'prompt') : p)));
    if (prompts.some((ids) => ids.length === 0)) throw new HttpError(400, "'prompt' must not be empty (no tokens)", 'prompt');
    return answer(res, headers, prompts, r, 'text', r.echo);
  }

  async function chatCompletions(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>): Promise<void> {
    const b = await body(req);
    checkModel(b, modelName);
    const r = chatRequest(b, limits, model.info.vocabSize);
    let ids: number[];
    try {
      ids = await sandbox.chat(r.messages); // the checkpoint's chat template (or the plain one)
    } catch (e) {
      throw new HttpError(400, (e as Error).message, 'messages');
    }
    return answer(res, headers, [ids], r, 'chat', false);
  }

  // vLLM's /tokenize and /detokenize: { prompt } → { tokens, count, max_model_len }; { tokens } → { prompt }
  async function tokenize(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>): Promise<void> {
    const b = await body(req);
    checkModel(b, modelName);
    const tokens = await encode(promptOf(b, limits), 'prompt');
    sendJson(res, 200, { tokens, count: tokens.length, max_model_len: model.info.maxPositions }, headers);
  }

  async function detokenize(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>): Promise<void> {
    const b = await body(req);
    checkModel(b, modelName);
    const t = b.tokens;
    const V = model.info.vocabSize;
    if (!Array.isArray(t) || t.length > limits.maxPromptChars || !t.every((i) => Number.isInteger(i) && i >= 0 && i < V)) {
      throw new HttpError(400, `'tokens' must be a list of at most ${limits.maxPromptChars} token ids in [0, ${V})`, 'tokens');
    }
    sendJson(res, 200, { prompt: tokenizer.decode(t as number[]) }, headers);
  }

  async function attentionMaps(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>): Promise<void> {
    const prompt = promptOf(await body(req), limits);
    const ids = await tokensOf(prompt);
    await queue.run(async () => {
      const { attentions } = model.forward([ids], { outputAttentions: true });
      const tokens = tokenizer.pieces(ids); // a character split over byte-level tokens shows whole, once
      const round = (x: number) => Math.round(x * 1e4) / 1e4;
      const maps = attentions!.map((a) => {
        const [, H, T, S] = a.shape;
        const w = a.toFloat32();
        return Array.from({ length: H }, (_, h) => Array.from({ length: T }, (_, i) => Array.from(w.subarray((h * T + i) * S, (h * T + i + 1) * S), round)));
      });
      const metrics = attentions!.flatMap((a, l) => headMetrics(a, l, tokens));
      sendJson(res, 200, { ids, tokens, layers: maps.length, heads: maps[0]?.length ?? 0, maps, metrics }, headers);
    });
  }

  async function experiment(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>): Promise<void> {
    const b = await body(req);
    // own keys only: 'constructor' or '__proto__' must not reach Object.prototype
    const run = typeof b.id === 'string' && Object.hasOwn(EXPERIMENTS, b.id) ? EXPERIMENTS[b.id] : undefined;
    if (!run) throw new HttpError(400, `'id' must be one of ${Object.keys(EXPERIMENTS).join(', ')}`, 'id');
    const ids = await tokensOf(promptOf(b, limits));
    await queue.run(async () => sendJson(res, 200, run(model, ids), headers));
  }

  function info(res: ServerResponse, headers: Record<string, string>): void {
    const { numLayers, numHeads, numKvHeads, headDim, maxPositions } = model.info;
    const own = { name: modelName, layers: numLayers, heads: numHeads, kvHeads: numKvHeads, headDim, context: maxPositions };
    const { rope_theta, rope_parameters } = ckpt.config as { rope_theta?: number; rope_parameters?: { rope_theta?: number } };
    sendJson(res, 200, { model: modelName, info: model.info, parameters: ckpt.weights.summary().parameters, presets: { [modelName]: own, ...KV_PRESETS },
      kv: kvTable(own, { context: maxPositions, batch: 1, dtype: 'f16' }), config: { rope_theta, rope_parameters } }, headers);
  }

  const API = new Set([
    '/v1/models', `/v1/models/${modelName}`, '/v1/completions', '/v1/chat/completions', '/api/attention', '/api/experiment', '/api/info',
    '/health', '/ready', '/metrics', '/tokenize', '/detokenize',
  ]);
  // the key, when set, guards every route that reaches the model (the lab's pages and the probes stay open)
  const keyBytes = o.apiKey ? Buffer.from(`Bearer ${o.apiKey}`) : null;
  const checkKey = (req: IncomingMessage, path: string) => {
    if (!keyBytes || !(path.startsWith('/v1/') || path.startsWith('/api/') || path === '/tokenize' || path === '/detokenize')) return;
    const got = Buffer.from(String(req.headers.authorization ?? ''));
    if (got.length !== keyBytes.length || !timingSafeEqual(got, keyBytes)) {
      const message = 'a valid API key is required: send Authorization: Bearer <key>';
      throw new HttpError(401, message, null, 'invalid_request_error', 'invalid_api_key');
    }
  };
  const modelObject = { id: modelName, object: 'model', created: 0, owned_by: 'qkv' };
  async function route(req: IncomingMessage, res: ServerResponse, cors: Record<string, string>): Promise<void> {
    const url = requestUrl(req);
    if (req.method === 'OPTIONS' && API.has(url.pathname)) { res.writeHead(204, cors); res.end(); return; }
    checkKey(req, url.pathname);
    if (req.method === 'POST') checkJsonBody(req);
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /health': return sendJson(res, 200, { status: 'ok' }, cors);
      case 'GET /ready': return sendJson(res, draining ? 503 : 200, { status: draining ? 'shutting down' : 'ready' }, cors);
      case 'GET /metrics': {
        const text = metrics.text(engine.stats(), queue);
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', 'cache-control': 'no-store', ...cors });
        res.end(text);
        return;
      }
      case 'GET /v1/models': return sendJson(res, 200, { object: 'list', data: [modelObject] }, cors);
      case `GET /v1/models/${modelName}`: return sendJson(res, 200, modelObject, cors);
      case 'POST /v1/completions':
      case 'POST /v1/chat/completions':
        if (draining) throw new HttpError(503, 'the server is shutting down', null, 'server_error', 'shutting_down');
    }
    switch (`${req.method} ${url.pathname}`) {
      case 'POST /v1/completions': return completions(req, res, cors);
      case 'POST /v1/chat/completions': return chatCompletions(req, res, cors);
      case 'POST /tokenize': return tokenize(req, res, cors);
      case 'POST /detokenize': return detokenize(req, res, cors);
      case 'POST /api/attention': return attentionMaps(req, res, cors);
      case 'POST /api/experiment': return experiment(req, res, cors);
      case 'GET /api/info': return info(res, cors);
    }
    if (API.has(url.pathname)) throw new HttpError(405, `${req.method} is not allowed on ${url.pathname}`);
    if (req.method === 'GET' && url.pathname.startsWith('/v1/models/')) {
      const message = `The model '${url.pathname.slice(11, 111)}' does not exist; this server has '${modelName}'`;
      throw new HttpError(404, message, 'model', 'invalid_request_error', 'model_not_found');
    }
    const path = url.pathname === '/favicon.ico' ? '/lab/favicon.svg' : url.pathname;
    const file = req.method === 'GET' || req.method === 'HEAD' ? staticFile(path, ckpt.dir, url.searchParams.get('find')) : null;
    if (!file) throw new HttpError(404, `no such route: ${String(req.method).slice(0, 20)} ${url.pathname.slice(0, 100)}`, null, 'not_found');
    res.writeHead(200, {
      'content-type': file.type, 'cache-control': 'no-cache', 'content-length': Buffer.byteLength(file.body),
      // the lab makes no request to anything but this server
      'content-security-policy': "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' data:; style-src 'self'",
      // cross-origin isolation: the page may then share WebAssembly memory with Web Workers (the lab's threads)
      'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp',
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  }

  // one JSON line per request, and the request counter, when its answer is done (or its client has gone)
  const account = (req: IncomingMessage, res: ServerResponse, t0: number) => {
    let path = '(not a path)';
    try { path = requestUrl(req).pathname; } catch { /* the guard answered 400 */ }
    const endpoint = API.has(path) ? path : path.startsWith('/v1/') || path.startsWith('/api/') ? 'other' : 'static';
    const status = res.writableFinished ? res.statusCode : 499; // 499: the client closed the connection first
    metrics.request(endpoint, status);
    metrics.duration.observe((performance.now() - t0) / 1000);
    o.log?.(JSON.stringify({
      time: new Date().toISOString(), method: req.method, path: path.slice(0, 200), status, ms: Math.round(performance.now() - t0),
      ...usageOf.get(res),
    }));
  };

  // every request goes through one guard: whatever it sends, the answer is an HTTP status, never a crash
  const server = createServer(TIMEOUTS, (req, res) => {
    let cors: Record<string, string> = {};
    const t0 = performance.now();
    res.once('close', () => account(req, res, t0));
    res.on('error', () => {}); // a client that hung up mid-answer is not the server's failure
    Promise.resolve().then(() => {
      checkHost(req, guard);
      cors = corsHeaders(checkOrigin(req, guard));
      return route(req, res, cors);
    }).catch((e: unknown) => sendError(req, res, e, cors));
  });
  limitConnections(server, o.maxConnections ?? 512);
  server.on('listening', () => sandbox.warm()); // the first request does not wait for the worker to build its tokenizer
  server.on('close', () => sandbox.close());
  // shutting down: /ready says so and new generations are refused; running ones get `graceMs` to finish, then are cut
  const shutdown = async (graceMs = 10_000) => {
    draining = true;
    server.close();
    const until = Date.now() + graceMs;
    while (inFlight.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    for (const a of inFlight) a.abort();
    server.closeAllConnections();
  };
  return Object.assign(server, { stats, engine, shutdown });
}

/** Starts listening; resolves with the URL. */
export function listen(server: Server, o: ServerOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    // the address taken, not ours to take or not there: say which and what to change
    server.once('error', (e: NodeJS.ErrnoException) => {
      const where = `${o.host ?? '127.0.0.1'} port ${o.port ?? 8080}`;
      const why = e.code === 'EADDRINUSE' ? `${where} is in use (by another server?); choose another --port`
        : e.code === 'EACCES' ? `${where} needs privileges this process lacks; choose a port ≥ 1024`
        : e.code === 'ENOTFOUND' || e.code === 'EADDRNOTAVAIL' ? `no address of this machine is '${o.host}'; check --host`
        : null;
      reject(why ? new QkvError(`serve: ${why} (${e.code})`) : e);
    });
    server.listen(o.port ?? 8080, o.host ?? '127.0.0.1', () => {
      const a = server.address();
      const port = typeof a === 'object' && a ? a.port : o.port;
      resolve(`http://${o.host ?? '127.0.0.1'}:${port}/`);
    });
  });
}
