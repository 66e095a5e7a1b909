// `npm run bench:serve`: N concurrent streaming clients (1, 8, 32, 64) against `qkv serve`, the batched server
// (--max-batch 64) beside the same server with batching off (--max-batch 1), in the same run: aggregate tokens/s, time
// to first token p50/p99, inter-token gap p50/p99, errors (a 503 is retried after its Retry-After; counted), every
// stream ending with [DONE], and the server's peak RSS. Models: the embedded qkv-tiny (64 tokens per client) and a
// ~135M model of SmolLM-135M's shape with random bf16 weights and qkv-tiny's tokenizer (vocabulary 4096; 16 tokens per
// client, 1–32 clients), written to a temporary directory and deleted after. Each server runs on one thread and again on
// all cores (`qkv serve`'s default): the clients share the machine (~12% of a core for 64 streams here), which a
// thread-per-core server feels; --threads N for one of them.
// Both servers of a model run side by side (the idle one's workers sleep), each warmed up first (sequential and
// concurrent requests: the first hundreds of tokens run before the JIT has compiled the hot paths). Each row is
// --rounds rounds (default 3) of waves of its N clients for at least 2 s (tokens/s over all of them), the batched and
// the unbatched server in turn, so that the machine's drift (±30% within minutes on a shared VM) falls on both alike:
// tokens/s is the median [min–max] of the rounds, the ratio that of the medians [the rounds' own ratios, min–max].
// Options: --json, --quick (qkv-tiny only), --threads N, --rounds N
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSyntheticLlama } from '../test/real-size/synthetic-checkpoint.js';
import { client, type Client, peakRss, pct, serve, type Served, stop, TINY } from './serve-clients.js';

const args = process.argv.slice(2);
const MIN_SECONDS = 2; // each row: waves of its clients for at least this long

let kernels = '?';
const option = (name: string) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : undefined);
const rounds = option('--rounds') ?? 3;
if (!Number.isInteger(rounds) || rounds < 1) {
  throw new Error(`bench:serve: --rounds must be an integer ≥ 1, got ${args[args.indexOf('--rounds') + 1]}`);
}
const threadCounts = args.includes('--threads') ? [option('--threads')!] : [...new Set([1, availableParallelism()])];
if (!threadCounts.every((n) => Number.isInteger(n) && n >= 1)) throw new Error(`bench:serve: --threads must be an integer ≥ 1, got ${args[args.indexOf('--threads') + 1]}`);

const MODES = [['batched', 64], ['unbatched', 1]] as const;
type Mode = (typeof MODES)[number][0];

// one round of a row: waves of n clients until MIN_SECONDS have passed (one wave of one client was a single 64-token
// request, ~0.1 s, whose figure moved 2× with whatever the server had just compiled or measured)
async function waves(base: string, n: number, maxTokens: number): Promise<{ tokensPerS: number; clients: Client[] }> {
  const prompts = Array.from({ length: n }, (_, i) => ['A fool and his money', 'The Zen of Python', 'def fib(n):', 'Once upon a time'][i % 4] + ` ${i}`);
  const t0 = performance.now();
  const clients: Client[] = [];
  do clients.push(...await Promise.all(prompts.map((p) => client(base, p, maxTokens))));
  while (performance.now() - t0 < MIN_SECONDS * 1000);
  return { tokensPerS: clients.reduce((s, c) => s + c.tokens, 0) / ((performance.now() - t0) / 1000), clients };
}

