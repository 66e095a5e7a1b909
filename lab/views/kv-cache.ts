// The KV cache while generating, on the model in the page: what it saves (K/V rows computed with and without it,
// and the time), what it costs per token for MHA / GQA / MQA / MLA, a paged cache's block tables when two prompts
// share a prefix (copy-on-write when they part), what a sliding window and attention sinks keep, and int8's error.
import {
  ContiguousKVCache, humanBytes, Int8Matrix, kvCacheBytes, kvTable, KV_PRESETS, PagedKVCache, Tensor, type CausalLM,
} from '/qkv/index.js';
import { headScores, softmax } from '../attend.js';
import { $, el, fmt, numberIn } from '../dom.js';
import { plot } from '../draw.js';
import { backend, page, whenSelected } from '../page.js';

const argmax = (l: Float32Array) => l.reduce((best, x, i) => (x > l[best] ? i : best), 0);

// greedy tokens, and the milliseconds they took: with a KV cache (one new row per step) or recomputing the prefix
function decode(model: CausalLM, prompt: number[], n: number, cached: boolean): { ids: number[]; ms: number } {
  const t0 = performance.now();
  const ids = [...prompt];
  const cache = cached ? new ContiguousKVCache(model.info.numLayers) : undefined;
  let logits = model.forward([ids], { cache, lastOnly: true }).logits.toFloat32();
  for (let t = 0; t < n; t++) {
    ids.push(argmax(logits));
    if (t < n - 1) logits = model.forward([cached ? [ids[ids.length - 1]] : ids], { cache, lastOnly: true }).logits.toFloat32();
  }
  return { ids: ids.slice(prompt.length), ms: performance.now() - t0 };
}

/** What the cache saves: rows of K and V computed per step, and the time, measured both ways. */
function savings(model: CausalLM, prompt: number[]): HTMLElement {
  const n = 16;
  const withCache = decode(model, prompt, n, true);
  const without = decode(model, prompt, n, false);
  const P = prompt.length;
  const steps = Array.from({ length: n }, (_, t) => t + 1);
  const same = withCache.ids.every((id, i) => id === without.ids[i]);
  const L = model.info.numLayers;
  return el('div', {},
    plot({ xLabel: 'generated tokens', yLabel: 'K/V rows computed (per layer and kv head)', x: steps, lines: [
      { name: 'without a cache (the whole prefix again)', y: steps.map((t) => P * t + (t * (t - 1)) / 2) },
      { name: 'with the cache (one new row a step)', y: steps.map((t) => P + t - 1) }] }, 440, 200),
    el('p', { className: 'measured', textContent: `Measured here, ${n} tokens after this ${P}-token prompt: ` +
      `${Math.round(withCache.ms)} ms with the cache, ` +
      `${Math.round(without.ms)} ms without (${(without.ms / withCache.ms).toFixed(1)}×); ` +
      `the same tokens both ways: ${same ? 'yes' : 'no'}. ` +
      `The cache holds ${P + n - 1} rows of K and V in each of ${L} layers instead of recomputing them.` }));
}

/** Bytes per token of the loaded model's cache as MHA, GQA (as trained) and MQA; DeepSeek-V3's MLA beside its MHA. */
function bytesPerToken(): HTMLElement {
  const info = backend().info;
  const own = {
    name: backend().name, layers: info.numLayers, heads: info.numHeads, kvHeads: info.numKvHeads, headDim: info.headDim,
  };
  const rows = kvTable(own, { context: 1, batch: 1, dtype: 'f16' }).filter((r) => r.cache === 'contiguous f16');
  const ds = kvTable(KV_PRESETS['deepseek-v3'], { context: 1, batch: 1, dtype: 'f16' }).filter((r) => r.cache === 'contiguous f16');
  const llama = KV_PRESETS['llama-2-7b'];
  const folklore = kvCacheBytes(llama, 2, 4096, 32);
  const tr = (a: string, b: string) => el('tr', {}, el('td', { textContent: a }), el('td', { className: 'num', textContent: b }));
  return el('div', {},
    el('table', { className: 'table' },
      el('tr', {}, el('th', { textContent: 'layout (f16)' }), el('th', { textContent: 'bytes per token' })),
      ...rows.map((r) => tr(`${own.name}: ${r.layout}`, humanBytes(r.bytes))),
      ...ds.filter((r) => /MHA|MLA/.test(r.layout)).map((r) => tr(`DeepSeek-V3: ${r.layout}`, humanBytes(r.bytes)))),
    el('p', { className: 'hint', textContent: `Per token: 2 (K and V) × layers × kv heads × head_dim × 2 bytes. Folklore check: ` +
      `Llama-2-7B (MHA, 32 layers × 32 heads × 128) at 4,096 tokens × batch 32 in f16 is ${humanBytes(folklore)}, ` +
      'not “about 2 GB”; ' +
      `GQA divides it by Hq/Hkv (Llama-3-8B: 4×), not by the number of heads.` }));
}

