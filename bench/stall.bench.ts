// `npm run bench:stall`: a long prompt arriving while streams decode. 8 clients stream 120 tokens each from `qkv serve`
// on a ~135M model of SmolLM-135M's shape (random bf16 weights, qkv-tiny's tokenizer; written to a temporary directory
// and deleted after), one thread; 1.5 s in, one more request brings a prompt of ~1,350 tokens (max_tokens 1), or the
// same prompt to score (echo + logprobs, as lm-evaluation-harness asks). Two servers side by side, --max-stall 500 (the
// default) and --max-stall none (whole 256-token chunks), measured in turn, --rounds rounds (default 3): the streams'
// inter-token gaps (p50, p99, the longest) and the long request's time to its answer (median).
// Options: --json, --rounds N, --threads N (default 1), --stall MS (default 500).
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSyntheticLlama } from '../test/real-size/synthetic-checkpoint.js';
import { client, pct, serve, type Served, stop, TINY } from './serve-clients.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const [rounds, threads, stall] = [Number(option('--rounds', '3')), Number(option('--threads', '1')), option('--stall', '500')];
for (const [name, v] of [['--rounds', rounds], ['--threads', threads]] as const) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`bench:stall: ${name} must be an integer ≥ 1, got ${option(name, '')}`);
}
const STREAMS = 8, STREAM_TOKENS = 120, ARRIVES_MS = 1500;
const LONG = 'the quick brown fox jumps over the lazy dog and then some more words follow here '.repeat(200).split(' ').slice(0, 900).join(' ');

// one round: the streams, and the long request 1.5 s after they start — its first words its own, so that no server has
// its blocks cached from an earlier round (prefix caching would skip the prefill being measured)
async function round(base: string, kind: 'prefill' | 'score', nth: number): Promise<{ gaps: number[]; longMs: number; errors: number }> {
  const streams = Array.from({ length: STREAMS }, (_, i) => client(base, `Client ${i} says`, STREAM_TOKENS));
  await new Promise((r) => setTimeout(r, ARRIVES_MS));
  const t0 = performance.now();
  const prompt = `Round ${nth} of the ${kind} test: ${LONG}`;
  const body = kind === 'score' ? { prompt, max_tokens: 0, echo: true, logprobs: 1 } : { prompt, max_tokens: 1 };
  const r = await fetch(`${base}v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await r.json();
  const longMs = performance.now() - t0;
  const done = await Promise.all(streams);
  return { gaps: done.flatMap((c) => c.gaps), longMs, errors: done.filter((c) => c.error || !c.done).length + (r.ok ? 0 : 1) };
}

const dir = mkdtempSync(join(tmpdir(), 'qkv-stall-'));
const servers = new Map<string, Served>();
const rows = [];
try {
  writeSyntheticLlama(dir, { E: 576, layers: 30, heads: 9, kvHeads: 3, F: 1536, V: 4096, tied: true }, 1);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(TINY, f), join(dir, f));
  for (const s of [stall, 'none']) servers.set(s, await serve(dir, 16, threads, ['--max-stall', s]));
  for (const { base } of servers.values()) await Promise.all(Array.from({ length: STREAMS }, (_, i) => client(base, `warm up ${i}`, 16)));
  for (const kind of ['prefill', 'score'] as const) {
    const got = new Map<string, Awaited<ReturnType<typeof round>>[]>([...servers.keys()].map((s) => [s, []]));
    for (let r = 0; r < rounds; r++) for (const [s, { base }] of servers) got.get(s)!.push(await round(base, kind, r));
    for (const [s, all] of got) {
      const gaps = all.flatMap((a) => a.gaps);
      rows.push({
        kind, maxStall: s, gapP50: pct(gaps, 0.5), gapP99: pct(gaps, 0.99), gapMax: Math.max(...gaps),
        longMs: pct(all.map((a) => a.longMs), 0.5), longMsAll: all.map((a) => a.longMs), errors: all.reduce((n, a) => n + a.errors, 0),
      });
    }
  }
} finally {
  for (const s of servers.values()) await stop(s);
  rmSync(dir, { recursive: true, force: true });
}
const kernels = [...servers.values()][0]?.kernels ?? '?';
if (args.includes('--json')) {
  console.log(JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, kernels, threads, rows }, null, 2));
} else {
  console.log(`qkv serve: a ~1,350-token prompt arriving while ${STREAMS} clients stream (SmolLM-135M shape, V 4096, ${threads} ` +
    `thread(s), WebAssembly ${kernels}); ${cpus()[0]?.model}, node ${process.version}; ${rounds} rounds, the servers in turn\n`);
  console.log('long request              | --max-stall | streams\' gap p50 / p99 / longest, ms | long request answered, ms (median [all])  | errors');
  console.log('--------------------------|-------------|---------------------------------------|-------------------------------------------|-------');
  for (const r of rows) {
    const what = r.kind === 'score' ? 'scored (echo + logprobs)' : 'prefilled (max_tokens 1)';
    const gaps = `${r.gapP50.toFixed(0)} / ${r.gapP99.toFixed(0)} / ${r.gapMax.toFixed(0)}`;
    const long = `${r.longMs.toFixed(0)} [${r.longMsAll.map((x) => x.toFixed(0)).join(', ')}]`;
    console.log(`${what.padEnd(25)} | ${r.maxStall.padStart(11)} | ${gaps.padStart(37)} | ${long.padEnd(41)} | ${String(r.errors).padStart(6)}`);
  }
}
