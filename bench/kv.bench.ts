// `npm run bench:kv`: every KV-cache strategy on qkv-tiny against the contiguous baseline, teacher-forced along the
// baseline's greedy path of 256 tokens: bytes held at the end, next-token agreement, max |Δlogit|, and time.
// Options: --json, --tokens N
import { cpus } from 'node:os';
import { ContiguousKVCache, createCache, humanBytes, type CacheKind, type CausalLM, type KVCache } from '../src/index.js';
import { DEFAULT_MODEL_DIR, loadCheckpoint } from '../src/node/index.js';

const args = process.argv.slice(2);
const N = Number(args[args.indexOf('--tokens') + 1]) || 256;
const ckpt = loadCheckpoint(DEFAULT_MODEL_DIR);
const model = ckpt.model as CausalLM;
const prompt = ckpt.tokenizer!.encode('The Zen of Python');
const argmax = (x: Float32Array) => { let b = 0; for (let v = 1; v < x.length; v++) if (x[v] > x[b]) b = v; return b; };

/** Logits at every step when feeding `path` through `cache`. */
function run(cache: KVCache, path: number[] | null): { logits: Float32Array[]; path: number[]; ms: number } {
  const t0 = performance.now();
  const out: Float32Array[] = [];
  const ids: number[] = [];
  let l = model.forward([prompt], { cache, lastOnly: true }).logits.toFloat32();
  for (let n = 0; n < N; n++) {
    out.push(l);
    const next = path ? path[n] : argmax(l);
    ids.push(next);
    l = model.forward([[next]], { cache, lastOnly: true }).logits.toFloat32();
  }
  return { logits: out, path: ids, ms: performance.now() - t0 };
}

const base = run(new ContiguousKVCache(model.info.numLayers), null);
const configs: [string, CacheKind, object][] = [
  ['contiguous', 'contiguous', {}], ['paged (block 16)', 'paged', { blockSize: 16 }], ['int8 (per token·head)', 'int8', {}],
  ['sliding window 128', 'sliding', { window: 128 }], ['sinks 4 + window 124', 'sinks', { sinks: 4, window: 124 }],
];
const rows = configs.map(([name, kind, o]) => {
  const cache = createCache(kind, model.info.numLayers, o);
  const r = run(cache, base.path);
  let agree = 0;
  let maxErr = 0;
  r.logits.forEach((l, n) => {
    if (argmax(l) === base.path[n]) agree++;
    for (let v = 0; v < l.length; v++) maxErr = Math.max(maxErr, Math.abs(l[v] - base.logits[n][v]));
  });
  // bytes of the tokens actually held: paged/int8 report it; the contiguous cache holds every token in float32
  const { numLayers, numKvHeads, headDim } = model.info;
  const used = 'usage' in cache ? (cache as unknown as { usage(): { usedBytes: number } }).usage().usedBytes
    : kind === 'contiguous' ? (prompt.length + N) * 2 * numLayers * numKvHeads * headDim * 4 : cache.bytes();
  return { name, bytes: cache.bytes(), usedBytes: used, agreement: agree / N, maxLogitError: maxErr, ms: r.ms };
});
if (args.includes('--json')) {
  console.log(JSON.stringify({ date: new Date().toISOString(), tokens: N, promptTokens: prompt.length, rows }, null, 2));
} else {
  console.log(`KV-cache strategies on qkv-tiny — ${prompt.length}-token prompt + ${N} teacher-forced greedy steps; ${cpus()[0]?.model}, 1 thread\n`);
  console.log('cache                    | held (allocated) | holding tokens | next-token agreement | max |Δlogit| | time s');
  console.log('-------------------------|------------------|----------------|----------------------|-------------|-------');
  for (const r of rows) {
    console.log(`${r.name.padEnd(24)} | ${humanBytes(r.bytes).padStart(16)} | ${humanBytes(r.usedBytes).padStart(14)} | ${(100 * r.agreement).toFixed(1).padStart(19)}% | ${r.maxLogitError.toExponential(2).padStart(11)} | ${(r.ms / 1000).toFixed(1).padStart(6)}`);
  }
}