/** Two prompts on one paged cache: B forks A's blocks, then writes past the shared prefix (copy-on-write). */
function blockTables(model: CausalLM, a: number[], b: number[]): HTMLElement {
  const cache = new PagedKVCache(model.info.numLayers, { blockSize: 4, numBlocks: 32, maxBlocks: 32 });
  let shared = 0;
  while (shared < Math.min(a.length, b.length) - 1 && a[shared] === b[shared]) shared++;
  cache.batch = [0];
  model.forward([a], { cache, lastOnly: true });
  cache.fork(0, 1); // B starts as A's first `shared` tokens, its blocks shared by reference
  cache.truncate(1, shared);
  const before = cache.blockTable(1);
  cache.batch = [1];
  model.forward([b.slice(shared)], { cache, lastOnly: true });
  const after = cache.blockTable(1);
  const copied = before.findIndex((blk, i) => after[i] !== blk);
  const row = (name: string, id: number) => el('div', { className: 'block-row' },
    el('span', { className: 'block-name', textContent: name }),
    ...cache.blockTable(id).map((blk, i) => {
      const refs = cache.allocator.refCount(blk);
      const cls = refs > 1 ? 'shared' : id === 1 && i === copied ? 'cow' : 'own';
      const title = `block ${blk}: ${refs} owner${refs > 1 ? 's' : ''}`;
      return el('span', { className: `block ${cls}`, textContent: String(blk), title });
    }));
  const cow = copied >= 0
    ? `B's prefix ended inside block ${before[copied]}, which A still uses: B's first write there made a private copy, ` +
      `block ${after[copied]} (copy-on-write).`
    : 'B\'s prefix ended on a block boundary: B only appended new blocks; nothing had to be copied.';
  return el('div', {}, row('A', 0), row('B', 1),
    el('p', { className: 'hint', textContent: `Blocks of 4 tokens. A has ${a.length} tokens, B ${b.length}, ` +
      `the first ${shared} the same: ` +
      `${Math.floor(shared / 4)} whole block(s) stored once for both (purple). ${cow} ` +
      `${cache.allocator.usedBlocks} blocks in use instead of ${cache.blocksFor(a.length) + cache.blocksFor(b.length)}.` }));
}

/** Which positions a sliding window of W and K sinks keep when the cache is at length T. */
function kept(): HTMLElement {
  const T = 40, W = Math.max(1, numberIn('#kv-window', 8)), K = Math.max(0, numberIn('#kv-sinks', 4));
  const labelled = (name: string, row: HTMLElement) =>
    el('div', { className: 'block-row' }, el('span', { className: 'block-name', textContent: name }), row);
  const cells = (keep: (j: number) => boolean) => el('div', { className: 'slots' },
    ...Array.from({ length: T }, (_, j) => el('span', { className: `slot ${keep(j) ? 'kept' : 'evicted'}`, title: `position ${j}` })));
  return el('div', {},
    labelled('window', cells((j) => j >= T - W)),
    labelled('sinks', cells((j) => j < K || j >= T - (W - K))),
    el('p', { className: 'hint', textContent: `At ${T} tokens: a sliding window keeps the last ${W} (Mistral); attention sinks ` +
      `(StreamingLLM) keep the first ${K} — where attention piles up — plus the last ${Math.max(0, W - K)}, the same ${W} slots. ` +
      'Memory stays bounded at any length.' }));
}

/** int8 keys (a scale per token and head, as qkv's int8 cache stores them): the error, and what it does to attention. */
function int8Error(): HTMLElement | null {
  const qkv = page.state?.qkv;
  if (!qkv) return null;
  let maxRel = 0, maxDp = 0;
  const { layer, head } = page.selected;
  for (const [l, a] of qkv.entries()) {
    const [, Hkv, T, D] = a.k.shape;
    const ka = a.k.toFloat32();
    // qkv's int8 rule, as its int8 cache stores keys: x8 = round(x / s), s = max|x| / 127 per row (token, head)
    const q8 = Int8Matrix.quantize(Tensor.from(ka, [Hkv * T, D]));
    const k8 = q8.dequantize().toFloat32();
    k8.forEach((x, e) => { maxRel = Math.max(maxRel, Math.abs(x - ka[e]) / (127 * q8.scales[Math.floor(e / D)] || 1)); });
    if (l !== layer) continue;
    for (let i = 0; i < T; i++) {
      const [p0, p1] = [softmax(headScores(a, head, i, (j) => j > i, ka)), softmax(headScores(a, head, i, (j) => j > i, k8))];
      p0.forEach((x, j) => { maxDp = Math.max(maxDp, Math.abs(x - p1[j])); });
    }
  }
  return el('p', { className: 'measured', textContent: `int8 keys of this prompt: the largest error is ${fmt(100 * maxRel)}% ` +
      'of a row\'s largest value; ' +
    `layer ${layer} head ${head}'s attention weights move by at most ${fmt(maxDp)} — at a quarter of f32's bytes ` +
    '(plus a scale per row).' });
}

export async function renderKvCache(): Promise<void> {
  const b = backend();
  const box = $('#kv-views');
  if (!b.model || !b.tokenizer || !page.state?.ids) {
    const why = 'This view runs the model in the page (the server sends the maps only).';
    box.replaceChildren(el('p', { className: 'hint', textContent: why }));
    renderKept();
    return;
  }
  const tok = b.tokenizer;
  // B is A's first 14 tokens, then its own ending: the shared prefix ends inside a block (blocks of 4)
  const a = tok.encode('The Zen of Python, by Tim Peters. Beautiful is better than ugly.');
  const other = [...a.slice(0, 14), ...tok.encode(' Explicit is better than implicit.')];
  box.replaceChildren(
    el('h3', { textContent: 'What the cache saves' }), savings(b.model, page.state.ids.slice(0, 64)),
    el('h3', { textContent: 'What it costs, per token' }), bytesPerToken(),
    el('h3', { textContent: 'Paged: two prompts, one prefix' }),
    el('p', { className: 'hint', textContent: `A: ${JSON.stringify(tok.decode(a))} · B: ${JSON.stringify(tok.decode(other))}` }),
    blockTables(b.model, a, other),
  );
  renderKept();
  $('#kv-int8').replaceChildren(int8Error() ?? el('p'));
}

/** Redraws what the window and sinks controls change. */
export function renderKept(): void {
  $('#kv-kept').replaceChildren(kept());
}

// int8's effect on the attention weights is measured on the selected head
whenSelected(() => { if (page.state?.qkv) $('#kv-int8').replaceChildren(int8Error() ?? el('p')); });
