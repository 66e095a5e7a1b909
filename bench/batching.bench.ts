// `npm run bench:batching`: continuous batching over the paged cache, replaying a workload of requests with mixed
// prompt and output lengths that arrive over time, side by side with one-at-a-time generation. Reports throughput
// (generated tokens/s), the paged pool's memory waste ((allocated − used) / allocated, averaged over steps) and the
// waste a server would have if it preallocated each request's maximum length (prompt + max_tokens), or the whole
// model context. Model: the embedded qkv-tiny. Options: --json, --requests N
import { cpus } from 'node:os';
import { ContiguousKVCache, generate, Rng, type CausalLM } from '../src/index.js';
import { ContinuousBatcher, type BatchRequest } from '../src/generate/scheduler.js';
import { DEFAULT_MODEL_DIR, loadCheckpoint } from '../src/node/index.js';

const args = process.argv.slice(2);
const N = Number(args[args.indexOf('--requests') + 1]) || 32;
const model = loadCheckpoint(DEFAULT_MODEL_DIR, { tokenizer: false }).model as CausalLM;
const rng = new Rng(42);
const int = (lo: number, hi: number) => lo + Math.floor(rng.uniform() * (hi - lo + 1));
// the workload: prompts of 16–128 tokens, outputs of 16–96 tokens, one new request every 2 steps
const workload: (BatchRequest & { arrival: number })[] = Array.from({ length: N }, (_, id) => ({
  id, arrival: 2 * id, prompt: Array.from({ length: int(16, 128) }, () => int(1, 4095)), maxTokens: int(16, 96),
  temperature: 0.8, seed: id, stopTokens: [],
}));
const totalNew = workload.reduce((s, r) => s + r.maxTokens, 0);

function replay(blockSize: number) {
  const batcher = new ContinuousBatcher(model, { blockSize, maxBlocks: 4096, maxBatch: 64 });
  let next = 0;
  let preallocSum = 0;
  let preallocCtxSum = 0;
  let samples = 0;
  const t0 = performance.now();
  while (next < workload.length || batcher.busy) {
    while (next < workload.length && workload[next].arrival <= batcher.stepCount) batcher.submit(workload[next++]);
    batcher.step();
    // what preallocation would hold for the same running set: prompt + max_tokens (or the full context) each
    const used = batcher.cache.sequences().reduce((s, id) => s + batcher.cache.seqLength(id), 0);
    const maxLen = batcher.cache.sequences().reduce((s, id) => s + workload[id].prompt.length + workload[id].maxTokens, 0);
    if (maxLen > 0) { preallocSum += (maxLen - used) / maxLen; preallocCtxSum += (batcher.cache.sequences().length * model.info.maxPositions - used) / (batcher.cache.sequences().length * model.info.maxPositions); samples++; }
  }
  const ms = performance.now() - t0;
  const generated = batcher.finished.reduce((s, r) => s + r.ids.length, 0);
  const waste = batcher.wasteSamples.reduce((a, b) => a + b, 0) / batcher.wasteSamples.length;
  return { blockSize, ms, generated, tokPerS: generated / (ms / 1000), steps: batcher.stepCount, waste, preallocWaste: preallocSum / samples, preallocContextWaste: preallocCtxSum / samples, peakBlocks: batcher.peakBlocks };
}

async function sequential() {
  const t0 = performance.now();
  let generated = 0;
  for (const r of workload) {
    const g = await generate(model, null, r.prompt, { maxTokens: r.maxTokens, temperature: 0.8, seed: r.id, stopTokens: [], cache: new ContiguousKVCache(model.info.numLayers) });
    generated += g.ids.length;
  }
  const ms = performance.now() - t0;
  return { ms, generated, tokPerS: generated / (ms / 1000) };
}

const seq = await sequential();
const rows = [16, 8, 4].map(replay);
if (args.includes('--json')) {
  console.log(JSON.stringify({ date: new Date().toISOString(), requests: N, totalNew, sequential: seq, continuous: rows }, null, 2));
} else {
  console.log(`continuous batching on qkv-tiny — ${N} requests (prompts 16–128, outputs 16–96 tokens, one every 2 steps); ${cpus()[0]?.model}, 1 thread\n`);
  console.log(`one at a time (contiguous cache): ${seq.generated} tokens in ${(seq.ms / 1000).toFixed(1)} s = ${seq.tokPerS.toFixed(1)} tok/s\n`);
  console.log('block | steps | time s | tok/s | vs one-at-a-time | paged waste | prealloc prompt+max waste | prealloc 1024-ctx waste | peak blocks');
  console.log('------|-------|--------|-------|------------------|-------------|---------------------------|-------------------------|------------');
  for (const r of rows) {
    console.log(`${String(r.blockSize).padStart(5)} | ${String(r.steps).padStart(5)} | ${(r.ms / 1000).toFixed(1).padStart(6)} | ${r.tokPerS.toFixed(1).padStart(5)} | ${(r.tokPerS / seq.tokPerS).toFixed(2).padStart(15)}× | ${(100 * r.waste).toFixed(1).padStart(10)}% | ${(100 * r.preallocWaste).toFixed(1).padStart(24)}% | ${(100 * r.preallocContextWaste).toFixed(1).padStart(22)}% | ${String(r.peakBlocks).padStart(11)}`);
  }
}
