// `npm run bench:browser`: qkv against the engines web developers ship, in Debian's Chromium (playwright-core), in a
// cross-origin isolated page with 2 threads: attention (fp32, B 1, H 8, head_dim 64, L = S) against onnxruntime-web's
// WebAssembly backend (the attention graph MatMul → Softmax → MatMul, as bench:cpu builds it, and its fused
// MultiHeadAttention), and generation against wllama (llama.cpp compiled to WebAssembly) on qkv-tiny (bf16, as
// stored) and SmolLM-135M's shape (random f16 weights), from GGUF files this bench writes from the same tensors.
// Each measurement runs in a fresh browser; its peak memory is the high-water mark of the page's renderer process
// (its JavaScript, WebAssembly memory and workers; /proc, Linux). The page is bench/browser/page.ts.
// Attention runs in ROUNDS rounds (each engine once a round at every size, their order turned each round): on a machine
// whose speed drifts over minutes, one pass met the engines at different speeds (qkv ÷ ort at L 512 was 0.9–1.6× in
// three passes a minute apart);
// each cell is the median over the rounds, each ratio the median of the rounds' ratios, the peak memory the largest.
// Options: --json, --runs N (5), --rounds N (3), --quick (L 512 and qkv-tiny only), --attention (no generation)
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { dirname, extname, join, normalize } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { HfConfig } from '../src/index.js';
import { streamSafetensors } from '../src/node/checkpoint.js';
import type { Task } from './browser/page.js';
import { placeholderVocab, writeLlamaGguf } from './gguf.js';
import { SMOLLM_135M, writeRandomCheckpoint } from './random-llama.js';

const args = process.argv.slice(2);
const runs = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 5;
const quick = args.includes('--quick');
const attentionOnly = args.includes('--attention');
const rounds = args.includes('--rounds') ? Number(args[args.indexOf('--rounds') + 1]) : 3;
const CHROMIUM = process.env.QKV_CHROMIUM ?? '/usr/bin/chromium';
const root = fileURLToPath(new URL('../../', import.meta.url));
const THREADS = 2;

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json',
  '.html': 'text/html' };

// qkv's two runtime dependencies as ES modules, for the page's import map
const vendor = (pkg: string, file: string) => join(dirname(createRequire(import.meta.url).resolve(pkg)), file);
const VENDOR: Record<string, string> = { 'tokenizers.mjs': vendor('@huggingface/tokenizers', 'tokenizers.mjs'), 'jinja.mjs': vendor('@huggingface/jinja', 'index.js') };
const PAGE = '<!doctype html><title>qkv bench</title><script type="importmap">' +
  JSON.stringify({ imports: { '@huggingface/tokenizers': '/vendor/tokenizers.mjs', '@huggingface/jinja': '/vendor/jinja.mjs' } }) + '</script>';

/** A static server for the page: qkv's build, the bench's page, the peers' packages, the models; cross-origin isolated. */
function serve(models: string): Promise<{ server: Server; base: string }> {
  const mounts: [string, string][] = [['/qkv/', join(root, 'dist/src')], ['/bench/', join(root, 'dist/bench')],
    ['/ort/', join(root, 'node_modules/onnxruntime-web/dist')], ['/wllama/', join(root, 'node_modules/@wllama/wllama/esm')], ['/models/', models]];
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]);
    const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cache-Control': 'no-store' };
    if (path === '/') { res.writeHead(200, { ...headers, 'content-type': 'text/html' }).end(PAGE); return; }
    const mount = mounts.find(([prefix]) => path.startsWith(prefix));
    const file = path.startsWith('/vendor/') ? (VENDOR[path.slice(8)] ?? '') : mount ? normalize(join(mount[1], path.slice(mount[0].length))) : '';
    if (path.startsWith('/vendor/') && file) { res.writeHead(200, { ...headers, 'content-type': 'text/javascript' }); createReadStream(file).pipe(res); return; }
    if (!mount || !file.startsWith(mount[1]) || !existsSync(file) || !statSync(file).isFile()) { res.writeHead(404, headers).end(); return; }
    res.writeHead(200, { ...headers, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': statSync(file).size });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    resolve({ server, base: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}` });
  }));
}

