// The batch engine on WebGPU (generate/engine.ts with `gpu`: a paged KV pool in GPU buffers, GpuPagedKVCache in cache/webgpu.ts)
// against the same engine on the CPU: concurrent generations of qkv-tiny give the same greedy tokens, through shared
// prefixes and copy-on-write; a generation released while its step runs on the GPU frees its blocks and leaves the
// others right; the server's --device webgpu path answers as the CPU server does. Runs on any adapter Dawn finds
// (in CI: Mesa's llvmpipe).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchEngine, type CausalLM } from '../../src/index.js';
import { gpuDevice } from '../../src/kernels/webgpu/device.js';
import { scatterGpu } from '../../src/kernels/webgpu/ops.js';
import { GpuTensor } from '../../src/kernels/webgpu/gpu-tensor.js';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import { createQkvServer, listen } from '../../src/node/server/server.js';
import { useDawn } from '../../src/node/webgpu.js';
import { TINY } from '../models/helpers.js';

let skip: string | false = false;
let device: GPUDevice;
before(async () => {
  if (!(await useDawn(process.env.QKV_WEBGPU_BACKEND ?? 'opengles'))) skip = 'the optional `webgpu` package is not installed';
  else if (!(await gpuDevice())) skip = 'no WebGPU adapter (apt-get install libegl1 libgles2 libegl-mesa0 libgl1-mesa-dri for llvmpipe)';
  else device = (await gpuDevice())!;
});

const ckpt = loadCheckpoint(TINY);
const model = ckpt.model as CausalLM;
const argmax = (l: Float32Array) => l.reduce((best, x, i) => (x > l[best] ? i : best), 0);

/** Greedy tokens of `n` steps for each prompt, all at once on one engine (prefixes cached across calls). */
async function greedyAll(engine: BatchEngine, prompts: number[][], n: number): Promise<number[][]> {
  return Promise.all(prompts.map(async (prompt) => {
    const s = await engine.open(prompt, n);
    const out: number[] = [];
    let logits = await s.step(prompt);
    for (let t = 0; t < n; t++) {
      out.push(argmax(logits));
      if (t < n - 1) logits = await s.step([out[t]]);
    }
    s.release();
    return out;
  }));
}

test('scatter writes new keys into their pool slots ([blocks, H, blockSize, C])', async (t) => {
  if (skip) { t.skip(skip); return; }
  const [R, H, C, BS, blocks] = [5, 2, 3, 4, 3];
  const x = Float32Array.from({ length: R * H * C }, (_, i) => i + 1);
  const slots = Uint32Array.from([9, 0, 4, 11, 1]);
  const pool = GpuTensor.upload(device, new Float32Array(blocks * H * BS * C), [blocks * H * BS * C]);
  scatterGpu(GpuTensor.upload(device, x, [R, H, C]), slots, { dst: pool, blockSize: BS });
  const got = await pool.read();
  const want = new Float32Array(blocks * H * BS * C);
  for (let r = 0; r < R; r++) for (let h = 0; h < H; h++) for (let c = 0; c < C; c++) {
    const [blk, off] = [Math.floor(slots[r] / BS), slots[r] % BS];
    want[((blk * H + h) * BS + off) * C + c] = x[(r * H + h) * C + c];
  }
  assert.deepEqual(got, want);
  assert.throws(() => scatterGpu(GpuTensor.upload(device, x, [R, H, C]), Uint32Array.from([0, 1, 2, 3, 12]), { dst: pool, blockSize: BS }),
    /slot 12 of token 4 is past the pool's 12 slots/);
});

test('the engine on WebGPU gives the CPU engine\'s greedy tokens (batched, shared prefixes, copy-on-write)', async (t) => {
  if (skip) { t.skip(skip); return; }
  const tok = ckpt.tokenizer!;
  const prompts = ['The Zen of Python', 'Beautiful is better than ugly.', 'The Zen of Python, by Tim Peters', 'Now is better than never']
    .map((p) => tok.encode(p));
  // blocks of 4 tokens: the third prompt shares the first's whole blocks and then writes into a shared partial block
  const o = { kvBlocks: 96, maxBatch: 8, blockSize: 4 };
  const [cpu, gpu] = [new BatchEngine(model, o), new BatchEngine(model, { ...o, gpu: device })];
  assert.equal(gpu.device, 'webgpu');
  for (const round of [1, 2]) { // the second round starts from cached prefixes
    const [want, got] = [await greedyAll(cpu, prompts, 10), await greedyAll(gpu, prompts, 10)];
    assert.deepEqual(got, want, `round ${round}`);
  }
  assert.ok(gpu.stats().prefixHits >= 4, `prefix hits ${gpu.stats().prefixHits}`);
  assert.equal(gpu.stats().running, 0);
  gpu.release();
});

test('a generation released while its GPU step runs frees its blocks; the others finish right', async (t) => {
  if (skip) { t.skip(skip); return; }
  const prompts = [[5, 6, 7, 8, 9], [10, 11, 12], [13, 14, 15, 16]];
  const want = await greedyAll(new BatchEngine(model, { kvBlocks: 64, maxPrefixes: 0 }), prompts.slice(1), 8);
  const gpu = new BatchEngine(model, { kvBlocks: 64, maxPrefixes: 0, gpu: device });
  const quitter = await gpu.open(prompts[0], 8);
  const pending = quitter.step(prompts[0]);
  const others = greedyAll(gpu, prompts.slice(1), 8);
  quitter.release(); // before its prefill's logits are back
  await assert.rejects(pending, /released/);
  assert.deepEqual(await others, want);
  assert.equal(gpu.stats().blocksUsed, 0, 'every block back (no prefixes kept)');
  gpu.release();
});

test('qkv serve on WebGPU answers completions as the CPU server does', async (t) => {
  if (skip) { t.skip(skip); return; }
  const ask = async (base: string, prompt: string) => {
    const r = await fetch(`${base}v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt, max_tokens: 12, temperature: 0 }),
    });
    assert.equal(r.status, 200);
    return ((await r.json()) as { choices: { text: string }[] }).choices[0].text;
  };
  const prompts = ['The Zen of Python', 'Simple is better than', 'Errors should never'];
  const texts: string[][] = [];
  for (const gpu of [undefined, device]) {
    const server = createQkvServer(ckpt, { gpu });
    const base = await listen(server, { port: 0 });
    try {
      assert.equal(server.engine.device, gpu ? 'webgpu' : 'cpu');
      texts.push(await Promise.all(prompts.map((p) => ask(base, p))));
    } finally {
      await server.shutdown(1000);
    }
  }
  assert.deepEqual(texts[1], texts[0]);
});
