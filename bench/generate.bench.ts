// `npm run bench:generate`: prefill tokens/s, decode tokens/s and time to first token, for the embedded qkv-tiny, a
// ~100M-parameter Llama and SmolLM-135M's shape with random weights that this benchmark builds itself (no download),
// next to llama.cpp's figures for qkv-tiny and the SmolLM shape on this kind of machine (../shared/anchors/llama-cpp.md).
// Medians of several runs after a warm-up; one thread; float32 compute. Options: --json, --runs N
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { generate, type CausalLM, buildModel, Rng, Tensor, Weights, type HfConfig } from '../src/index.js';
import { loadCheckpoint } from '../src/node/checkpoint.js';

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1]) || 3;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A Llama-shaped model with random weights (uniform ±0.02), stored in `dtype` and widened by the model. */
function randomLlama(o: { E: number; layers: number; heads: number; kvHeads: number; F: number; V: number; dtype?: 'float32' | 'float16' }): { model: CausalLM; parameters: number } {
  const { E, F, V, layers } = o;
  const D = E / o.heads;
  const Hkv = o.kvHeads;
  const c: HfConfig = {
    architectures: ['LlamaForCausalLM'], hidden_size: E, num_hidden_layers: layers, num_attention_heads: o.heads, num_key_value_heads: Hkv,
    intermediate_size: F, vocab_size: V, max_position_embeddings: 2048, rms_norm_eps: 1e-5, tie_word_embeddings: true, eos_token_id: [],
  };
  const rng = new Rng(7);
  const t = (shape: number[]) => Tensor.from(Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => (rng.uniform() * 2 - 1) * 0.02), shape, o.dtype ?? 'float32');
  const ones = () => Tensor.from(new Float32Array(E).fill(1), [E]);
  const m = new Map<string, Tensor>([['model.embed_tokens.weight', t([V, E])], ['model.norm.weight', ones()]]);
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    m.set(`${p}input_layernorm.weight`, ones()).set(`${p}post_attention_layernorm.weight`, ones())
      .set(`${p}self_attn.q_proj.weight`, t([E, E])).set(`${p}self_attn.k_proj.weight`, t([Hkv * D, E]))
      .set(`${p}self_attn.v_proj.weight`, t([Hkv * D, E])).set(`${p}self_attn.o_proj.weight`, t([E, E]))
      .set(`${p}mlp.gate_proj.weight`, t([F, E])).set(`${p}mlp.up_proj.weight`, t([F, E])).set(`${p}mlp.down_proj.weight`, t([E, F]));
  }
  const w = new Weights(m, `random-${layers}x${E}`);
  return { model: buildModel(c, w) as CausalLM, parameters: w.summary().parameters };
}

async function measure(name: string, model: CausalLM, parameters: number, promptLen: number, newTokens: number) {
  const prompt = Array.from({ length: promptLen }, (_, i) => (i * 31 + 7) % model.info.vocabSize);
  await generate(model, null, prompt.slice(0, 8), { greedy: true, maxTokens: 4, stopTokens: [] }); // warm-up
  const ttft: number[] = [];
  const decode: number[] = [];
  for (let r = 0; r < runs; r++) {
    const g = await generate(model, null, prompt, { greedy: true, maxTokens: newTokens, stopTokens: [] });
    ttft.push(g.timings.prefillMs);
    decode.push(g.timings.decodeMs / (newTokens - 1));
  }
  return {
    model: name, parameters, promptTokens: promptLen, newTokens,
    ttftMs: median(ttft), prefillTokPerS: promptLen / (median(ttft) / 1000), decodeMsPerToken: median(decode), decodeTokPerS: 1000 / median(decode),
  };
}

const tinyDir = fileURLToPath(new URL('../../models/qkv-tiny', import.meta.url));
const tiny = loadCheckpoint(tinyDir, { tokenizer: false });
const big = randomLlama({ E: 768, layers: 12, heads: 12, kvHeads: 4, F: 2048, V: 32000 });
// SmolLM-135M's shape (hidden 576, 30 layers, 9 heads, 3 kv heads, MLP 1536, vocab 49152), f16 weights as llama.cpp ran it
const smol = randomLlama({ E: 576, layers: 30, heads: 9, kvHeads: 3, F: 1536, V: 49152, dtype: 'float16' });
const rows = [
  await measure('qkv-tiny (4.1M, Llama, GQA 8/2)', tiny.model as CausalLM, tiny.weights.summary().parameters, 128, 64),
  await measure('random Llama ~100M (768×12, GQA 12/4)', big.model, big.parameters, 64, 16),
  await measure('SmolLM-135M shape, f16 weights (random)', smol.model, smol.parameters, 64, 16),
];
if (args.includes('--json')) {
  console.log(JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, runs, rows }, null, 2));
} else {
  console.log(`qkv generation bench — float32, 1 thread, greedy, KV cache; ${cpus()[0]?.model} (${cpus().length} cores), node ${process.version}; median of ${runs}\n`);
  // llama.cpp on this machine kind, one thread (../shared/anchors/llama-cpp.md, measured 2026-11-22): pp512 / tg128 t/s
  const LLAMA_CPP: Record<number, [number, number]> = { 0: [4272, 1734], 2: [230, 76] };
  console.log('model                                   | params | prompt | TTFT ms | prefill tok/s | decode ms/tok | decode tok/s | llama.cpp 1t pp / tg | qkv/llama.cpp pp, tg');
  console.log('----------------------------------------|--------|--------|---------|---------------|---------------|--------------|----------------------|---------------------');
  rows.forEach((r, i) => {
    const a = LLAMA_CPP[i];
    const anchor = a ? `${a[0]} / ${a[1]}`.padStart(20) : '–'.padStart(20);
    const ratio = a ? `${(r.prefillTokPerS / a[0]).toFixed(2)}×, ${(r.decodeTokPerS / a[1]).toFixed(2)}×`.padStart(19) : '–'.padStart(19);
    console.log(`${r.model.padEnd(39)} | ${(r.parameters / 1e6).toFixed(1).padStart(5)}M | ${String(r.promptTokens).padStart(6)} | ${r.ttftMs.toFixed(0).padStart(7)} | ${r.prefillTokPerS.toFixed(1).padStart(13)} | ${r.decodeMsPerToken.toFixed(1).padStart(13)} | ${r.decodeTokPerS.toFixed(1).padStart(12)} | ${anchor} | ${ratio}`);
  });
}