// the page's peak resident memory: the high-water mark of the largest renderer process under the browser (the page's
// JavaScript, WebAssembly memory and workers live there)
function pagePeak(pid: number): number {
  const kids = (p: number): number[] => {
    const out = spawnSync('ps', ['-o', 'pid=', '--ppid', String(p)], { encoding: 'utf8' }).stdout.trim().split(/\s+/).filter(Boolean).map(Number);
    return out.flatMap((c) => [c, ...kids(c)]);
  };
  let peak = 0;
  for (const p of kids(pid)) {
    try {
      if (!readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('--type=renderer')) continue;
      peak = Math.max(peak, Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0) * 1024);
    } catch { /* gone */ }
  }
  return peak;
}

/** Runs one task in a fresh browser: the page's figures and the browser's peak memory. */
async function measure(base: string, task: Task): Promise<Record<string, unknown>> {
  const server = await chromium.launchServer({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update'] });
  const browser = await chromium.connect(server.wsEndpoint());
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    if (process.env.QKV_BENCH_DEBUG) page.on('console', (m) => process.stderr.write(`  [page] ${m.text()}\n`));
    await page.goto(`${base}/`);
    const result = await page.evaluate(async (t) => (await import('/bench/browser/page.js' as string)).run(t), task);
    const pid = server.process().pid;
    return { ...result, peakBytes: pid ? pagePeak(pid) : null, errors };
  } finally {
    await browser.close();
    await server.close();
  }
}

/** The models for the generation tasks, written into `dir`: qkv-tiny's GGUF (its safetensors served as they are), SmolLM's shape. */
function prepare(dir: string): { model: string; gguf: string; vocab: number; newTokens: number; label: string }[] {
  const tinyDir = join(root, 'models/qkv-tiny');
  mkdirSync(join(dir, 'qkv-tiny'));
  for (const f of ['config.json', 'model.safetensors']) writeFileSync(join(dir, 'qkv-tiny', f), readFileSync(join(tinyDir, f)));
  const tensors = new Map();
  streamSafetensors(join(tinyDir, 'model.safetensors'), tensors);
  const config = JSON.parse(readFileSync(join(tinyDir, 'config.json'), 'utf8')) as HfConfig;
  // placeholder tokens, as for the random model: wllama takes text prompts only, and `<t{id}>` strings become those ids
  writeLlamaGguf(join(dir, 'qkv-tiny-bf16.gguf'), config, tensors, 'BF16', placeholderVocab(4096), 'qkv-tiny');
  const out = [{ model: 'qkv-tiny', gguf: 'qkv-tiny-bf16.gguf', vocab: 4096, newTokens: 64, label: 'qkv-tiny, bf16 (BF16 GGUF)' }];
  if (quick) return out;
  const smol = writeRandomCheckpoint(join(dir, 'smol'), SMOLLM_135M);
  writeLlamaGguf(join(dir, 'smol-f16.gguf'), smol.config, smol.tensors, 'F16', placeholderVocab(49152), 'SmolLM-135M shape');
  return [...out, { model: 'smol', gguf: 'smol-f16.gguf', vocab: 49152, newTokens: 32, label: 'SmolLM-135M shape, f16 (F16 GGUF)' }];
}

type Row = { task: Task; result: Record<string, unknown>; round: number };
const med = (r: Record<string, unknown>, key: string) => (r[key] as { median: number } | undefined)?.median ?? NaN;
const MiB = (b: unknown) => (typeof b === 'number' ? (b / 2 ** 20).toFixed(0) : '–');

function print(rows: Row[], version: string): void {
  console.log(`qkv in the browser — ${version}, ${cpus()[0]?.model} (${cpus().length} cores), ${THREADS} threads, ` +
    `cross-origin isolated; medians of ${runs} runs after a 5 s warm-up, ` +
    `attention over ${rounds} rounds; MiB = the page's peak resident memory\n`);
  console.log('attention, fp32, B 1, H 8, D 64   | causal |     L | qkv ms (MiB) | ort graph ms (MiB) | ort MHA ms (MiB) | qkv / graph | qkv / MHA');
  const att = rows.filter((r) => r.task.kind === 'attention');
  const keyOf = (t: Task) => `${(t as { causal: boolean }).causal}:${(t as { L: number }).L}`;
  const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const key of [...new Set(att.map((r) => keyOf(r.task)))]) {
    // per engine: each round's median (NaN for a round that failed); per round: the peer's time ÷ qkv's
    const ms = (e: string) => Array.from({ length: rounds }, (_, r) => {
      const row = att.find((x) => keyOf(x.task) === key && x.task.engine === e && x.round === r);
      return row && !row.result.error ? med(row.result, 'ms') : NaN;
    });
    const peak = (e: string) => Math.max(...att.filter((x) => keyOf(x.task) === key && x.task.engine === e).map((x) => Number(x.result.peakBytes ?? 0)));
    const q = ms('qkv');
    const cell = (e: string) => (ms(e).some(Number.isNaN) ? 'error' : `${mid(ms(e)).toFixed(1)} (${MiB(peak(e))})`);
    const ratio = (e: string) => (ms(e).some(Number.isNaN) || q.some(Number.isNaN) ? '–' : `${mid(ms(e).map((x, r) => x / q[r])).toFixed(2)}×`);
    const [causal, L] = key.split(':');
    console.log(`${''.padEnd(34)} | ${causal.padStart(6)} | ${L.padStart(5)} | ${cell('qkv').padStart(12)} | ${cell('ort-graph').padStart(18)} | ` +
      `${cell('ort-mha').padStart(16)} | ${ratio('ort-graph').padStart(11)} | ${ratio('ort-mha').padStart(9)}`);
  }
  const gen = rows.filter((r) => r.task.kind === 'generation');
  if (!gen.length) return;
  console.log('\ngeneration (greedy, same token ids, f16 KV caches) | prompt | prefill tok/s qkv | wllama | ratio | decode tok/s qkv | wllama | ratio | peak MiB qkv / wllama');
  for (const label of [...new Set(gen.map((r) => (r.task as { model: string }).model))]) {
    const [q, w] = ['qkv', 'wllama'].map((e) => gen.find((r) => (r.task as { model: string }).model === label && r.task.engine === e)!.result);
    const t = gen.find((r) => (r.task as { model: string }).model === label)!.task as Extract<Task, { kind: 'generation' }>;
    console.log(`${label.padEnd(37)} | ${String(t.prompt).padStart(6)} | ${med(q, 'prefill').toFixed(1).padStart(17)} | ${med(w, 'prefill').toFixed(1).padStart(6)} | ` +
      `${(med(q, 'prefill') / med(w, 'prefill')).toFixed(2).padStart(5)} | ${med(q, 'decode').toFixed(1).padStart(16)} | ${med(w, 'decode').toFixed(1).padStart(6)} | ` +
      `${(med(q, 'decode') / med(w, 'decode')).toFixed(2).padStart(5)} | ${`${MiB(q.peakBytes)} / ${MiB(w.peakBytes)}`.padStart(21)}`);
  }
}

