// The Attention Lab: loads the model into the page (or falls back to the server), wires the controls, and runs the
// prompt through every view. Each view is a module under views/; they share the page state (page.ts).
import { browserBackend, serverBackend } from './backend.js';
import { $, paint, status } from './dom.js';
import { backend, page, promptOrSay, selectHead } from './page.js';
import { renderCost, renderKv } from './views/calculators.js';
import { renderExperiments } from './views/experiments.js';
import { renderGrid, renderTokens } from './views/heads.js';
import { renderNext, sampleOne, updateNext } from './views/next.js';
import { renderPositions } from './views/positions.js';
import { renderKept, renderKvCache } from './views/kv-cache.js';
import { renderFlash } from './views/flash.js';
import { renderInterview } from './views/interview.js';
import { renderHeadView } from './views/head-view.js';
import { renderStep } from './views/step.js';

async function run(): Promise<void> {
  const prompt = promptOrSay();
  if (prompt === null) return;
  status('running the model…');
  await paint();
  try {
    const t0 = performance.now();
    const b = backend();
    page.state = await b.attention(prompt);
    const threads = `${b.threads} thread${(b.threads ?? 1) > 1 ? 's' : ''}`;
    const where = b.mode === 'browser' ? `in this page, ${threads}, ${b.variant ?? 'no'} WebAssembly` : 'on the server';
    const s = page.state;
    status(`${s.tokens.length} tokens · ${s.layers} layers × ${s.heads} heads · ${(performance.now() - t0).toFixed(0)} ms (${where})`);
    renderTokens();
    renderGrid();
    $('#step-query').replaceChildren(); // new tokens: the query list is rebuilt, on the last token
    selectHead(page.selected.layer, page.selected.head); // redraws the enlarged map and the step view
    renderPositions();
    renderFlash();
    await renderKvCache();
    await updateNext(prompt);
    await renderInterview();
  } catch (e) {
    status(`error: ${(e as Error).message}`);
  }
}

async function generate(): Promise<void> {
  const prompt = promptOrSay();
  if (prompt === null) return;
  const out = $('#generation');
  out.textContent = prompt;
  const device = $<HTMLInputElement>('#use-webgpu').checked ? 'webgpu' : 'cpu';
  status(`generating${device === 'webgpu' ? ' on WebGPU' : ''}…`);
  try {
    const t0 = performance.now();
    let tokens = 0;
    const b = backend();
    const n = Math.min(200, Math.max(1, Number($<HTMLInputElement>('#max-tokens').value) || 40));
    await b.generate(prompt, n, (t) => { tokens++; out.textContent += t; }, device);
    const where = b.mode === 'server' ? 'on the server' : device === 'webgpu' ? `on WebGPU (${b.gpuName})` : 'on the CPU in this page';
    status(`generation done · ${tokens} tokens in ${(performance.now() - t0).toFixed(0)} ms ${where}`);
    document.body.dataset.generatedOn = b.mode === 'server' ? 'server' : device;
  } catch (e) {
    status(`error: ${(e as Error).message}`);
  }
}

function initTheme(): void {
  const root = document.documentElement;
  const saved = localStorage.getItem('qkv-theme');
  if (saved) root.dataset.theme = saved;
  $('#theme').addEventListener('click', () => {
    const dark = root.dataset.theme ? root.dataset.theme === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
    root.dataset.theme = dark ? 'light' : 'dark';
    localStorage.setItem('qkv-theme', root.dataset.theme);
  });
}

// the model in this page, else the server; what the page can do said on the body (tests and styles read it)
async function load(): Promise<void> {
  try {
    page.backend = await browserBackend();
  } catch (e) {
    console.warn('qkv: running the model in this page failed, using the server:', e);
    page.backend = await serverBackend();
    $('#where').textContent = 'on the qkv server (this page could not load it)';
  }
  const b = page.backend;
  document.body.dataset.backend = b.mode;
  document.body.dataset.threads = String(b.threads ?? 0);
  document.body.dataset.wasm = b.variant ?? 'none';
  document.body.dataset.webgpu = b.gpuName ? 'yes' : 'no';
  const gpuBox = $<HTMLInputElement>('#use-webgpu');
  gpuBox.disabled = !b.gpuName;
  gpuBox.parentElement!.title = b.gpuName
    ? `Generate with the weights and the KV cache on the GPU (${b.gpuName}). The attention maps stay on the CPU: ` +
      'the GPU kernels are fused and never form the weights.'
    : 'This browser offers no WebGPU adapter (or the model runs on the server)';
}

async function start(): Promise<void> {
  initTheme();
  await load();
  const promptBox = $<HTMLTextAreaElement>('#prompt');
  const examples = $<HTMLSelectElement>('#examples');
  examples.addEventListener('change', () => { promptBox.value = examples.value; void run(); });
  $('#run').addEventListener('click', () => void run());
  $('#generate').addEventListener('click', () => void generate());
  promptBox.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void run(); });
  // results measured on another prompt are not shown as this one's
  promptBox.addEventListener('input', () => {
    const stale = 'The prompt changed: run the experiment again.';
    for (const r of document.querySelectorAll('#experiments .result')) if (r.textContent) r.textContent = stale;
  });
  for (const id of ['#kv-preset', '#kv-context', '#kv-batch', '#kv-dtype']) $(id).addEventListener('input', renderKv);
  for (const id of ['#temperature', '#top-k', '#top-p']) $(id).addEventListener('input', () => renderNext());
  $('#sample').addEventListener('click', sampleOne);
  $('#step-query').addEventListener('input', () => { renderStep(); renderFlash(); });
  $('#rope-position').addEventListener('input', renderPositions);
  $('#head-view-all').addEventListener('input', renderHeadView);
  for (const id of ['#kv-window', '#kv-sinks']) $(id).addEventListener('input', renderKept);
  for (const id of ['#flash-tile', '#flash-causal', '#flash-window']) $(id).addEventListener('input', renderFlash);
  renderExperiments();
  renderKv();
  renderCost();
  await run();
}

void start();
