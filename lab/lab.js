// The Attention Lab: runs the model in the page with qkv's own modules (served from /qkv/), and falls back to the
// server's API (/api/attention, /api/experiment, /v1/completions) when the page cannot load it.
// everything through qkv's public API (src/index.ts), as any page would use it
import {
  modelFromBytes, Tokenizer, generateStream, kvTable, KV_PRESETS, humanBytes, useBrowserThreads, headMetrics, EXPERIMENTS,
} from '/qkv/index.js';

const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
};
const fmt = (x) => (Math.abs(x) >= 1e5 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(2) : Number.isInteger(x) ? String(x) : x.toFixed(Math.abs(x) < 1 ? 4 : 3));
// a measured value with its unit: bytes as KiB/MiB/GiB, never 4.36e+9
const withUnit = (x, unit) => (unit === 'bytes' ? humanBytes(x) : `${fmt(x)}${unit ? ` ${unit}` : ''}`);

// ---- backends: the model in this page, or the server --------------------------------------------------------

async function browserBackend() {
  const get = async (f) => { const r = await fetch(`/model/${f}`); if (!r.ok) throw new Error(`${f}: HTTP ${r.status}`); return r; };
  const [config, weights, tokJson, tokCfg] = await Promise.all([
    get('config.json').then((r) => r.json()), get('model.safetensors').then((r) => r.arrayBuffer()),
    get('tokenizer.json').then((r) => r.json()), get('tokenizer_config.json').then((r) => r.json()).catch(() => ({})),
  ]);
  const model = modelFromBytes(config, [new Uint8Array(weights)]);
  const tokenizer = Tokenizer.fromJSON(tokJson, tokCfg);
  // the WebAssembly kernels on every core: Web Workers over shared memory (the server sends the cross-origin
  // isolation headers that SharedArrayBuffer needs; without them this stays at 1 thread)
  const threads = await useBrowserThreads('/qkv/kernels/wasm/kernel-worker-browser.js').catch((e) => { console.warn('qkv: threads unavailable:', e); return 1; });
  // WebGPU when the browser offers an adapter: generation can then run with weights and KV cache on the GPU
  const adapter = navigator.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
  const gpuName = adapter ? [adapter.info?.vendor, adapter.info?.architecture || adapter.info?.description].filter(Boolean).join(' ') || 'WebGPU' : null;
  return {
    mode: 'browser', threads, gpuName, info: model.info, name: config.architectures?.[0] ?? 'model',
    // the logits of the token after the prompt, over the whole vocabulary, with each token's text
    nextLogits(prompt) {
      const ids = tokenizer.encode(prompt);
      const logits = model.forward([ids], { lastOnly: true }).logits.toFloat32();
      return { logits, text: (id) => tokenizer.decode([id]) };
    },
    attention(prompt) {
      const ids = tokenizer.encode(prompt);
      if (ids.length > 128) throw new Error(`the prompt is ${ids.length} tokens; the lab shows at most 128`);
      const tokens = tokenizer.pieces(ids); // a character split over byte-level tokens shows whole, once
      const { attentions, qkv } = model.forward([ids], { outputAttentions: true, outputQkv: true });
      const metrics = attentions.flatMap((a, l) => headMetrics(a, l, tokens));
      return { tokens, ids, layers: attentions.length, heads: attentions[0].shape[1], map: (l, h) => slice(attentions[l].toFloat32(), h, ids.length), metrics, qkv };
    },
    experiment: (id, prompt) => EXPERIMENTS[id](model, tokenizer.encode(prompt)),
    async generate(prompt, n, onText, device = 'cpu') {
      for await (const t of generateStream(model, tokenizer, prompt, { maxTokens: n, greedy: true, device })) onText(t.text);
    },
  };
}

function slice(data, h, T) {
  return Array.from({ length: T }, (_, i) => data.subarray((h * T + i) * T, (h * T + i + 1) * T));
}

