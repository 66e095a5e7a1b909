// `npm run bench:generate`: prefill and decode tokens/s and peak memory, qkv against llama.cpp measured in the same run
// (node-llama-cpp's prebuilt CPU build), on the same weights: the embedded qkv-tiny as stored (bf16 against a BF16 GGUF)
// and SmolLM-135M's shape with random weights (f16 against F16, int8 against Q8_0, int4 against Q4_0). This bench
// writes every file itself into a temporary directory: a safetensors checkpoint for qkv and GGUF files for llama.cpp
// from the same tensors (gguf.ts). Prompts of 512 tokens (llama-bench's pp512), the same token ids for both engines,
// greedy decoding with a KV cache. Each measurement runs in a fresh process (peak RSS is its own), qkv and llama.cpp
// alternating, over --rounds rounds of --runs runs each (qkv-tiny: twice the rounds), a model's 1- and 2-thread rows in
// interleaved rounds; figures are medians with [min–max]. "busy neighbour" rows run
// with another process spinning on one core, the case where a second thread can cost more than it brings.
// Options: --json, --rounds N (2), --runs N (2), --quick (qkv-tiny only), --kv f16|f32 (qkv's KV cache: f16, as llama.cpp's)
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type HfConfig, kernelVariant } from '../src/index.js';
import { streamSafetensors } from '../src/node/checkpoint.js';
import { useWasmFeatures } from '../src/node/wasm-features.js';
import { type GgufType, placeholderVocab, vocabFromTokenizerJson, writeLlamaGguf } from './gguf.js';
import { SMOLLM_135M, writeRandomCheckpoint } from './random-llama.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const [rounds, runs] = [option('--rounds', 2), option('--runs', 2)];
// qkv's KV cache storage: f16 by default, as llama.cpp's (node-llama-cpp's default context); --kv f32 for the f32 cache
const kv = args.includes('--kv') && args[args.indexOf('--kv') + 1] === 'f32' ? 'float32' : 'float16';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const child = fileURLToPath(new URL('./generate-child.js', import.meta.url));

/** One comparison: a model in qkv's format and llama.cpp's, at one thread count. */
interface Case {
  model: string; dir: string; weights: string; gguf: string; ggufType: GgufType; threads: number; vocab: number;
  prompt: number; newTokens: number; warmup: number; neighbour?: boolean; weightBytes: number;
  /** Rounds for this case (default --rounds). */
  rounds?: number;
}
interface ChildResult { engine: string; prefill: number[]; decode: number[]; tokens: number[]; loadMs: number; baseRss: number; peakRss: number }

function runChild(engine: 'qkv' | 'llama.cpp', c: Case): Promise<ChildResult> {
  const argv = [child, engine, engine === 'qkv' ? c.dir : c.gguf, c.weights, kv, c.threads, c.prompt, c.newTokens, runs, c.warmup, c.vocab];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, argv.map(String), { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`${engine} ${c.model}: exit ${code}`))));
  });
}

/** A process spinning on one core for as long as `f` runs. */
async function withNeighbour<T>(on: boolean | undefined, f: () => Promise<T>): Promise<T> {
  if (!on) return f();
  const busy = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  try {
    return await f();
  } finally {
    busy.kill('SIGKILL');
  }
}