if (!existsSync(CHROMIUM)) throw new Error(`bench:browser needs Chromium at ${CHROMIUM} (apt-get install chromium, or set QKV_CHROMIUM)`);
const dir = mkdtempSync(join(tmpdir(), 'qkv-bench-browser-'));
const { server, base } = await serve(dir);
try {
  const models = attentionOnly ? [] : prepare(dir);
  const tasks: Task[] = [];
  const round = new Map<Task, number>();
  for (let r = 0; r < rounds; r++) {
    for (const causal of [false, true]) {
      for (const L of quick ? [512] : [512, 1024, 2048]) {
        const engines = ['qkv', 'ort-graph', 'ort-mha'] as const;
        for (let e = 0; e < engines.length; e++) { // the engines' order turned each round
          const task: Task = { kind: 'attention', engine: engines[(e + r) % engines.length], L, causal, threads: THREADS, runs };
          tasks.push(task);
          round.set(task, r);
        }
      }
    }
  }
  for (const m of attentionOnly ? [] : models) {
    for (const engine of ['qkv', 'wllama'] as const) {
      tasks.push({ kind: 'generation', engine, model: m.model, gguf: m.gguf, prompt: 512, newTokens: m.newTokens, vocab: m.vocab, threads: THREADS,
        runs: Math.min(runs, 3) });
    }
  }
  const rows: Row[] = [];
  for (const task of tasks) {
    process.stderr.write(`${task.kind} ${task.engine} ${'L' in task ? `L=${task.L} causal=${task.causal}` : task.model}…\n`);
    const result = await measure(base, task).catch((e: unknown) => ({ error: String(e) }));
    if ('error' in result) process.stderr.write(`  ${String(result.error).split('\n')[0]}\n`);
    rows.push({ task, result, round: round.get(task) ?? 0 });
  }
  const version = spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8' }).stdout.trim();
  if (args.includes('--json')) console.log(JSON.stringify({ date: new Date().toISOString(), chromium: version, cpu: cpus()[0]?.model, rows }, null, 2));
  else print(rows, version);
} finally {
  server.close();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
