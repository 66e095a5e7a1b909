// What the serving benchmarks share (serve.bench.ts, stall.bench.ts): a `qkv serve` process on a free port, a streaming
// client that times every event, percentiles, and a process's peak RSS.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../src/node/cli/main.js', import.meta.url));
/** The embedded model's directory. */
export const TINY = fileURLToPath(new URL('../../models/qkv-tiny', import.meta.url));

/** The p-quantile of xs (NaN for none). */
export const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] : NaN);

/** A running `qkv serve`: its process, its address and the kernels' build its banner names. */
export interface Served { proc: ChildProcess; base: string; kernels: string }

/** `qkv serve --model model --threads threads --max-batch maxBatch --quiet` and any `extra` flags, on a free port. */
export function serve(model: string, maxBatch: number, threads: number, extra: string[] = []): Promise<Served> {
  const flags = ['--port', '0', '--threads', String(threads), '--max-batch', String(maxBatch), '--quiet', ...extra];
  const proc = spawn(process.execPath, [CLI, 'serve', '--model', model, ...flags], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /lab\s+(http:\/\/\S+\/)/.exec(out);
      if (m) resolve({ proc, base: m[1], kernels: /WebAssembly (\S+?),/.exec(out)?.[1] ?? '?' });
    });
    proc.once('exit', (code) => reject(new Error(`qkv serve exited with ${code}: ${out}`)));
  });
}

/** Stops a server and waits for it to exit. */
export async function stop(s: Served): Promise<void> {
  s.proc.kill('SIGTERM');
  await new Promise((r) => s.proc.once('exit', r));
}

export interface Client { ttft: number; gaps: number[]; tokens: number; done: boolean; retries: number; error: string | null }

/** One streaming client: retries 503s after Retry-After; times each event. */
export async function client(base: string, prompt: string, maxTokens: number): Promise<Client> {
  const c: Client = { ttft: NaN, gaps: [], tokens: 0, done: false, retries: 0, error: null };
  for (;;) {
    const t0 = performance.now();
    const r = await fetch(`${base}v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0, stream: true }),
    });
    if (r.status === 503) { c.retries++; await r.text(); await new Promise((s) => setTimeout(s, 1000 * Number(r.headers.get('retry-after') ?? 1))); continue; }
    if (r.status !== 200) { c.error = `HTTP ${r.status}`; return c; }
    const reader = r.body!.getReader();
    let last = t0;
    let buffered = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += new TextDecoder().decode(value);
      const events = buffered.split('\n\n');
      buffered = events.pop()!;
      for (const e of events) {
        const now = performance.now();
        if (e === 'data: [DONE]') { c.done = true; continue; }
        if (c.tokens === 0) c.ttft = now - t0; else c.gaps.push(now - last);
        last = now;
        c.tokens++;
      }
    }
    return c;
  }
}

/** A process's peak RSS in bytes (Linux). */
export function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}
