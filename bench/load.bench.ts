// `npm run bench:load`: real-size checkpoints. Writes a synthetic bf16 checkpoint of Llama-3.2-1B's shape (2.47 GB,
// two shards) and of Llama-2-7B's (13.5 GB, three shards) — random weights, deleted afterwards — and, for each, runs a
// fresh process (test/real-size/load-child.ts) that loads it, runs a 16-token prompt and decodes 8 tokens greedily.
// Reports load time, peak resident memory against the weights' bytes, prefill and decode tokens/s; beside them, two
// floors measured in the same run: reading the same files into fresh memory (what any loader must do: the page cache
// is warm after the write, so this is copying and first-touch page faults), and decode's memory-bandwidth bound (the
// weights read once per token at this machine's one-core read bandwidth; two threads can pass it).
// No peer engine runs these shapes on this machine (llama.cpp is not installed here). Medians of --runs N (default 3).
// Options: --shape 1b|7b|all, --runs N, --threads T (default 2), --json
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LLAMA_1B, LLAMA_7B, writeSyntheticLlama, type LlamaShape } from '../test/real-size/synthetic-checkpoint.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const runs = Number(opt('--runs', '3'));
const threads = opt('--threads', '2');
const which = opt('--shape', 'all');
const CHILD = fileURLToPath(new URL('../test/real-size/load-child.js', import.meta.url));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const GB = 1e9;

interface Child { bytes: number; loadMs: number; forwardMs: number; finite: boolean; prefillTokPerS: number; decodeTokPerS: number; maxRssBytes: number }

// the files read into fresh 64 MiB buffers (each dropped after): the floor of any loader's time
function rawReadMs(dir: string): number {
  const t = performance.now();
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.safetensors'))) {
    const fd = openSync(join(dir, f), 'r');
    try {
      for (let at = 0, n = 1; n > 0; at += n) n = readSync(fd, new Uint8Array(2 ** 26), 0, 2 ** 26, at);
    } finally {
      closeSync(fd);
    }
  }
  return performance.now() - t;
}

// bytes per second of reading memory on one core: memcmp of two 256 MiB buffers (both read whole)
function copyBandwidth(): number {
  const [a, b] = [Buffer.alloc(2 ** 28, 1), Buffer.alloc(2 ** 28, 1)];
  const times: number[] = [];
  for (let i = 0; i < 5; i++) { const t = performance.now(); Buffer.compare(a, b); times.push(performance.now() - t); }
  return (2 * 2 ** 28) / (median(times) / 1000);
}

function measure(name: string, shape: LlamaShape, shards: number, bandwidth: number) {
  const dir = mkdtempSync(join(tmpdir(), 'qkv-load-'));
  try {
    let t = performance.now();
    const bytes = writeSyntheticLlama(dir, shape, shards);
    const writeMs = performance.now() - t;
    const floorMs = median(Array.from({ length: runs }, () => rawReadMs(dir)));
    const results: Child[] = [];
    for (let r = 0; r < runs; r++) {
      const out = execFileSync(process.execPath, [CHILD, dir, '16', '8', threads], { encoding: 'utf8', maxBuffer: 2 ** 20 });
      results.push(JSON.parse(out.trim().split('\n').at(-1)!) as Child);
    }
    return {
      model: name, bytes, shards, writeMs, rawReadMs: floorMs, threads: Number(threads),
      loadMs: median(results.map((x) => x.loadMs)), forwardMs: median(results.map((x) => x.forwardMs)),
      peakRssBytes: Math.max(...results.map((x) => x.maxRssBytes)), finite: results.every((x) => x.finite),
      prefillTokPerS: median(results.map((x) => x.prefillTokPerS)), decodeTokPerS: median(results.map((x) => x.decodeTokPerS)),
      boundTokPerS: bandwidth / bytes,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const bandwidth = copyBandwidth();
const rows = [];
if (which === '1b' || which === 'all') rows.push(measure('Llama-3.2-1B shape, bf16', LLAMA_1B, 2, bandwidth));
if (which === '7b' || which === 'all') rows.push(measure('Llama-2-7B shape, bf16', LLAMA_7B, 3, bandwidth));
if (args.includes('--json')) {
  console.log(JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, runs, bandwidth, rows }, null, 2));
} else {
  console.log(`qkv real-size loading — synthetic bf16 checkpoints, prompt 16, decode 8 (greedy); ${cpus()[0]?.model} (${cpus().length} cores), ` +
    `node ${process.version}; median of ${runs}; one-core read bandwidth ${(bandwidth / GB).toFixed(1)} GB/s\n`);
  console.log('model                     | weights  | load s | files read s | load / read | peak RSS  | peak / weights | prefill tok/s | decode tok/s | 1-core bandwidth bound tok/s');
  console.log('--------------------------|----------|--------|--------------|-------------|-----------|----------------|---------------|--------------|---------------------------');
  for (const r of rows) {
    console.log(`${r.model.padEnd(25)} | ${(r.bytes / GB).toFixed(2).padStart(5)} GB | ${(r.loadMs / 1000).toFixed(1).padStart(6)} | ` +
      `${(r.rawReadMs / 1000).toFixed(1).padStart(12)} | ${(r.loadMs / r.rawReadMs).toFixed(2).padStart(10)}× | ${(r.peakRssBytes / GB).toFixed(2).padStart(6)} GB | ` +
      `${(r.peakRssBytes / r.bytes).toFixed(3).padStart(13)}× | ${r.prefillTokPerS.toFixed(2).padStart(13)} | ${r.decodeTokPerS.toFixed(2).padStart(12)} | ` +
      `${r.boundTokPerS.toFixed(2).padStart(26)}${r.finite ? '' : '  (non-finite logits!)'}`);
  }
}
