// The Attention Lab end to end in a real headless Chromium (Debian's chromium, driven by playwright-core): load the
// page, enter a prompt, see a non-empty grid of heatmaps, run an experiment and read its number. Screenshots are
// saved to test-artifacts/. Skips with the reason when no Chromium is installed (.ci/run installs it).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import { createQkvServer, listen } from '../../src/node/server/server.js';
import { ROOT, TINY } from '../models/helpers.js';

const CHROMIUM = process.env.QKV_CHROMIUM ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set QKV_CHROMIUM)`;
const ARTIFACTS = join(ROOT, 'test-artifacts');

const server = createQkvServer(loadCheckpoint(TINY));
let base = '';
let browser: Browser | undefined;
before(async () => {
  base = await listen(server, { port: 0 });
  if (!skip) {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }
  mkdirSync(ARTIFACTS, { recursive: true });
});
after(async () => { await browser?.close(); server.close(); });

test('the lab runs the model in the page, renders the heatmap grid and an experiment', { skip, timeout: 180_000 }, async () => {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 800 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => { if (!r.url().startsWith(base)) problems.push(`external request: ${r.url()}`); });
  const t0 = Date.now();
  await page.goto(base);
  await page.waitForSelector('.cell canvas', { timeout: 120_000 });
  const loadMs = Date.now() - t0;

  // a new prompt, run through the model in the page
  await page.fill('#prompt', 'A fool and his money are soon parted. A fool and his money are soon parted.');
  await page.click('#run');
  await page.waitForFunction(() => /\d+ tokens · 4 layers × 8 heads/.test(document.querySelector('#status')?.textContent ?? ''), undefined, { timeout: 60_000 });
  assert.equal(await page.getAttribute('body', 'data-backend'), 'browser');
  // threads in the browser: the page is cross-origin isolated, the kernels run on Web Workers over shared memory, and
  // the threaded attention and linear layer give the single-thread numbers bit for bit
  const cores = await page.evaluate(() => navigator.hardwareConcurrency);
  assert.equal(await page.evaluate(() => crossOriginIsolated), true);
  assert.equal(Number(await page.getAttribute('body', 'data-threads')), cores);
  const same = await page.evaluate(async () => {
    const qkv = await import('/qkv/index.js' as string);
    const x = qkv.Tensor.from(Float32Array.from({ length: 2 * 4 * 70 * 16 }, (_, i) => Math.sin(i)), [2, 4, 70, 16]);
    const w = qkv.Tensor.from(Float32Array.from({ length: 96 * 16 }, (_, i) => Math.cos(i)), [96, 16]).to('float16');
    const run = () => [...qkv.attention(x, x, x, { causal: true }).out.toFloat32(), ...qkv.linear(x, w).toFloat32()];
    const many = run();
    const threads = qkv.kernelThreads();
    qkv.setKernelThreads(1);
    const one = run();
    qkv.setKernelThreads(threads);
    return { threads, equal: many.every((v: number, i: number) => Object.is(v, one[i])) };
  });
  assert.ok(same.threads >= Math.min(2, cores) && same.equal, JSON.stringify(same));
  assert.equal(await page.locator('.cell').count(), 32);
  // Chromium has relaxed SIMD: the page runs the fused multiply-add build of the kernels, and says so
  assert.equal(await page.getAttribute('body', 'data-wasm'), 'relaxed-simd');
  assert.match(await page.textContent('#status') ?? '', /relaxed-simd WebAssembly/);
  // the heatmaps are drawn: a canvas has many distinct pixel values
  const distinct = await page.$eval('.cell canvas', (c) => {
    const d = (c as HTMLCanvasElement).getContext('2d')!.getImageData(0, 0, (c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height).data;
    return new Set(Array.from({ length: d.length / 4 }, (_, i) => d[i * 4] * 65536 + d[i * 4 + 1] * 256 + d[i * 4 + 2])).size;
  });
  assert.ok(distinct > 10, `heatmap has ${distinct} colours`);
  // hover a token: the enlarged map and the explanation follow it
  await page.click('.cell >> nth=14');
  await page.hover('.tok >> nth=10');
  assert.match(await page.textContent('#hover-info') ?? '', /attends to .*attended by/);
  await page.screenshot({ path: join(ARTIFACTS, 'lab-1280x800.png') });

  // one head step by step: every key's row, and softmax(scale · q·k) equal to the attention map's row
  await page.waitForFunction(() => document.querySelectorAll('#step tr').length > 2, undefined, { timeout: 30_000 });
  const diff = Number(await page.getAttribute('#step', 'data-max-diff'));
  assert.ok(diff < 1e-5, `the step view's p equals the map row (max |Δ| ${diff})`);
  await page.selectOption('#step-query', '2');
  assert.equal(await page.$$eval('#step tr.masked', (rows) => rows.length), (await page.$$eval('#tokens .tok', (t) => t.length)) - 3);
  // the neuron view's q ⊙ k_j beside each key, and v_j
  assert.deepEqual(await page.$$eval('#step th', (th) => th.map((e) => e.textContent)), ['key token', 'k_j', 'q ⊙ k_j', 'q·k_j', '× scale', 'softmax p_j', '', 'v_j']);
  // the head view: one head, then every head of the layer with a colour each
  assert.equal(await page.locator('#head-view canvas').count(), 1);
  await page.check('#head-view-all');
  await page.dispatchEvent('#head-view-all', 'input');
  assert.equal(await page.locator('#head-view .swatch').count(), 8);
  // the formula links to the loop in qkv's source, the line marked
  const source = await page.getAttribute('#step a', 'href');
  const sourcePage = await (await page.request.get(new URL(source!, page.url()).toString())).text();
  assert.match(sourcePage, /<span id="L\d+" class="match"><a id="match" href="#L\d+">\d+<\/a>\s*\/\/ 1\. scores and softmax/);

  // the next token: bars for the most likely tokens; a low temperature puts ~all the mass on the first, top-k 1 cuts the rest
  await page.waitForFunction(() => document.querySelectorAll('#next-bars .bar').length === 12, undefined, { timeout: 30_000 });
  await page.fill('#temperature', '0.05');
  await page.dispatchEvent('#temperature', 'input');
  const sharp = await page.$$eval('#next-bars .num', (els) => els.map((e) => e.textContent ?? ''));
  assert.ok(parseFloat(sharp[0]) > 90, `at T = 0.05 the top token holds ${sharp[0]}`);
  await page.fill('#temperature', '1');
  await page.fill('#top-k', '1');
  await page.dispatchEvent('#top-k', 'input');
  const cut = await page.$$eval('#next-bars .num', (els) => els.map((e) => e.textContent ?? ''));
  assert.deepEqual([cut[0], cut[1]], ['100.0%', 'cut']);
  await page.click('#sample');
  assert.match(await page.textContent('#sampled') ?? '', /^sampled ".*" \(p = 100\.0% after the cuts\)$/);
  await page.fill('#top-k', '0');
  await page.dispatchEvent('#top-k', 'input');

  // one experiment, with its measured number
  await page.click('.experiment[data-id="no-causal"] button');
  await page.waitForSelector('.experiment[data-id="no-causal"] .metric', { timeout: 60_000 });
  const values = await page.$$eval('.experiment[data-id="no-causal"] .metric .value', (els) => els.map((e) => parseFloat(e.textContent ?? '')));
  assert.equal(values[0], 0, 'with the mask, no attention reaches the next token');
  assert.ok(values[1] > 0, `without the mask, attention on the answer is ${values[1]}%`);
  // the broken attention beside the original: two labelled maps of one head, the second without the masked triangle
  const captions = await page.$$eval('.experiment[data-id="no-causal"] figcaption', (els) => els.map((e) => e.textContent));
  assert.deepEqual(captions, ['with the causal mask', 'without: the future is visible']);
  const grey = await page.$$eval('.experiment[data-id="no-causal"] .panels canvas', (cs) => cs.map((c) => {
    const d = (c as HTMLCanvasElement).getContext('2d')!.getImageData(0, 0, (c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] === 190 && d[i + 1] === 190 && d[i + 2] === 190) n++;
    return n;
  }));
  assert.ok(grey[0] > 1000 && grey[1] < 200, `masked (grey) pixels: ${grey} — the triangle is filled in without the mask`);
  await page.locator('.experiment[data-id="no-causal"]').screenshot({ path: join(ARTIFACTS, 'lab-experiment.png') });
  await page.screenshot({ path: join(ARTIFACTS, 'lab-full.png'), fullPage: true });

  // remove the selected head: the loss with and without it, and every head's importance
  await page.click('.experiment[data-id="remove-head"] button');
  await page.waitForSelector('.experiment[data-id="remove-head"] .metric', { timeout: 60_000 });
  assert.match(await page.textContent('.experiment[data-id="remove-head"] .metric >> nth=1') ?? '', /without layer 1 head 6\s*\d+\.\d+ nats/);
  await page.click('.experiment[data-id="patch-head"] button');
  await page.waitForSelector('.experiment[data-id="patch-head"] figcaption', { timeout: 60_000 });
  assert.equal(await page.locator('.experiment[data-id="patch-head"] figcaption').count(), 2);

  // positions: RoPE's pairs as dials; the score against distance on the model's q and k, with RoPE and without (NoPE)
  assert.ok(await page.locator('#rope-dials svg').count() >= 4);
  assert.equal(await page.locator('#rope-distance polyline').count(), 3);
  await page.fill('#rope-position', '20');
  await page.dispatchEvent('#rope-position', 'input');
  assert.equal(await page.textContent('#rope-position-value'), '20');

  // the KV cache on the model in the page: the cache gives the same tokens, faster; two prompts share blocks, one copy on write
  await page.waitForSelector('#kv-views .block', { timeout: 60_000 });
  assert.match(await page.textContent('#kv-views') ?? '', /the same tokens both ways: yes/);
  assert.equal(await page.locator('#kv-views .block.cow').count(), 1, 'one block copied on write');
  assert.equal(await page.locator('#kv-views .block.shared').count(), 6, 'three blocks shared, listed in both tables');
  assert.match(await page.textContent('#kv-views') ?? '', /64\.0 GiB, not “about 2 GB”/);

  // FlashAttention: the causal tiles above the diagonal are skipped, and the online softmax ends at the row's lse
  const tiles = await page.getAttribute('.tile-walk', 'aria-label');
  const T = await page.$$eval('#tokens .tok', (t) => t.length);
  const n = Math.ceil(T / 4);
  assert.match(tiles ?? '', new RegExp(`, ${(n * (n - 1)) / 2} skipped$`));
  const lse = /lse = m \+ log l = (-?\d+\.\d+); the whole row at once: (-?\d+\.\d+)/.exec(await page.textContent('#flash-views') ?? '');
  assert.ok(lse && lse[1] === lse[2], `online and direct log-sum-exp: ${lse?.slice(1)}`);

  // interview mode: every answer has its measured number and a link to where it shows
  await page.waitForSelector('#interview details', { timeout: 60_000 });
  assert.equal(await page.locator('#interview details').count(), 8);
  assert.match(await page.textContent('#interview details >> nth=0') ?? '', /entropy from \d[\d.]* to \d[\d.]* nats/);
  assert.equal(await page.locator('#interview details a').count(), 8);

  // bytes read as bytes (never 4.36e+9); a changed prompt clears results measured on the old one; an empty prompt is a
  // sentence, not an internal error
  await page.click('.experiment[data-id="kernel-memory"] button');
  await page.waitForSelector('.experiment[data-id="kernel-memory"] .metric', { timeout: 60_000 });
  const bytes = await page.$$eval('.experiment[data-id="kernel-memory"] .metric .value', (els) => els.map((e) => e.textContent ?? ''));
  assert.ok(bytes.slice(0, 2).every((b) => /^\d+(\.\d+)? (B|KiB|MiB|GiB)$/.test(b)), `bytes shown as ${bytes}`);
  const prompt = await page.inputValue('#prompt');
  await page.fill('#prompt', '');
  assert.match(await page.textContent('.experiment[data-id="kernel-memory"] .result') ?? '', /prompt changed/);
  await page.click('#run');
  assert.match(await page.textContent('#status') ?? '', /Type a prompt first/);
  await page.fill('#prompt', prompt);

  // phone width: still one column of controls, no horizontal scrolling
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'no horizontal scroll at 390 px');
  await page.screenshot({ path: join(ARTIFACTS, 'lab-phone.png') });
  assert.deepEqual(problems, []);
  console.log(`# lab ready in ${loadMs} ms; screenshots in ${ARTIFACTS}`);
});

