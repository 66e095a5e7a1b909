// One engine generating with one model in a fresh process, so its peak RSS is its own (`npm run bench:generate` runs it):
//   node dist/bench/generate-child.js ENGINE PATH WEIGHTS KV THREADS PROMPT NEW RUNS WARMUP VOCAB
// ENGINE qkv (PATH a checkpoint directory; WEIGHTS stored | int8 | ...; KV its cache's storage, float16 or float32) or
// llama.cpp (PATH a GGUF file; its cache is f16, node-llama-cpp's default, whatever KV says). Greedy, KV cache,
// token ids in (the same prompt for both: (31 i + 7) mod VOCAB), after a warm-up (WARMUP tokens after a short prompt, then a
// run of the measured prompt). Prints one JSON line:
//   { prefill: tok/s per run, decode: tok/s per run, tokens (the first run's), loadMs, baseRss, peakRss (bytes) }
// Each engine's modules are imported only in its own child: node-llama-cpp's alone added 37 MiB to qkv's peak RSS.
import type { CausalLM, WeightFormat } from '../src/index.js';
import { peakRss } from './peak-rss.js';

const [engine, path, weights, kv, ...numbers] = process.argv.slice(2);
const [threads, promptLen, newTokens, runs, warmup, vocab] = numbers.map(Number);
const baseRss = process.memoryUsage().rss;
type Run = (prompt: number[], n: number) => Promise<{ tokens: number[]; prefillMs: number; decodeMs: number }>;

async function qkv(): Promise<Run> {
  const { generate, setKernelThreads } = await import('../src/index.js');
  const { loadCheckpoint } = await import('../src/node/checkpoint.js');
  const { useThreads } = await import('../src/node/threads.js');
  const { useWasmFeatures } = await import('../src/node/wasm-features.js');
  useWasmFeatures();
  if (threads > 1 && (await useThreads(threads)) !== threads) throw new Error(`qkv: ${threads} threads are not available`);
  setKernelThreads(threads);
  const ck = loadCheckpoint(path, { tokenizer: false, weights: weights as WeightFormat, progress: () => {} });
  const model = ck.model as CausalLM;
  return async (prompt, n) => {
    const g = await generate(model, null, prompt, { greedy: true, maxTokens: n, stopTokens: [], kvDtype: kv as 'float16' | 'float32' });
    return { tokens: g.ids, prefillMs: g.timings.prefillMs, decodeMs: g.timings.decodeMs };
  };
}

async function llama(): Promise<Run> {
  const { llamaGenerate, loadGguf } = await import('./llama-cpp.js');
  const model = await loadGguf(path);
  return (prompt, n) => llamaGenerate(model, prompt, n, threads);
}

const t0 = performance.now();
const run = engine === 'qkv' ? await qkv() : await llama();
const loadMs = performance.now() - t0;
const prompt = Array.from({ length: promptLen }, (_, i) => (i * 31 + 7) % vocab);
// warm-up: a short generation, then one of the measured shape (a first 512-token run decoded at half speed: the
// optimising tier, the KV cache's and the kernels' first allocations at this size)
await run(prompt.slice(0, 8), warmup);
await run(prompt, Math.min(warmup, newTokens));
const prefill: number[] = [];
const decode: number[] = [];
let tokens: number[] = [];
for (let r = 0; r < runs; r++) {
  const g = await run(prompt, newTokens);
  if (r === 0) tokens = g.tokens;
  prefill.push(promptLen / (g.prefillMs / 1000));
  decode.push((newTokens - 1) / (g.decodeMs / 1000));
}
const peak = peakRss();
console.log(JSON.stringify({ engine, prefill, decode, tokens, loadMs, baseRss, peakRss: peak }));
process.exit(0);
