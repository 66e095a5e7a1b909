// Prometheus metrics of `qkv serve` (text exposition format 0.0.4, served at GET /metrics): counters and histograms the
// server updates as requests run, and gauges read from the batch engine at scrape time.
//   qkv_requests_total{endpoint,status}   qkv_prompt_tokens_total   qkv_generation_tokens_total
//   qkv_time_to_first_token_seconds       qkv_inter_token_latency_seconds       qkv_request_duration_seconds
//   qkv_batch_size  qkv_running  qkv_waiting  qkv_kv_blocks{state}  qkv_prefix_cache_{lookups,hits}_total ...
//   qkv_outside_batch_{running,waiting}  qkv_prompt_tokens_scored_total (echoed prompts' scores, the lab's maps: in turn)
//   qkv_prefill_budget_tokens  qkv_prefill_seconds_per_token (what --max-stall lets a step prefill, and the speed it uses)
import type { EngineStats } from '../../generate/engine.js';

class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(readonly name: string, readonly help: string, readonly bounds: readonly number[]) {
    this.counts = new Array(bounds.length).fill(0);
  }

  observe(x: number): void {
    this.sum += x;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) if (x <= this.bounds[i]) this.counts[i]++;
  }

  text(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.bounds.forEach((b, i) => lines.push(`${this.name}_bucket{le="${b}"} ${this.counts[i]}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return lines.join('\n');
  }
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** What the server counts; `text()` renders it with the engine's current state. */
export class ServerMetrics {
  private readonly requests = new Map<string, number>();
  promptTokens = 0;
  generationTokens = 0;
  aborted = 0;
  promptTokensScored = 0;
  readonly ttft = new Histogram('qkv_time_to_first_token_seconds', 'Time from request to first generated token.', SECONDS);
  readonly interToken = new Histogram('qkv_inter_token_latency_seconds', 'Time between consecutive tokens of a request.', SECONDS);
  readonly duration = new Histogram('qkv_request_duration_seconds', 'Time from request to its last byte.', SECONDS);
  readonly batch = new Histogram('qkv_batch_size', 'Sequences in a decode step.', [1, 2, 4, 8, 16, 32, 64, 128]);

  request(endpoint: string, status: number): void {
    const key = `endpoint="${endpoint}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  /** The exposition text; `engine` is the batch engine's state now, `outside` the queue of model work outside it. */
  text(engine: EngineStats, outside: { running: number; waiting: number }): string {
    const metric = (name: string, type: 'counter' | 'gauge', help: string, values: [string, number][]) => [
      `# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...values.map(([labels, v]) => `${name}${labels ? `{${labels}}` : ''} ${v}`),
    ].join('\n');
    const blocks: [string, number][] = [['state="used"', engine.blocksUsed], ['state="free"', engine.blocksFree]];
    return [
      metric('qkv_requests_total', 'counter', 'Requests answered, by endpoint and HTTP status.', [...this.requests]),
      metric('qkv_prompt_tokens_total', 'counter', 'Prompt tokens of generation requests.', [['', this.promptTokens]]),
      metric('qkv_generation_tokens_total', 'counter', 'Tokens generated.', [['', this.generationTokens]]),
      metric('qkv_aborted_total', 'counter', 'Generations stopped because the client went away.', [['', this.aborted]]),
      this.ttft.text(), this.interToken.text(), this.duration.text(), this.batch.text(),
      metric('qkv_running', 'gauge', 'Generations in the running batch.', [['', engine.running]]),
      metric('qkv_waiting', 'gauge', 'Generations waiting for admission.', [['', engine.waiting]]),
      metric('qkv_kv_blocks', 'gauge', 'KV-cache blocks by state.', blocks),
      metric('qkv_kv_blocks_total', 'gauge', 'KV-cache blocks in the pool.', [['', engine.blocksTotal]]),
      metric('qkv_prefix_cache_prefixes', 'gauge', 'Prompt prefixes held in the KV cache.', [['', engine.prefixesCached]]),
      metric('qkv_prefix_cache_lookups_total', 'counter', 'Admissions that looked for a cached prefix.', [['', engine.prefixLookups]]),
      metric('qkv_prefix_cache_hits_total', 'counter', 'Admissions that reused a cached prefix.', [['', engine.prefixHits]]),
      metric('qkv_prefix_cache_tokens_reused_total', 'counter', 'Prompt tokens not computed again.', [['', engine.prefixTokensReused]]),
      metric('qkv_engine_ticks_total', 'counter', 'Batch engine steps.', [['', engine.ticks]]),
      metric('qkv_prefill_budget_tokens', 'gauge', 'Prompt tokens a step would prefill now (--max-stall).', [['', engine.prefillBudget]]),
      metric('qkv_prefill_seconds_per_token', 'gauge', 'Measured prefill time a token (NaN: none yet).',
        [['', engine.prefillMsPerToken / 1000]]),
      metric('qkv_outside_batch_running', 'gauge', 'Requests running model work outside the batch.', [['', outside.running]]),
      metric('qkv_outside_batch_waiting', 'gauge', 'Requests waiting for model work outside the batch.', [['', outside.waiting]]),
      metric('qkv_prompt_tokens_scored_total', 'counter', 'Prompt tokens scored (echo with logprobs).', [['', this.promptTokensScored]]),
    ].join('\n') + '\n';
  }
}