/** Writes the benchmark's models into `dir`: qkv-tiny's GGUF, the SmolLM-shaped checkpoint and its GGUF files. */
function prepare(dir: string, quick: boolean): Case[] {
  const tinyDir = fileURLToPath(new URL('../../models/qkv-tiny', import.meta.url));
  const tinyConfig = JSON.parse(readFileSync(join(tinyDir, 'config.json'), 'utf8')) as HfConfig;
  const tensors = new Map();
  streamSafetensors(join(tinyDir, 'model.safetensors'), tensors);
  const tinyGguf = join(dir, 'qkv-tiny-bf16.gguf');
  const vocab = vocabFromTokenizerJson(JSON.parse(readFileSync(join(tinyDir, 'tokenizer.json'), 'utf8')), 0, 0);
  const tinyBytes = statSync(join(tinyDir, 'model.safetensors')).size;
  writeLlamaGguf(tinyGguf, tinyConfig, tensors, 'BF16', vocab, 'qkv-tiny');
  const tiny = { model: 'qkv-tiny, bf16', dir: tinyDir, weights: 'stored', gguf: tinyGguf, ggufType: 'BF16' as const, vocab: 4096,
    prompt: 512, newTokens: 64, warmup: 64, weightBytes: tinyBytes,
    // its runs take a second or two, and beside a busy neighbour one run moves ±50% (292–921 tokens/s for one build in
    // one minute): twice the rounds
    rounds: 2 * rounds };
  const cases: Case[] = [1, 2].map((threads) => ({ ...tiny, threads }));
  cases.push(...[1, 2].map((threads) => ({ ...tiny, model: 'qkv-tiny, bf16, busy neighbour', threads, neighbour: true })));
  if (quick) return cases;
  // SmolLM-135M's shape with random f16 weights
  const smolDir = join(dir, 'smollm-135m-shape');
  const smol = writeRandomCheckpoint(smolDir, SMOLLM_135M);
  const smolBytes = smol.bytes;
  const gguf = (type: GgufType) => {
    const path = join(dir, `smollm-135m-shape-${type}.gguf`);
    writeLlamaGguf(path, smol.config, smol.tensors, type, placeholderVocab(49152), 'SmolLM-135M shape');
    return path;
  };
  // warm-up: 32 tokens (both engines): on 2 threads qkv's decode path is optimised by V8 over its first ~30–40 tokens
  // (the compiler threads then share the cores with the kernels); after 8 the first measured run decoded at 23–28
  // tokens/s against 32–39 in the next
  const s = { dir: smolDir, vocab: 49152, prompt: 512, newTokens: 32, warmup: 32 };
  const f16 = gguf('F16');
  cases.push(...[1, 2].map((threads) => ({ ...s, model: 'SmolLM-135M shape, f16', weights: 'stored', gguf: f16, ggufType: 'F16' as const,
    threads, weightBytes: smolBytes })));
  // int8: a byte a weight and a scale a row; int4: half a byte a weight and an f32 scale per 32 (5/16 of f16's bytes)
  const q8 = gguf('Q8_0');
  cases.push(...[1, 2].map((threads) => ({ ...s, model: 'SmolLM-135M shape, int8', weights: 'int8', gguf: q8, ggufType: 'Q8_0' as const,
    threads, weightBytes: smolBytes / 2 })));
  const q4 = gguf('Q4_0');
  cases.push(...[1, 2].map((threads) => ({ ...s, model: 'SmolLM-135M shape, int4', weights: 'int4', gguf: q4, ggufType: 'Q4_0' as const,
    threads, weightBytes: (smolBytes * 5) / 16 })));
  return cases;
}

interface Row { c: Case; qkv: ChildResult[]; llama: ChildResult[] }

// The rows of one model (its 1- and 2-thread cases) measured in interleaved rounds: the "2 ÷ 1 threads" ratio then
// compares runs minutes apart at most, not whole rows apart (this VM's pace moves ±30% within minutes). Within a round
// the cases and the engines alternate which goes first, so none always runs on a machine another just warmed or heated.
async function measure(cases: Case[]): Promise<Row[]> {
  const rows: Row[] = cases.map((c) => ({ c, qkv: [], llama: [] }));
  for (let r = 0; r < Math.max(...cases.map(roundsOf)); r++) {
    for (const row of r % 2 ? [...rows].reverse() : rows) {
      if (r >= roundsOf(row.c)) continue;
      for (const engine of r % 2 ? (['llama.cpp', 'qkv'] as const) : (['qkv', 'llama.cpp'] as const)) {
        const res = await withNeighbour(row.c.neighbour, () => runChild(engine, row.c));
        (engine === 'qkv' ? row.qkv : row.llama).push(res);
      }
    }
  }
  return rows;
}

const roundsOf = (c: Case) => c.rounds ?? rounds;

