// Calculators: the KV cache of any well-known model (MHA / GQA / MQA / MLA, every cache strategy), and the cost of
// attention as the sequence grows (FLOPs; memory of the materialised score matrix against the tiled kernel).
import { humanBytes, kvTable, KV_PRESETS, type KvShape } from '/qkv/index.js';
import { $, el, numberIn } from '../dom.js';
import { plot } from '../draw.js';
import { backend } from '../page.js';

export function renderKv(): void {
  const info = backend().info;
  const loaded: KvShape = {
    name: backend().name, layers: info.numLayers, heads: info.numHeads, kvHeads: info.numKvHeads, headDim: info.headDim,
    context: info.maxPositions,
  };
  const presets: Record<string, KvShape> = { [backend().name]: loaded, ...KV_PRESETS };
  const sel = $<HTMLSelectElement>('#kv-preset');
  if (!sel.options.length) {
    for (const [k, p] of Object.entries(presets)) sel.append(el('option', { value: k, textContent: p.name }));
    sel.value = 'llama-2-7b';
  }
  const rows = kvTable(presets[sel.value], {
    context: Math.max(1, numberIn('#kv-context', 1)), batch: Math.max(1, numberIn('#kv-batch', 1)),
    dtype: $<HTMLSelectElement>('#kv-dtype').value,
  });
  $('#kv-table').replaceChildren(el('tr', {}, ...['layout', 'cache', 'size', 'note'].map((t) => el('th', { textContent: t }))),
    ...rows.map((r) => el('tr', {}, el('td', { textContent: r.layout }), el('td', { textContent: r.cache }),
      el('td', { className: 'num', textContent: humanBytes(r.bytes) }), el('td', { textContent: r.note }))));
}

export function renderCost(): void {
  // one head, D = 128: FLOPs 4·L²·D (halved causal); memory: naive keeps L² scores, tiled keeps q, k, v, o + one tile
  const L = [512, 1024, 2048, 4096, 8192, 16384, 32768];
  const D = 128;
  $('#flops-plot').replaceChildren(plot({ xLabel: 'sequence length L', yLabel: 'GFLOP (causal)', x: L,
    lines: [{ name: 'naive = tiled', y: L.map((l) => (2 * l * l * D) / 1e9) }] }));
  $('#memory-plot').replaceChildren(plot({ xLabel: 'sequence length L', yLabel: 'bytes of memory', x: L, lines: [
    { name: 'naive', y: L.map((l) => 4 * l * l + 16 * l * D) }, { name: 'tiled', y: L.map((l) => 16 * l * D + 4 * 64 * 64) }] }));
}
