// One measurement of one implementation in a fresh process (so its peak RSS is its own):
//   node dist/bench/cpu-child.js IMPL L CAUSAL RUNS  →  one JSON line {impl, L, causal, ms: [...], baseRss, peakRss}
// IMPL: qkv (auto: WebAssembly SIMD, 1 thread) | qkv-2t (the same on 2 threads, useThreads(2)) | qkv-ts (TypeScript tiles) | ort-graph (MatMul→Softmax→MatMul) | ort-mha (com.microsoft.MultiHeadAttention) | ort-attention (ONNX-23
// Attention) | tfjs-wasm. fp32, B = 1, H = 8, head_dim 64, L = S; ORT with 2 intra-op threads.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { attention, Tensor } from '../src/index.js';
import { type AttentionGraph, attentionGraph } from './peers/onnx.js';
import { peakRss } from './peak-rss.js';

const [impl, Ls, causalS, runsS] = process.argv.slice(2);
const [B, H, D] = [1, 8, 64];
const L = Number(Ls);
const causal = causalS === 'true';
const runs = Number(runsS);

function data(seed: number, n: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) { x = (x * 1664525 + 1013904223) >>> 0; a[i] = x / 2 ** 32 - 0.5; }
  return a;
}
const [qd, kd, vd] = [data(1, B * H * L * D), data(2, B * H * L * D), data(3, B * H * L * D)];

async function setup(): Promise<() => Promise<void> | void> {
  if (impl === 'qkv' || impl === 'qkv-ts') {
    // qkv: the auto kernel (WebAssembly SIMD for these calls); qkv-ts: the TypeScript tiled kernel
    const [q, k, v] = [qd, kd, vd].map((d) => Tensor.from(d, [B, H, L, D]));
    return () => { attention(q, k, v, { causal, kernel: impl === 'qkv' ? 'auto' : 'flash' }); };
  }
  if (impl === 'qkv-2t') {
    // the same kernel with its work shared by 2 threads over one shared WebAssembly memory
    const { useThreads } = await import('../src/node/threads.js');
    if (await useThreads(2) !== 2) throw new Error('qkv-2t: 2 threads are not available');
    const [q, k, v] = [qd, kd, vd].map((d) => Tensor.from(d, [B, H, L, D]));
    return () => { attention(q, k, v, { causal }); };
  }
  if (impl.startsWith('ort')) {
    const ort = await import('onnxruntime-node');
    const { bytes, shape, extra } = attentionGraph(impl as AttentionGraph, B, H, L, D, causal);
    const feeds = { q: new ort.Tensor('float32', qd, shape), k: new ort.Tensor('float32', kd, shape), v: new ort.Tensor('float32', vd, shape),
      ...Object.fromEntries(extra.map((x) => [x.name, new ort.Tensor('float32', x.data, x.shape)])) };
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    return async () => { await session.run(feeds); };
  }
  if (impl === 'tfjs-wasm') {
    const tf = await import('@tensorflow/tfjs-core');
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const dir = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
    wasm.setWasmPaths(join(dir, '/'));
    await tf.setBackend('wasm');
    await tf.ready();
    const [q, k, v] = [qd, kd, vd].map((d) => tf.tensor4d(d, [B, H, L, D]));
    const mask = causal ? tf.tensor2d(Float32Array.from({ length: L * L }, (_, x) => (x % L > Math.floor(x / L) ? -1e30 : 0)), [L, L]) : null;
    return () => {
      const o = tf.tidy(() => {
        let s = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(D));
        if (mask) s = tf.add(s, mask);
        return tf.matMul(tf.softmax(s), v);
      });
      o.dataSync();
      o.dispose();
    };
  }
  throw new Error(`unknown implementation ${impl}`);
}

const run = await setup();
// warm-up, the same for every implementation: compilation, thread pools, first allocations — and V8's tier-up of
// the WebAssembly code, which lands a few calls in (that call takes ~1.5–2× its steady time while the optimising
// compiler shares this 2-core machine), and qkv's thread chooser's first measurements (some calls alone; ~1.5 s with
// calls of a quarter second): one call, then more until 2 s have passed
for (const t0 = performance.now(); ;) { await run(); if (performance.now() - t0 >= 2000) break; }
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
gc();
const baseRss = peakRss();
const ms: number[] = [];
for (let r = 0; r < runs; r++) {
  const t0 = performance.now();
  await run();
  ms.push(performance.now() - t0);
}
console.log(JSON.stringify({ impl, L, causal, ms, baseRss, peakRss: peakRss(), inputBytes: 3 * qd.byteLength }));
process.exit(0); // worker threads (qkv-2t) would keep the process alive