const range = (xs: number[]) => `${median(xs).toFixed(1)} [${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}]`;
const all = (rs: ChildResult[], key: 'prefill' | 'decode') => rs.flatMap((r) => r[key]);
const MiB = (b: number) => (b / 2 ** 20).toFixed(0);

function print(rows: Row[]): void {
  const kvName = kv === 'float16' ? 'f16' : 'f32';
  console.log(`qkv against llama.cpp (node-llama-cpp, CPU) — greedy, KV cache (qkv ${kvName}, llama.cpp f16), ` +
    `same weights and token ids; WebAssembly ${kernelVariant()}; ` +
    `${cpus()[0]?.model} (${cpus().length} cores), node ${process.version}; ${rounds} rounds (qkv-tiny ${2 * rounds}) × ${runs} runs, median [min–max]\n`);
  console.log('model                              | llama.cpp | thr | prefill tok/s qkv | llama.cpp        | ratio | decode tok/s qkv | llama.cpp       ' +
    '| ratio | peak MiB qkv / llama.cpp | qkv peak / weights');
  console.log('-'.repeat(190));
  for (const { c, qkv, llama } of rows) {
    const pr = median(all(qkv, 'prefill')) / median(all(llama, 'prefill'));
    const dr = median(all(qkv, 'decode')) / median(all(llama, 'decode'));
    const [pq, pl] = [Math.max(...qkv.map((r) => r.peakRss)), Math.max(...llama.map((r) => r.peakRss))];
    console.log(`${c.model.padEnd(34)} | ${c.ggufType.padEnd(9)} | ${String(c.threads).padStart(3)} | ${range(all(qkv, 'prefill')).padStart(17)} | ` +
      `${range(all(llama, 'prefill')).padStart(16)} | ${pr.toFixed(2).padStart(5)} | ${range(all(qkv, 'decode')).padStart(16)} | ` +
      `${range(all(llama, 'decode')).padStart(15)} | ${dr.toFixed(2).padStart(5)} | ${`${MiB(pq)} / ${MiB(pl)}`.padStart(24)} | ` +
      `${(pq / c.weightBytes).toFixed(2)}× of ${MiB(c.weightBytes)} MiB`);
  }
  // the "never slower on 2 threads" question, per model: decode on 2 threads ÷ on 1, each engine
  const decodeOf = (r: Row | undefined, e: 'qkv' | 'llama') => (r ? median(all(r[e], 'decode')) : NaN);
  console.log('\ndecode on 2 threads ÷ on 1 thread (below 1: the second thread slows it down)');
  for (const model of [...new Set(rows.map((r) => r.c.model))]) {
    const [one, two] = [1, 2].map((t) => rows.find((r) => r.c.model === model && r.c.threads === t));
    const ratio = (e: 'qkv' | 'llama') => (decodeOf(two, e) / decodeOf(one, e)).toFixed(2);
    console.log(`  ${model.padEnd(34)} qkv ${ratio('qkv')}×   llama.cpp ${ratio('llama')}×`);
  }
  const agree = rows.filter((r) => r.c.ggufType !== 'Q8_0' && r.c.ggufType !== 'Q4_0')
    .map((r) => r.qkv[0].tokens.findIndex((t, i) => t !== r.llama[0].tokens[i]));
  console.log(`\nfirst differing generated token between the engines, unquantized rows: ${agree.map((i) => (i < 0 ? 'none' : i)).join(', ')}`);
}

useWasmFeatures(); // only to name the kernels' build in the header: each child turns it on for itself
const dir = mkdtempSync(join(tmpdir(), 'qkv-bench-generate-'));
try {
  const cases = prepare(dir, args.includes('--quick'));
  const rows: Row[] = [];
  for (const model of [...new Set(cases.map((c) => c.model))]) rows.push(...await measure(cases.filter((c) => c.model === model)));
  if (args.includes('--json')) {
    console.log(JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, kernels: kernelVariant(), kv,
      llamaCpp: execFileSync('npm', ['ls', 'node-llama-cpp', '--depth=0'], { encoding: 'utf8' }).trim(), rounds, runs, rows }, null, 2));
  } else {
    print(rows);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
