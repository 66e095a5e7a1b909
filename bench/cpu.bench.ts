// `npm run bench:cpu`: qkv's CPU attention against the peers, in one process tree and one run, on the same inputs:
// onnxruntime-node (the ONNX graph MatMul→Softmax→MatMul, com.microsoft.MultiHeadAttention and ONNX-23 Attention,
// 2 intra-op threads) and @tensorflow/tfjs with the wasm backend. fp32, B = 1, H = 8, head_dim 64, L = S.
// GFLOP/s = 4·B·H·L·S·D / time, halved for causal. Medians of ≥ 5 runs after a warm-up; peak RSS of each child.
// Then, in the same run, generation: prefill and decode tokens/s of qkv-tiny and SmolLM-135M's shape against llama.cpp
// measured on the same weights (node-llama-cpp, GGUF files written from the same tensors) — generate.bench.ts as a child.
// Options: --sizes 256,1024  --runs N  --impls qkv,ort-graph,…  --no-generation  --json
import { execFileSync, spawn } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WASM_BASE64 as PEAK_WASM } from '../src/kernels/wasm/peak-binary.js';

const args = process.argv.slice(2);
const opt = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const sizes = (opt('--sizes') ?? '256,1024,2048,4096').split(',').map(Number);
const impls = (opt('--impls') ?? 'qkv,qkv-2t,ort-graph,ort-mha,ort-attention,tfjs-wasm').split(',');
const runs = Number(opt('--runs') ?? 5);
const child = fileURLToPath(new URL('./cpu-child.js', import.meta.url));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const [B, H, D] = [1, 8, 64];

/** GFLOP/s of the machine: an AVX-512 FMA loop in C (when a C compiler exists) and a SIMD128 mul+add loop in wasm. */
async function peaks(): Promise<{ c1?: number; c2?: number; wasm1: number }> {
  const bin = Uint8Array.from(Buffer.from(PEAK_WASM, 'base64'));
  const { mulAddLoop, CHAINS } = new WebAssembly.Instance(new WebAssembly.Module(bin)).exports as { mulAddLoop(n: number): number; CHAINS: WebAssembly.Global };
  mulAddLoop(1e6);
  const n = 2e8;
  const t0 = performance.now();
  mulAddLoop(n);
  const wasm1 = (n * (CHAINS.value as number) * 4 * 2) / ((performance.now() - t0) / 1000) / 1e9; // chains × 4 lanes × (mul + add)
  const exe = join(tmpdir(), `qkv-fma-${process.pid}`);
  try {
    execFileSync('cc', ['-O3', '-march=native', fileURLToPath(new URL('../../bench/peak/fma.c', import.meta.url)), '-o', exe], { stdio: 'ignore' });
  } catch {
    return { wasm1 }; // no C compiler: the anchors' figure (117 GFLOP/s per core) stands in
  }
  const run = () => new Promise<number>((resolve) => { let out = ''; const p = spawn(exe); p.stdout.on('data', (d) => { out += d; }); p.on('close', () => resolve(parseFloat(out))); });
  const c1 = await run();
  const both = await Promise.all(Array.from({ length: Math.min(2, cpus().length) }, run));
  return { c1, c2: both.reduce((a, b) => a + b, 0), wasm1 };
}

interface Row { impl: string; L: number; causal: boolean; ms: number; gflops: number; peakMiB: number; error?: string }
const rows: Row[] = [];
for (const causal of [false, true]) {
  for (const L of sizes) {
    for (const impl of impls) {
      try {
        const out = execFileSync(process.execPath, ['--expose-gc', child, impl, String(L), String(causal), String(runs)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 20 * 60_000 });
        const r = JSON.parse(out.trim().split('\n').pop()!) as { ms: number[]; peakRss: number; baseRss: number };
        const ms = median(r.ms);
        const flops = (4 * B * H * L * L * D) / (causal ? 2 : 1);
        rows.push({ impl, L, causal, ms, gflops: flops / ms / 1e6, peakMiB: r.peakRss / 2 ** 20 });
      } catch (e) {
        rows.push({ impl, L, causal, ms: NaN, gflops: NaN, peakMiB: NaN, error: (e as Error).message.split('\n')[0] });
      }
      if (!args.includes('--json')) process.stderr.write('.');
    }
  }
}
const peak = await peaks();
// generation against llama.cpp: the generation benchmark in a child of this run (its own table, or its JSON)
const generation = args.includes('--no-generation') ? null : execFileSync(process.execPath,
  [fileURLToPath(new URL('./generate.bench.js', import.meta.url)), '--runs', String(runs), ...(args.includes('--json') ? ['--json'] : [])],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 60 * 60_000 });
if (args.includes('--json')) {
  console.log(JSON.stringify({ date: new Date().toISOString(), cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, runs, peak, rows,
    generation: generation ? JSON.parse(generation) : null }, null, 2));
} else {
  process.stderr.write('\n');
  console.log(`CPU attention — fp32, B=${B}, H=${H}, D=${D}, L=S; ${cpus()[0]?.model} (${cpus().length} cores), node ${process.version}; median of ${runs} after a warm-up`);
  console.log('GFLOP/s (peak RSS MiB); ratio = best qkv variant / peer');
  console.log(`machine: AVX-512 FMA loop in C ${peak.c1 ? `${peak.c1.toFixed(0)} GFLOP/s on 1 thread, ${peak.c2!.toFixed(0)} on 2` : 'n/a (no C compiler)'}; ` +
    `WebAssembly SIMD128 mul+add loop ${peak.wasm1.toFixed(0)} GFLOP/s on 1 thread (≈ ${(2 * peak.wasm1).toFixed(0)} on 2)\n`);
  const peers = impls.filter((i) => !i.startsWith('qkv'));
  const best = (L: number, causal: boolean) => rows.filter((r) => r.impl.startsWith('qkv') && r.L === L && r.causal === causal && !r.error).sort((a, b) => b.gflops - a.gflops)[0];
  console.log(`causal |     L | ${impls.map((i) => i.padStart(18)).join(' | ')} | ${peers.map((p) => `qkv/${p}`.padStart(18)).join(' | ')}`);
  for (const causal of [false, true]) for (const L of sizes) {
    const get = (impl: string) => rows.find((r) => r.impl === impl && r.L === L && r.causal === causal)!;
    const cells = impls.map((i) => { const r = get(i); return (r.error ? 'error' : `${r.gflops.toFixed(1)} (${r.peakMiB.toFixed(0)})`).padStart(18); });
    const q = best(L, causal);
    const ratios = peers.map((p) => (q && !get(p).error ? `${(q.gflops / get(p).gflops).toFixed(2)}×` : '–').padStart(18 + 4));
    const pct = q ? ` | ${(100 * q.gflops / ((q.impl === 'qkv-2t' ? 2 : 1) * peak.wasm1)).toFixed(0)}% of wasm peak` : '';
    console.log(`${String(causal).padStart(6)} | ${String(L).padStart(5)} | ${cells.join(' | ')} | ${ratios.join(' | ')}${pct}`);
  }
  if (generation) console.log(`\n${generation.trimEnd()}`);
}