async function run(name: string, model: string, clients: number[], maxTokens: number, threads: number) {
  const servers = new Map<Mode, Served>();
  try {
    for (const [mode, maxBatch] of MODES) servers.set(mode, await serve(model, maxBatch, threads));
    kernels = servers.get('batched')!.kernels;
    for (const { base } of servers.values()) {
      for (let i = 0; i < 4; i++) await client(base, `warm up ${i}`, maxTokens);
      await Promise.all(Array.from({ length: 16 }, (_, i) => client(base, `warm up ${i}`, maxTokens)));
    }
    const rows = [];
    for (const n of clients) {
      const got = new Map<Mode, { tokensPerS: number; clients: Client[] }[]>(MODES.map(([mode]) => [mode, []]));
      for (let r = 0; r < rounds; r++) {
        for (const [mode] of MODES) got.get(mode)!.push(await waves(servers.get(mode)!.base, n, maxTokens));
      }
      for (const [mode] of MODES) {
        const all = got.get(mode)!.flatMap((g) => g.clients), perRound = got.get(mode)!.map((g) => g.tokensPerS);
        rows.push({
          model: name, threads, mode, clients: n, tokensPerS: pct(perRound, 0.5), rounds: perRound,
          ttftP50: pct(all.map((c) => c.ttft), 0.5), ttftP99: pct(all.map((c) => c.ttft), 0.99),
          gapP50: pct(all.flatMap((c) => c.gaps), 0.5), gapP99: pct(all.flatMap((c) => c.gaps), 0.99),
          errors: all.filter((c) => c.error || !c.done).length, retries: all.reduce((s, c) => s + c.retries, 0),
          peakRssBytes: peakRss(servers.get(mode)!.proc.pid!),
        });
      }
    }
    return rows;
  } finally {
    for (const server of servers.values()) await stop(server);
  }
}

const rows: Awaited<ReturnType<typeof run>> = [];
for (const threads of threadCounts) rows.push(...await run('qkv-tiny (4.1M)', TINY, [1, 8, 32, 64], 64, threads));
if (!args.includes('--quick')) {
  const dir = mkdtempSync(join(tmpdir(), 'qkv-serve-'));
  try {
    writeSyntheticLlama(dir, { E: 576, layers: 30, heads: 9, kvHeads: 3, F: 1536, V: 4096, tied: true }, 1);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(TINY, f), join(dir, f));
    for (const threads of threadCounts) rows.push(...await run('SmolLM-135M shape (~109M, V 4096)', dir, [1, 8, 32], 16, threads));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
if (args.includes('--json')) {
  console.log(JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, kernels, rows }, null, 2));
} else {
  console.log(`qkv serve under load — streaming clients, greedy, WebAssembly ${kernels}; ` +
    `${cpus()[0]?.model} (${cpus().length} cores), node ${process.version}\n`);
  console.log(`${rounds} rounds a row, the two servers in turn; tokens/s: median [min–max]; ratio: of the medians [of each round's pair]\n`);
  console.log('model                              | threads | server    | clients | tokens/s           | batched ÷ unbatched | TTFT p50/p99 ms | gap p50/p99 ms | errors | 503 retries | peak RSS');
  console.log('-----------------------------------|---------|-----------|---------|--------------------|---------------------|-----------------|----------------|--------|-------------|---------');
  const range = (xs: number[], digits: number) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
  for (const r of rows) {
    const twin = rows.find((x) => x.model === r.model && x.threads === r.threads && x.clients === r.clients && x.mode === 'unbatched')!;
    const paired = r.rounds.map((t, i) => t / twin.rounds[i]);
    const ratio = r.mode === 'batched' ? `${(r.tokensPerS / twin.tokensPerS).toFixed(2)}× [${range(paired, 2)}]` : '';
    const speed = `${r.tokensPerS.toFixed(0)} [${range(r.rounds, 0)}]`;
    console.log(`${r.model.padEnd(34)} | ${String(r.threads).padStart(7)} | ${r.mode.padEnd(9)} | ${String(r.clients).padStart(7)} | ${speed.padEnd(18)} | ${ratio.padStart(19)} | ` +
      `${`${r.ttftP50.toFixed(0)}/${r.ttftP99.toFixed(0)}`.padStart(15)} | ${`${r.gapP50.toFixed(1)}/${r.gapP99.toFixed(1)}`.padStart(14)} | ` +
      `${String(r.errors).padStart(6)} | ${String(r.retries).padStart(11)} | ${(r.peakRssBytes / 2 ** 20).toFixed(0).padStart(4)} MiB`);
  }
}