async function serverBackend() {
  const post = async (path, body) => {
    const r = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const j = await r.json();
    if (!r.ok) throw new Error(j.error?.message ?? `HTTP ${r.status}`);
    return j;
  };
  const info = await (await fetch('/api/info')).json();
  let last = null;
  return {
    mode: 'server', info: info.info, name: info.model,
    async attention(prompt) {
      last = await post('/api/attention', { prompt });
      return { ...last, map: (l, h) => last.maps[l][h] };
    },
    experiment: (id, prompt) => post('/api/experiment', { id, prompt }),
    // the server gives the 5 most likely (logprobs); the rest of the vocabulary is unknown here
    async nextLogits(prompt) {
      const j = await post('/v1/completions', { prompt, max_tokens: 1, temperature: 0, logprobs: 5 });
      const first = j.choices[0].logprobs?.top_logprobs?.[0];
      if (!first) throw new Error('the model would end the text here (its most likely next token is end-of-text)');
      const top = Object.entries(first);
      return { logits: Float32Array.from(top.map(([, lp]) => lp)), text: (i) => top[i][0], partial: true };
    },
    async generate(prompt, n, onText) {
      const r = await fetch('/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt, max_tokens: n, temperature: 0, stream: true }) });
      if (!r.ok) throw new Error((await r.json()).error?.message);
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

// ---- heatmaps ---------------------------------------------------------------------------------------------------

// viridis, sampled: readable on light and dark backgrounds
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function color(p) {
  const x = Math.min(1, Math.sqrt(Math.max(0, p))) * (STOPS.length - 1); // sqrt: small weights stay visible
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  return STOPS[i].map((c, k) => Math.round(c + f * (STOPS[i + 1][k] - c)));
}

// masked cells (a key after its query: the causal mask) as a grey checker, so they never read as a weight of zero
const MASKED = [[150, 150, 150], [190, 190, 190]];
function drawMap(canvas, rows, highlight = -1) {
  const T = rows.length;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(T, T);
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
    const [r, g, b] = j > i ? MASKED[(i + j) % 2] : color(rows[i][j]);
    const o = (i * T + j) * 4;
    const dim = highlight >= 0 && i !== highlight && j !== highlight ? 0.35 : 1;
    img.data[o] = r * dim; img.data[o + 1] = g * dim; img.data[o + 2] = b * dim; img.data[o + 3] = 255;
  }
  if (canvas.width !== T) { canvas.width = T; canvas.height = T; }
  ctx.putImageData(img, 0, 0);
}

// ---- the page ---------------------------------------------------------------------------------------------------

let backend = null;
let state = null; // { tokens, map, metrics, layers, heads }
let selected = { layer: 0, head: 0 };

function status(text) { $('#status').textContent = text; }

// the prompt, or null (and a sentence in the status line) when there is nothing to run
function promptOrSay() {
  const prompt = $('#prompt').value;
  if (prompt.trim() !== '') return prompt;
  status('Type a prompt first: the model needs at least one token to attend over.');
  return null;
}

async function run() {
  const prompt = promptOrSay();
  if (prompt === null) return;
  status('running the model…');
  await new Promise((r) => setTimeout(r, 10)); // let the status paint before the page computes
  try {
    const t0 = performance.now();
    state = await backend.attention(prompt);
    status(`${state.tokens.length} tokens · ${state.layers} layers × ${state.heads} heads · ${(performance.now() - t0).toFixed(0)} ms (${backend.mode === 'browser' ? `in this page, ${backend.threads} thread${backend.threads > 1 ? 's' : ''}` : 'on the server'})`);
    renderTokens();
    renderGrid();
    select(selected.layer, selected.head);
    $('#step-query').replaceChildren(); // new tokens: the query list is rebuilt, on the last token
    renderStep();
    await updateNext(prompt);
  } catch (e) {
    status(`error: ${e.message}`);
  }
}

function renderTokens() {
  const box = $('#tokens');
  box.replaceChildren(...state.tokens.map((t, i) => {
    const chip = el('span', { className: 'tok', tabIndex: 0, textContent: t.replace(/\n/g, '⏎') || '·', title: `token ${i}` });
    const on = () => hoverToken(i);
    chip.addEventListener('mouseenter', on);
    chip.addEventListener('focus', on);
    chip.addEventListener('mouseleave', () => hoverToken(-1));
    chip.addEventListener('blur', () => hoverToken(-1));
    return chip;
  }));
}

function hoverToken(i) {
  const rows = state.map(selected.layer, selected.head);
  drawMap($('#big'), rows, i);
  const chips = [...document.querySelectorAll('.tok')];
  chips.forEach((c, j) => {
    c.classList.toggle('src', j === i);
    const p = i >= 0 && j !== i ? rows[i][j] : 0;
    c.style.background = p > 0 ? `rgba(245, 158, 11, ${Math.min(0.9, Math.sqrt(p))})` : '';
  });
  const info = $('#hover-info');
  if (!info) return;
  if (i < 0) { info.textContent = 'Hover or focus a token above: it lights up the tokens it attends to (orange) and its row and column here.'; return; }
  const top = (vals) => [...vals.keys()].sort((a, b) => vals[b] - vals[a]).slice(0, 3).map((j) => `“${state.tokens[j]}” ${(100 * vals[j]).toFixed(0)}%`).join(', ');
  const col = rows.map((r) => r[i]);
  info.textContent = `“${state.tokens[i]}” attends to ${top(rows[i])}; it is attended by ${top(col)}.`;
}

function renderGrid() {
  const grid = $('#grid');
  grid.style.setProperty('--heads', state.heads);
  // GQA: query head h reads kv head ⌊h / G⌋, G = Hq / Hkv; heads of one group share a colour bar
  const Hkv = backend.info.numKvHeads || state.heads;
  const G = state.heads / Hkv;
  $('#gqa-note').textContent = G > 1
    ? `GQA: ${state.heads} query heads read ${Hkv} key/value heads — the ${G} heads under one colour bar share their keys and values.`
    : `MHA: each of the ${state.heads} heads has its own keys and values.`;
  const cells = [];
  for (let l = 0; l < state.layers; l++) for (let h = 0; h < state.heads; h++) {
    const m = state.metrics.find((x) => x.layer === l && x.head === h);
    const kv = Math.floor(h / G);
    const canvas = el('canvas', { width: state.tokens.length, height: state.tokens.length });
    drawMap(canvas, state.map(l, h));
    const label = `L${l} H${h}${G > 1 ? ` · kv${kv}` : ''} · ${m.pattern}`;
    const cell = el('button', { className: 'cell heatmap', type: 'button', title: `layer ${l}, head ${h}: ${m.pattern}` }, canvas, el('span', { textContent: label }));
    if (G > 1) cell.style.borderTop = `4px solid hsl(${Math.round((360 * kv) / Hkv)} 65% 50%)`;
    cell.setAttribute('role', 'listitem');
    cell.setAttribute('aria-label', `layer ${l} head ${h}${G > 1 ? `, kv head ${kv}` : ''}, ${m.pattern}; enlarge`);
    cell.dataset.layer = l; cell.dataset.head = h;
    cell.addEventListener('click', () => select(l, h));
    cells.push(cell);
  }
  grid.replaceChildren(...cells);
}

function select(l, h) {
  selected = { layer: l, head: h };
  document.querySelectorAll('.cell').forEach((c) => c.classList.toggle('selected', +c.dataset.layer === l && +c.dataset.head === h));
  const m = state.metrics.find((x) => x.layer === l && x.head === h);
  $('#detail').hidden = false;
  drawMap($('#big'), state.map(l, h));
  const row = (k, v) => el('tr', {}, el('td', { textContent: k }), el('td', { className: 'num', textContent: v }));
  $('#detail-info').replaceChildren(
    el('h3', { textContent: `Layer ${l}, head ${h}: ${m.pattern}` }),
    el('table', { className: 'table' },
      row('entropy (nats)', fmt(m.entropy)), row('sparsity (0 = uniform, 1 = one key)', fmt(m.sparsity)),
      row('mean distance (tokens)', fmt(m.distance)), row(`pattern strength`, fmt(m.strength)),
      row('most attended', m.topTokens.map((t) => `“${t.token}”`).join(' '))),
    el('p', { id: 'hover-info', className: 'hint' }),
    el('p', { className: 'hint', textContent: 'Rows are queries (each token), columns are keys it may look at; the causal mask hides '
      + 'the upper triangle (grey checks). Colour: viridis on √weight — dark purple is 0, yellow is 1.' }),
  );
  hoverToken(-1);
  renderStep();
}

async function generate() {
  if (promptOrSay() === null) return;
  const out = $('#generation');
  out.textContent = $('#prompt').value;
  const device = $('#use-webgpu').checked ? 'webgpu' : 'cpu';
  status(`generating${device === 'webgpu' ? ' on WebGPU' : ''}…`);
  try {
    const t0 = performance.now();
    let tokens = 0;
    await backend.generate($('#prompt').value, Math.min(200, Math.max(1, +$('#max-tokens').value || 40)), (t) => { tokens++; out.textContent += t; }, device);
    const where = backend.mode === 'server' ? 'on the server' : device === 'webgpu' ? `on WebGPU (${backend.gpuName})` : 'on the CPU in this page';
    status(`generation done · ${tokens} tokens in ${(performance.now() - t0).toFixed(0)} ms ${where}`);
    document.body.dataset.generatedOn = backend.mode === 'server' ? 'server' : device;
  } catch (e) {
    status(`error: ${e.message}`);
  }
}

// ---- one head, step by step -------------------------------------------------------------------------------------

// a vector as a strip of cells, blue (negative) to red (positive), scaled by its largest |value|
function strip(values, title) {
  const c = el('canvas', { width: values.length, height: 1, className: 'strip', title });
  const ctx = c.getContext('2d');
  const img = ctx.createImageData(values.length, 1);
  const top = Math.max(1e-9, ...Array.from(values, Math.abs));
  values.forEach((x, d) => {
    const t = x / top; // −1 … 1
    const [r, g, b] = t >= 0 ? [255, 255 * (1 - t), 255 * (1 - t)] : [255 * (1 + t), 255 * (1 + t), 255];
    img.data.set([r, g, b, 255], 4 * d);
  });
  ctx.putImageData(img, 0, 0);
  return c;
}

// the selected head for one query token: q, every key, q·k, × scale, the mask, softmax, and o = Σ p v — the numbers the
// kernels compute (src/kernels/cpu/sdpa-naive.ts), from the q, k and v the model used (forward's outputQkv)
function renderStep() {
  const box = $('#step');
  if (!state?.qkv) {
    box.replaceChildren(el('p', { className: 'hint', textContent: 'This view needs the model in the page (the server sends the maps only).' }));
    return;
  }
  const T = state.tokens.length;
  const sel = $('#step-query');
  if (sel.options.length !== T) {
    sel.replaceChildren(...state.tokens.map((t, i) => el('option', { value: String(i), textContent: `${i}: ${JSON.stringify(t)}` })));
    sel.value = String(T - 1);
  }
  const i = Math.min(T - 1, +sel.value);
  const { layer: l, head: h } = selected;
  const { q, k, v, scale } = state.qkv[l];
  const [, Hq, , D] = q.shape;
  const Hkv = k.shape[1];
  const kvh = Math.floor(h / (Hq / Hkv));
  const [qa, ka, va] = [q.toFloat32(), k.toFloat32(), v.toFloat32()];
  const row = (a, head, j) => a.subarray(((head * T) + j) * D, ((head * T) + j + 1) * D);
  const qi = row(qa, h, i);
  // s_j = scale · q_i · k_j for the keys the causal mask allows (j ≤ i); p = softmax(s); o = Σ_j p_j v_j
  const s = Array.from({ length: T }, (_, j) => (j > i ? -Infinity : scale * row(ka, kvh, j).reduce((acc, x, d) => acc + x * qi[d], 0)));
  const m = Math.max(...s);
  const e = s.map((x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b, 0);
  const p = e.map((x) => x / z);
  const o = new Float32Array(D);
  for (let j = 0; j <= i; j++) row(va, kvh, j).forEach((x, d) => { o[d] += p[j] * x; });
  const mapRow = state.map(l, h)[i];
  const diff = Math.max(...p.map((x, j) => Math.abs(x - mapRow[j])));
  const num = (x, cls = '') => el('td', { className: `num ${cls}`, textContent: x });
  box.replaceChildren(
    el('p', { textContent: `Layer ${l}, head ${h}${Hkv < Hq ? ` (reads kv head ${kvh}, shared by ${Hq / Hkv} query heads)` : ''} · head_dim d = ${D} · ` +
      `scale = ${scale.toFixed(4)} (1/√d = ${(1 / Math.sqrt(D)).toFixed(4)})` }),
    el('div', { className: 'step-q' }, el('span', { textContent: `q of “${state.tokens[i]}”` }), strip(qi, 'q (blue < 0 < red)')),
    el('table', { className: 'table step' },
      el('tr', {}, ...['key token', 'k_j', 'q·k_j', '× scale', 'softmax p_j', ''].map((t) => el('th', { textContent: t }))),
      ...state.tokens.map((t, j) => {
        const masked = j > i;
        const dot = masked ? NaN : s[j] / scale;
        return el('tr', { className: masked ? 'masked' : '' }, el('td', { textContent: JSON.stringify(t) }),
          el('td', {}, strip(row(ka, kvh, j), `k_${j}`)),
          num(masked ? 'masked' : dot.toFixed(3)), num(masked ? '−∞' : s[j].toFixed(3)),
          el('td', {}, el('div', { className: 'bar', style: `width: ${(100 * p[j]).toFixed(1)}%` })), num(masked ? '0' : `${(100 * p[j]).toFixed(1)}%`));
      })),
    el('div', { className: 'step-q' }, el('span', { textContent: 'o = Σ p_j v_j' }), strip(o, 'the head output for this token')),
    el('p', { className: 'hint', textContent: `s_j = q·k_j × scale; keys after the query are masked (−∞, so p_j = 0); p = softmax(s); ` +
      `o = Σ_j p_j v_j — the loop of src/kernels/cpu/sdpa-naive.ts. These p_j match the attention map's row (max |Δ| = ${diff.toExponential(1)}).` }),
  );
  box.dataset.maxDiff = String(diff);
}

// ---- next token: temperature, top-k, top-p ---------------------------------------------------------------------

let next = null; // { logits, text, partial }

// p_i = softmax(l_i / T), then top-k and top-p cut (kept renormalised); the 12 most likely with their fate
function sampling() {
  const T = +$('#temperature').value, k = +$('#top-k').value || 0, topP = +$('#top-p').value || 1;
  const l = next.logits;
  const order = [...l.keys()].sort((a, b) => l[b] - l[a]);
  const m = l[order[0]];
  const e = order.map((i) => Math.exp((l[i] - m) / T));
  const sum = e.reduce((a, b) => a + b, 0);
  const p = e.map((x) => x / sum);
  let kept = k > 0 ? Math.min(k, p.length) : p.length;
  let mass = 0, n = 0;
  while (n < kept && mass < topP) mass += p[n++];
  kept = Math.max(1, n);
  const keptSum = p.slice(0, kept).reduce((a, b) => a + b, 0);
  return order.map((id, r) => ({ id, p: p[r], kept: r < kept, q: r < kept ? p[r] / keptSum : 0 }));
}

function renderNext(picked = -1) {
  if (!next) return;
  $('#temperature-value').textContent = (+$('#temperature').value).toFixed(2);
  const rows = sampling().slice(0, 12);
  $('#next-bars').replaceChildren(...rows.flatMap((r) => {
    const cls = `${r.kept ? '' : 'out'} ${r.id === picked ? 'picked' : ''}`;
    const label = el('span', { className: `label ${cls}`, textContent: JSON.stringify(next.text(r.id)) });
    label.setAttribute('role', 'listitem');
    return [label, el('span', { className: cls }, el('div', { className: 'bar', style: `width: ${(100 * r.p).toFixed(1)}%` })),
      el('span', { className: `num ${cls}`, textContent: r.kept ? `${(100 * r.q).toFixed(1)}%` : 'cut' })];
  }));
}

async function updateNext(prompt) {
  try {
    next = await backend.nextLogits(prompt);
    $('#sampled').textContent = next.partial ? 'the server gives the five most likely tokens only' : '';
    renderNext();
  } catch (e) {
    $('#sampled').textContent = `error: ${e.message}`;
  }
}

function sampleOne() {
  if (!next) return;
  const rows = sampling().filter((r) => r.kept);
  let u = Math.random();
  const pick = rows.find((r) => (u -= r.q) <= 0) ?? rows[rows.length - 1];
  $('#sampled').textContent = `sampled ${JSON.stringify(next.text(pick.id))} (p = ${(100 * pick.q).toFixed(1)}% after the cuts)`;
  renderNext(pick.id);
}

// ---- experiments ------------------------------------------------------------------------------------------------

const EXPERIMENT_LIST = [
  ['no-scaling', 'Remove the 1/√d scaling'], ['no-causal', 'Remove the causal mask'], ['no-positions', 'Drop positions, shuffle tokens'],
  ['window', 'Shrink the sliding window'], ['gqa', 'Share key/value heads (GQA → MQA)'], ['kernel-memory', 'Reference vs tiled kernel memory'],
];

function renderExperiments() {
  $('#experiments').replaceChildren(...EXPERIMENT_LIST.map(([id, title]) => {
    const result = el('div', { className: 'result', 'aria-live': 'polite' });
    const button = el('button', { type: 'button', textContent: `Run: ${title}` });
    button.dataset.id = id;
    button.addEventListener('click', async () => {
      if (promptOrSay() === null) return;
      result.textContent = 'running on the real model…';
      await new Promise((r) => setTimeout(r, 10));
      try {
        const r = await backend.experiment(id, $('#prompt').value);
        result.replaceChildren(
          el('p', { textContent: r.lookFor }),
          el('table', { className: 'table' }, ...r.metrics.map((m) => el('tr', { className: 'metric' },
            el('td', { textContent: m.label }), el('td', { className: 'num value', textContent: withUnit(m.value, m.unit) })))),
          ...(r.series ? [plot(r.series)] : []),
        );
      } catch (e) {
        result.textContent = `error: ${e.message}`;
      }
    });
    const card = el('div', { className: 'experiment' }, el('h3', { textContent: title }), button, result);
    card.dataset.id = id;
    return card;
  }));
}

// a small SVG line plot; log-scale y when the values span decades
function plot(s, w = 340, h = 180) {
  const ys = s.lines.flatMap((l) => l.y).filter((y) => y > 0);
  const log = Math.max(...ys) / Math.min(...ys) > 100;
  const f = (y) => (log ? Math.log10(Math.max(y, 1e-12)) : y);
  const [x0, x1] = [Math.min(...s.x), Math.max(...s.x)];
  const logX = x0 > 0 && x1 / x0 > 50; // doubling lengths read best on a log axis
  const g = (x) => (logX ? Math.log2(x) : x);
  const [y0, y1] = [Math.min(...s.lines.flatMap((l) => l.y.map(f))), Math.max(...s.lines.flatMap((l) => l.y.map(f)))];
  const px = (x) => 64 + ((g(x) - g(x0)) / (g(x1) - g(x0) || 1)) * (w - 76);
  const py = (y) => h - 28 - ((f(y) - y0) / (y1 - y0 || 1)) * (h - 56);
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `${s.yLabel} against ${s.xLabel}`);
  const add = (tag, attrs, text) => { const e = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (text) e.textContent = text; svg.append(e); };
  add('line', { x1: 64, y1: h - 28, x2: w - 8, y2: h - 28, class: 'axis' });
  add('line', { x1: 64, y1: 20, x2: 64, y2: h - 28, class: 'axis' });
  add('text', { x: 64, y: h - 2 }, `${s.xLabel}${logX ? ' (log scale)' : ''}`);
  add('text', { x: 4, y: 14 }, `${s.yLabel}${log ? ' (log scale)' : ''}`);
  // ticks with values and units: every x given (thinned past 8), and four y values evenly spaced on the axis's scale
  const yText = (y) => (/bytes/.test(s.yLabel) ? humanBytes(y) : fmt(y));
  const every = Math.ceil(s.x.length / 8);
  s.x.forEach((x, i) => {
    if (i % every) return;
    add('line', { x1: px(x), y1: h - 28, x2: px(x), y2: h - 24, class: 'axis' });
    add('text', { x: px(x), y: h - 14, 'text-anchor': i === s.x.length - 1 ? 'end' : 'middle', class: 'tick' }, fmt(x));
  });
  for (let k = 0; k <= 3; k++) {
    const v = y0 + ((y1 - y0) * k) / 3; // on the axis's scale (log10 when log)
    const y = log ? 10 ** v : v;
    add('line', { x1: 60, y1: py(y), x2: 64, y2: py(y), class: 'axis' });
    add('text', { x: 58, y: py(y) + 3, 'text-anchor': 'end', class: 'tick' }, yText(y));
  }
  s.lines.forEach((l, k) => {
    add('polyline', { points: s.x.map((x, i) => `${px(x)},${py(l.y[i])}`).join(' '), fill: 'none', 'stroke-width': 2, class: `l${k}` });
    const yLast = /bytes/.test(s.yLabel) ? humanBytes(l.y[l.y.length - 1]) : fmt(l.y[l.y.length - 1]);
    add('text', { x: 72, y: 30 + 14 * k, class: `legend l${k}` }, `${l.name}: ${yLast} at ${fmt(x1)}`);
  });
  return svg;
}

// ---- calculators ------------------------------------------------------------------------------------------------

function renderKv() {
  const presets = { [backend.name]: { name: backend.name, layers: backend.info.numLayers, heads: backend.info.numHeads, kvHeads: backend.info.numKvHeads, headDim: backend.info.headDim, context: backend.info.maxPositions }, ...KV_PRESETS };
  const sel = $('#kv-preset');
  if (!sel.options.length) {
    for (const [k, p] of Object.entries(presets)) sel.append(el('option', { value: k, textContent: p.name }));
    sel.value = 'llama-2-7b';
  }
  const shape = presets[sel.value];
  const rows = kvTable(shape, { context: Math.max(1, +$('#kv-context').value || 1), batch: Math.max(1, +$('#kv-batch').value || 1), dtype: $('#kv-dtype').value });
  $('#kv-table').replaceChildren(el('tr', {}, ...['layout', 'cache', 'size', 'note'].map((t) => el('th', { textContent: t }))),
    ...rows.map((r) => el('tr', {}, el('td', { textContent: r.layout }), el('td', { textContent: r.cache }), el('td', { className: 'num', textContent: humanBytes(r.bytes) }), el('td', { textContent: r.note }))));
}

function renderCost() {
  // one head, D = 128: FLOPs 4·L²·D (halved causal); memory: naive keeps L² scores, tiled keeps q, k, v, o + one tile
  const L = [512, 1024, 2048, 4096, 8192, 16384, 32768];
  const D = 128;
  $('#flops-plot').replaceChildren(plot({ xLabel: 'sequence length L', yLabel: 'GFLOP (causal)', x: L, lines: [{ name: 'naive = tiled', y: L.map((l) => (2 * l * l * D) / 1e9) }] }));
  $('#memory-plot').replaceChildren(plot({ xLabel: 'sequence length L', yLabel: 'bytes of memory', x: L, lines: [
    { name: 'naive', y: L.map((l) => 4 * l * l + 16 * l * D) }, { name: 'tiled', y: L.map((l) => 16 * l * D + 4 * 64 * 64) }] }));
}

// ---- start ------------------------------------------------------------------------------------------------------

function initTheme() {
  const saved = localStorage.getItem('qkv-theme');
  if (saved) document.documentElement.dataset.theme = saved;
  $('#theme').addEventListener('click', () => {
    const dark = document.documentElement.dataset.theme ? document.documentElement.dataset.theme === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
    document.documentElement.dataset.theme = dark ? 'light' : 'dark';
    localStorage.setItem('qkv-theme', document.documentElement.dataset.theme);
  });
}

async function start() {
  initTheme();
  try {
    backend = await browserBackend();
  } catch (e) {
    console.warn('qkv: running the model in this page failed, using the server:', e);
    backend = await serverBackend();
    $('#where').textContent = 'on the qkv server (this page could not load it)';
  }
  document.body.dataset.backend = backend.mode;
  document.body.dataset.threads = String(backend.threads ?? 0);
  document.body.dataset.webgpu = backend.gpuName ? 'yes' : 'no';
  const gpuBox = $('#use-webgpu');
  gpuBox.disabled = !backend.gpuName;
  gpuBox.parentElement.title = backend.gpuName
    ? `Generate with the weights and the KV cache on the GPU (${backend.gpuName}). The attention maps stay on the CPU: the GPU kernels are fused and never form the weights.`
    : 'This browser offers no WebGPU adapter (or the model runs on the server)';
  $('#examples').addEventListener('change', () => { $('#prompt').value = $('#examples').value; run(); });
  $('#run').addEventListener('click', run);
  $('#generate').addEventListener('click', generate);
  $('#prompt').addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) run(); });
  // results measured on another prompt are not shown as this one's
  $('#prompt').addEventListener('input', () => {
    const stale = 'The prompt changed: run the experiment again.';
    for (const r of document.querySelectorAll('#experiments .result')) if (r.textContent) r.textContent = stale;
  });
  for (const id of ['#kv-preset', '#kv-context', '#kv-batch', '#kv-dtype']) $(id).addEventListener('input', renderKv);
  for (const id of ['#temperature', '#top-k', '#top-p']) $(id).addEventListener('input', () => renderNext());
  $('#sample').addEventListener('click', sampleOne);
  $('#step-query').addEventListener('input', renderStep);
  renderExperiments();
  renderKv();
  renderCost();
  await run();
}

start();
