// `npm run bench:generate`: prefill tokens/s, decode tokens/s and time to first token, for the embedded qkv-tiny, a
// ~100M-parameter Llama and SmolLM-135M's shape with random weights that this benchmark builds itself (no download),
// next to llama.cpp's figures for qkv-tiny and the SmolLM shape on this kind of machine (../shared/anchors/llama-cpp.md),
// on 1 and 2 threads. Weights as llama.cpp ran them (qkv-tiny as stored, bf16; SmolLM f16, and int8 next to Q8_0),
// widened inside the matrix kernel; float32 compute. Medians of several runs after a warm-up of 64 generated tokens (the
// JIT compiles the hot paths over the first hundreds). Prompts are 512 tokens, as llama-bench's pp512 (qkv-tiny: 512
// of its 1,024 positions). The llama.cpp columns are QUOTED from ../shared/anchors (another machine, 2026-11-22), not
// measured in this run: node-llama-cpp is not a dependency yet (issue #20). Options: --json, --runs N
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { generate, kernelVariant, type CausalLM, setKernelThreads } from '../src/index.js';
import { useWasmFeatures } from '../src/node/wasm-features.js';
import { randomLlama } from './random-llama.js';
import { loadCheckpoint } from '../src/node/checkpoint.js';
import { useThreads } from '../src/node/threads.js';

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1]) || 3;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(name: string, model: CausalLM, parameters: number, promptLen: number, newTokens: number, threads: number, anchor: [number, number] | null) {
  setKernelThreads(threads);
  const prompt = Array.from({ length: promptLen }, (_, i) => (i * 31 + 7) % model.info.vocabSize);
  await generate(model, null, prompt.slice(0, 8), { greedy: true, maxTokens: 64, stopTokens: [] }); // warm-up
  const ttft: number[] = [];
  const decode: number[] = [];
  for (let r = 0; r < runs; r++) {
    const g = await generate(model, null, prompt, { greedy: true, maxTokens: newTokens, stopTokens: [] });
    ttft.push(g.timings.prefillMs);
    decode.push(g.timings.decodeMs / (newTokens - 1));
  }
  return {
    model: name, threads, anchor, parameters, promptTokens: promptLen, newTokens,
    ttftMs: median(ttft), prefillTokPerS: promptLen / (median(ttft) / 1000), decodeMsPerToken: median(decode), decodeTokPerS: 1000 / median(decode),
  };
}

useWasmFeatures(); // as qkv's Node entry points: relaxed SIMD where this V8 has it ($QKV_WASM_SIMD overrides)
const maxThreads = await useThreads(2);
const tinyDir = fileURLToPath(new URL('../../models/qkv-tiny', import.meta.url));
const tiny = loadCheckpoint(tinyDir, { tokenizer: false });
const big = randomLlama({ E: 768, layers: 12, heads: 12, kvHeads: 4, F: 2048, V: 32000 });
// SmolLM-135M's shape (hidden 576, 30 layers, 9 heads, 3 kv heads, MLP 1536, vocab 49152), f16 weights as llama.cpp ran it
const smolShape = { E: 576, layers: 30, heads: 9, kvHeads: 3, F: 1536, V: 49152, dtype: 'float16' as const };
const smol = randomLlama(smolShape);
// llama.cpp on this machine kind (../shared/anchors/llama-cpp.md, measured 2026-11-22): pp512 / tg128 t/s by threads
const rows = [];
for (const threads of [1, maxThreads]) {
  rows.push(await measure('qkv-tiny (4.1M, bf16 weights)', tiny.model as CausalLM, tiny.weights.summary().parameters, 512, 64, threads, threads === 1 ? [4272, 1734] : [6988, 2287]));
  rows.push(await measure('SmolLM-135M shape, f16 (random)', smol.model, smol.parameters, 512, 32, threads, threads === 1 ? [230, 76] : [406, 90]));
}
const smol8 = randomLlama({ ...smolShape, format: 'int8' });
rows.push(await measure('SmolLM-135M shape, int8 (vs Q8_0)', smol8.model, smol8.parameters, 512, 32, maxThreads, [420, 122]));
rows.push(await measure('random Llama ~100M (768×12), f32', big.model, big.parameters, 64, 16, maxThreads, null));
if (args.includes('--json')) {
  console.log(JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, kernels: kernelVariant(), runs, rows }, null, 2));
} else {
  console.log(`qkv generation bench — greedy, KV cache, f32 compute, WebAssembly ${kernelVariant()}; ${cpus()[0]?.model} ` +
    `(${cpus().length} cores), node ${process.version}; median of ${runs}; llama.cpp figures quoted, not measured\n`);
  console.log('model                              | thr | params | prompt | TTFT ms | prefill tok/s | decode ms/tok | decode tok/s | llama.cpp pp / tg (quoted) | qkv/llama.cpp pp, tg');
  console.log('-----------------------------------|-----|--------|--------|---------|---------------|---------------|--------------|-------------------|---------------------');
  for (const r of rows) {
    const a = r.anchor;
    const anchor = (a ? `${a[0]} / ${a[1]}` : '–').padStart(26);
    const ratio = (a ? `${(r.prefillTokPerS / a[0]).toFixed(2)}×, ${(r.decodeTokPerS / a[1]).toFixed(2)}×` : '–').padStart(19);
    console.log(`${r.model.padEnd(34)} | ${String(r.threads).padStart(3)} | ${(r.parameters / 1e6).toFixed(1).padStart(5)}M | ${String(r.promptTokens).padStart(6)} | ${r.ttftMs.toFixed(0).padStart(7)} | ${r.prefillTokPerS.toFixed(1).padStart(13)} | ${r.decodeMsPerToken.toFixed(1).padStart(13)} | ${r.decodeTokPerS.toFixed(1).padStart(12)} | ${anchor} | ${ratio}`);
  }
}
process.exit(0); // the kernel threads are unref'd, but leave no doubt
