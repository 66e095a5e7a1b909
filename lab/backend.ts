// Where the model runs: in this page, with qkv's own modules (served from /qkv/), or on the qkv server that serves the
// page (/api/attention, /api/experiment, /v1/completions) when the page cannot load it. Everything through qkv's
// public API (src/index.ts), as any page would use it.
import {
  modelFromStream, Tokenizer, generateStream, useBrowserThreads, headMetrics, EXPERIMENTS, kernelVariant,
  type CausalLM, type ExperimentResult, type HeadMetrics, type LayerQkv, type ModelInfo,
} from '/qkv/index.js';
import type { Rows } from './draw.js';

/** One prompt through the model: its tokens, every layer × head map, the heads' metrics, and (in the page) q, k, v. */
export interface Attention {
  tokens: string[]; ids?: number[]; layers: number; heads: number;
  map(layer: number, head: number): Rows;
  metrics: HeadMetrics[];
  qkv?: LayerQkv[];
}

/** The next token's logits (or the server's top five log-probabilities) and each token's text. */
export interface NextLogits { logits: Float32Array; text(id: number): string; partial?: boolean }

export interface Backend {
  mode: 'browser' | 'server';
  threads?: number;
  /** The WebAssembly kernels' build in this page: relaxed-simd (fused multiply-add) or simd128. */
  variant?: string | null;
  gpuName?: string | null;
  info: ModelInfo;
  name: string;
  /** RoPE's base θ of the model (config rope_theta; 10000 when it has none). */
  ropeTheta: number;
  /** The model and tokenizer themselves, in the page (the views that run it step by step need them). */
  model?: CausalLM;
  tokenizer?: Tokenizer;
  attention(prompt: string): Promise<Attention>;
  nextLogits(prompt: string): Promise<NextLogits>;
  experiment(id: string, prompt: string): Promise<ExperimentResult>;
  generate(prompt: string, n: number, onText: (t: string) => void, device?: 'cpu' | 'webgpu'): Promise<void>;
}

// rope_theta of a config.json: transformers 5 (rope_parameters) or 4 (rope_theta)
function ropeThetaOf(config: { rope_theta?: number; rope_parameters?: { rope_theta?: number } }): number {
  return config.rope_parameters?.rope_theta ?? config.rope_theta ?? 10000;
}

// head h's rows of a [1, H, T, T] map
function slice(data: Float32Array, h: number, T: number): Float32Array[] {
  return Array.from({ length: T }, (_, i) => data.subarray((h * T + i) * T, (h * T + i + 1) * T));
}

/** The model in this page: the checkpoint from /model/, WebAssembly threads, WebGPU when the browser has it. */
export async function browserBackend(): Promise<Backend> {
  const get = async (f: string) => {
    const r = await fetch(`/model/${f}`);
    if (!r.ok) throw new Error(`${f}: HTTP ${r.status}`);
    return r;
  };
  const [config, weights, tokJson, tokCfg] = await Promise.all([
    get('config.json').then((r) => r.json()), get('model.safetensors'),
    get('tokenizer.json').then((r) => r.json()), get('tokenizer_config.json').then((r) => r.json()).catch(() => ({})),
  ]);
  // each tensor read from the response into its place (weight matrices: the kernels' memory), not the file whole first
  const model = await modelFromStream(config, weights.body!, Number(weights.headers.get('content-length'))) as CausalLM;
  const tokenizer = Tokenizer.fromJSON(tokJson, tokCfg);
  // the WebAssembly kernels on every core: Web Workers over shared memory (the server sends the cross-origin
  // isolation headers that SharedArrayBuffer needs; without them this stays at 1 thread)
  const threads = await useBrowserThreads('/qkv/kernels/wasm/kernel-worker-browser.js')
    .catch((e: unknown) => { console.warn('qkv: threads unavailable:', e); return 1; });
  // WebGPU when the browser offers an adapter: generation can then run with weights and KV cache on the GPU
  const adapter = navigator.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
  const gpuName = adapter
    ? [adapter.info?.vendor, adapter.info?.architecture || adapter.info?.description].filter(Boolean).join(' ') || 'WebGPU' : null;
  return {
    mode: 'browser', threads, gpuName, info: model.info, name: config.architectures?.[0] ?? 'model', model, tokenizer,
    ropeTheta: ropeThetaOf(config), variant: kernelVariant(),
    async nextLogits(prompt) {
      const ids = tokenizer.encode(prompt);
      const logits = model.forward([ids], { lastOnly: true }).logits.toFloat32();
      return { logits, text: (id) => tokenizer.decode([id]) };
    },
    async attention(prompt) {
      const ids = tokenizer.encode(prompt);
      if (ids.length > 128) throw new Error(`the prompt is ${ids.length} tokens; the lab shows at most 128`);
      const tokens = tokenizer.pieces(ids); // a character split over byte-level tokens shows whole, once
      const { attentions, qkv } = model.forward([ids], { outputAttentions: true, outputQkv: true });
      const maps = attentions!.map((a) => a.toFloat32());
      const metrics = attentions!.flatMap((a, l) => headMetrics(a, l, tokens));
      const map = (l: number, h: number) => slice(maps[l], h, ids.length);
      return { tokens, ids, layers: maps.length, heads: attentions![0].shape[1], map, metrics, qkv };
    },
    experiment: async (id, prompt) => EXPERIMENTS[id](model, tokenizer.encode(prompt)),
    async generate(prompt, n, onText, device = 'cpu') {
      for await (const t of generateStream(model, tokenizer, prompt, { maxTokens: n, greedy: true, device })) onText(t.text);
    },
  };
}

/** The qkv server that serves this page: the maps, experiments and completions over HTTP. */
export async function serverBackend(): Promise<Backend> {
  const post = async (path: string, body: unknown) => {
    const r = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const j = await r.json();
    if (!r.ok) throw new Error(j.error?.message ?? `HTTP ${r.status}`);
    return j;
  };
  const info = await (await fetch('/api/info')).json();
  return {
    mode: 'server', info: info.info, name: info.model, ropeTheta: ropeThetaOf(info.config ?? {}),
    async attention(prompt) {
      const last = await post('/api/attention', { prompt }) as Omit<Attention, 'map'> & { maps: number[][][][] };
      return { ...last, map: (l, h) => last.maps[l][h] };
    },
    experiment: (id, prompt) => post('/api/experiment', { id, prompt }),
    // the server gives the 5 most likely (logprobs); the rest of the vocabulary is unknown here
    async nextLogits(prompt) {
      const j = await post('/v1/completions', { prompt, max_tokens: 1, temperature: 0, logprobs: 5 });
      const first = j.choices[0].logprobs?.top_logprobs?.[0] as Record<string, number> | undefined;
      if (!first) throw new Error('the model would end the text here (its most likely next token is end-of-text)');
      const top = Object.entries(first);
      return { logits: Float32Array.from(top.map(([, lp]) => lp)), text: (i) => top[i][0], partial: true };
    },
    async generate(prompt, n, onText) {
      const body = JSON.stringify({ prompt, max_tokens: n, temperature: 0, stream: true });
      const r = await fetch('/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      if (!r.ok || !r.body) throw new Error((await r.json()).error?.message ?? `HTTP ${r.status}`);
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const line = buf.slice(0, cut).replace(/^data: /, '');
          buf = buf.slice(cut + 2);
          if (line !== '[DONE]') onText(JSON.parse(line).choices[0].text);
        }
      }
    },
  };
}
