// The page side of `npm run bench:browser` (browser.bench.ts serves it, cross-origin isolated, and calls run()): qkv,
// onnxruntime-web and wllama in the same Chromium, on the same inputs, with the same thread count. Everything here
// runs in the page; the engines are imported from the paths the bench's server gives them (/qkv, /ort, /wllama).
// One call measures one engine on one task, so each can run in a fresh browser (its peak memory its own).

type Qkv = typeof import('../../src/index.js');
type Ort = typeof import('onnxruntime-web');
type Median = { median: number; runs: number[] };

/** A task: attention at one size, or generation with one model. */
export type Task =
  | { kind: 'attention'; engine: 'qkv' | 'ort-graph' | 'ort-mha'; L: number; causal: boolean; threads: number; runs: number }
  | { kind: 'generation'; engine: 'qkv' | 'wllama'; model: string; gguf: string; prompt: number; newTokens: number; vocab: number;
      threads: number; runs: number };

const median = (xs: number[]): Median => ({ median: [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)], runs: xs });
const load = <T>(url: string): Promise<T> => import(/* @vite-ignore */ url) as Promise<T>;
const [B, H, D] = [1, 8, 64];

function data(seed: number, n: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) { x = (x * 1664525 + 1013904223) >>> 0; a[i] = x / 2 ** 32 - 0.5; }
  return a;
}

// times f after a warm-up of 5 s (compilation, thread pools, the optimising tier, and qkv's thread chooser's first two
// measurements, which run some calls alone: one at the start, the next once its first hold of 2 s ends, then holds of
// 4 s and more; after a warm-up of 2 s qkv's median at L 512 non-causal spread 12–41 ms, after 5 s 12–16): ms per run
async function time(f: () => Promise<unknown> | unknown, runs: number): Promise<Median> {
  for (const t0 = performance.now(); performance.now() - t0 < 5000;) await f();
  const ms: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    await f();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

async function qkvThreads(qkv: Qkv, threads: number): Promise<number> {
  if (threads <= 1) return 1;
  return qkv.useBrowserThreads('/qkv/kernels/wasm/kernel-worker-browser.js', threads);
}

// attention, fp32, B = 1, H = 8, head_dim 64, L = S: qkv's attention() or onnxruntime-web's graph (MatMul → Softmax →
// MatMul, as bench:cpu builds it) or its fused com.microsoft.MultiHeadAttention, WebAssembly backend with threads
async function attention(t: Extract<Task, { kind: 'attention' }>): Promise<Record<string, unknown>> {
  const n = B * H * t.L * D;
  const [qd, kd, vd] = [data(1, n), data(2, n), data(3, n)];
  if (t.engine === 'qkv') {
    const qkv = await load<Qkv>('/qkv/index.js');
    const threads = await qkvThreads(qkv, t.threads);
    const [q, k, v] = [qd, kd, vd].map((d) => qkv.Tensor.from(d, [B, H, t.L, D]));
    const ms = await time(() => qkv.attention(q, k, v, { causal: t.causal }), t.runs);
    return { ms, threads, variant: qkv.kernelVariant() };
  }
  const ort = await load<Ort>('/ort/ort.wasm.min.mjs');
  const { attentionGraph } = await import('../peers/onnx.js');
  ort.env.wasm.wasmPaths = '/ort/';
  ort.env.wasm.numThreads = t.threads;
  const { bytes, shape, extra } = attentionGraph(t.engine, B, H, t.L, D, t.causal);
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const feeds = { q: new ort.Tensor('float32', qd, shape), k: new ort.Tensor('float32', kd, shape), v: new ort.Tensor('float32', vd, shape),
    ...Object.fromEntries(extra.map((x) => [x.name, new ort.Tensor('float32', x.data, x.shape)])) };
  const ms = await time(() => session.run(feeds), t.runs);
  return { ms, threads: ort.env.wasm.numThreads };
}

// generation: greedy, the same token ids, prefill of `prompt` tokens then `newTokens` decoded; tokens/s of each phase
async function generation(t: Extract<Task, { kind: 'generation' }>): Promise<Record<string, unknown>> {
  const prompt = Array.from({ length: t.prompt }, (_, i) => (i * 31 + 7) % t.vocab);
  const prefill: number[] = [];
  const decode: number[] = [];
  if (t.engine === 'qkv') {
    const qkv = await load<Qkv>('/qkv/index.js');
    const threads = await qkvThreads(qkv, t.threads);
    const [config, weights] = await Promise.all(['config.json', 'model.safetensors'].map((f) => fetch(`/models/${t.model}/${f}`)));
    // read from the response straight into the kernels' memory, tensor by tensor (the file is never held whole)
    const size = Number(weights.headers.get('content-length'));
    const model = await qkv.modelFromStream(await config.json(), weights.body!, size) as import('../../src/index.js').CausalLM;
    const opts = { greedy: true, stopTokens: [], kvDtype: 'float16' as const }; // the KV cache in f16, as wllama's (llama.cpp's default)
    await qkv.generate(model, null, prompt.slice(0, 8), { ...opts, maxTokens: 16 }); // warm-up
    for (let r = 0; r < t.runs; r++) {
      const g = await qkv.generate(model, null, prompt, { ...opts, maxTokens: t.newTokens });
      prefill.push(t.prompt / (g.timings.prefillMs / 1000));
      decode.push((t.newTokens - 1) / (g.timings.decodeMs / 1000));
    }
    return { prefill: median(prefill), decode: median(decode), threads, variant: qkv.kernelVariant() };
  }
  const { Wllama } = await load<{ Wllama: new (p: Record<string, string>) => WllamaLike }>('/wllama/index.js');
  const w = new Wllama({ default: '/wllama/wasm/wllama.wasm' });
  const gguf = await (await fetch(`/models/${t.gguf}`)).blob();
  await w.loadModel([gguf], { n_ctx: t.prompt + t.newTokens + 16, n_batch: 512, n_threads: t.threads });
  // wllama's completions take text: the bench's GGUF files have placeholder tokens `<t{id}>` that llama.cpp matches
  // literally, so this text is exactly these ids (gguf.ts, placeholderVocab); timings are llama.cpp's own
  const text = (ids: number[]) => ids.map((i) => `<t${i}>`).join('');
  const run = (ids: number[], n: number) =>
    w.createCompletion({ prompt: text(ids), max_tokens: n, temperature: 0, ignore_eos: true, cache_prompt: false });
  await run(prompt.slice(0, 8), 16); // warm-up
  for (let r = 0; r < t.runs; r++) {
    const res = await run(prompt, t.newTokens);
    if (res.timings.prompt_n !== t.prompt) throw new Error(`wllama: the prompt became ${res.timings.prompt_n} tokens, not ${t.prompt}`);
    prefill.push(res.timings.prompt_per_second);
    decode.push(res.timings.predicted_per_second);
  }
  return { prefill: median(prefill), decode: median(decode), threads: w.getNumThreads() };
}

/** The part of wllama's API used here (llama.cpp's own timings come back with each completion). */
interface WllamaLike {
  loadModel(blobs: Blob[], params: Record<string, unknown>): Promise<void>;
  createCompletion(o: Record<string, unknown>): Promise<{ timings: { prompt_n: number; prompt_per_second: number; predicted_per_second: number } }>;
  getNumThreads(): number;
}

/** Runs one task in this page. */
export async function run(t: Task): Promise<Record<string, unknown>> {
  if (!crossOriginIsolated) throw new Error('the page is not cross-origin isolated: no SharedArrayBuffer, no threads');
  return t.kind === 'attention' ? attention(t) : generation(t);
}