test('when the page cannot load the model it falls back to the server', { skip, timeout: 120_000 }, async () => {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 800 } });
  await page.route('**/model/model.safetensors', (route) => route.abort()); // e.g. a browser without enough memory
  await page.goto(base);
  await page.waitForSelector('.cell canvas', { timeout: 60_000 });
  assert.equal(await page.getAttribute('body', 'data-backend'), 'server');
  assert.match(await page.textContent('#status') ?? '', /on the server/);
  await page.fill('#max-tokens', '12');
  await page.selectOption('#examples', { index: 1 });
  await page.fill('#prompt', 'A fool and his money');
  await page.click('#generate');
  await page.waitForFunction(() => (document.querySelector('#generation')?.textContent ?? '').includes('Ambrose'), undefined, { timeout: 30_000 });
  await page.click('.experiment[data-id="gqa"] button');
  await page.waitForSelector('.experiment[data-id="gqa"] .metric', { timeout: 60_000 });
  await page.screenshot({ path: join(ARTIFACTS, 'lab-server-fallback.png'), fullPage: true });
});

test('where the browser offers WebGPU, the lab generates on it: the same greedy text as on the CPU', { skip, timeout: 180_000 }, async () => {
  // SwiftShader's WebGPU adapter: what headless Chromium offers without a GPU
  const gpuBrowser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--no-first-run', '--disable-background-networking'] });
  try {
    const page = await gpuBrowser.newPage({ viewport: { width: 1280, height: 800 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await page.goto(base);
    await page.waitForSelector('.cell canvas', { timeout: 120_000 });
    if (await page.getAttribute('body', 'data-webgpu') !== 'yes') { console.log('# this Chromium offers no WebGPU adapter; nothing to compare'); return; }
    await page.fill('#prompt', 'The Zen of Python, by Tim Peters. Beautiful is better than ugly.');
    await page.fill('#max-tokens', '10');
    const generateOn = async (gpu: boolean) => {
      await page.setChecked('#use-webgpu', gpu);
      await page.click('#generate');
      await page.waitForFunction(() => /generation done/.test(document.querySelector('#status')?.textContent ?? ''), undefined, { timeout: 120_000 });
      const status = await page.textContent('#status');
      return { text: await page.textContent('#generation'), on: await page.getAttribute('body', 'data-generated-on'), status };
    };
    const gpu = await generateOn(true);
    const cpu = await generateOn(false);
    assert.equal(gpu.on, 'webgpu', gpu.status ?? '');
    assert.match(gpu.status ?? '', /on WebGPU/);
    assert.equal(cpu.on, 'cpu');
    assert.equal(gpu.text, cpu.text);
    assert.deepEqual(problems, []);
    await page.screenshot({ path: join(ARTIFACTS, 'lab-webgpu.png') });
  } finally {
    await gpuBrowser.close();
  }
});
