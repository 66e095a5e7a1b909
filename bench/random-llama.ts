// A Llama-shaped model with random weights, built in memory (no download), for the generation benchmarks.
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildModel, type CausalLM, type HfConfig, Rng, Tensor, type WeightFormat, Weights } from '../src/index.js';
import { writeSafetensors } from '../src/node/files.js';

/** The shape of a Llama: hidden E, layers, heads, kv heads, MLP width F, vocabulary V; weights stored in `dtype`. */
export interface LlamaShape { E: number; layers: number; heads: number; kvHeads: number; F: number; V: number; dtype?: 'float32' | 'float16' }

/** The config and tensors (Hugging Face names) of a Llama with random weights (uniform ±0.02) and unit norms. */
export function randomLlamaTensors(o: LlamaShape): { config: HfConfig; tensors: Map<string, Tensor> } {
  const { E, F, V, layers } = o;
  const D = E / o.heads;
  const Hkv = o.kvHeads;
  const config: HfConfig = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: E, num_hidden_layers: layers, num_attention_heads: o.heads,
    num_key_value_heads: Hkv, intermediate_size: F, vocab_size: V, max_position_embeddings: 2048, rms_norm_eps: 1e-5,
    tie_word_embeddings: true, eos_token_id: [],
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
  return { config, tensors: m };
}

/** SmolLM-135M's shape (hidden 576, 30 layers, 9 heads, 3 kv heads, MLP 1536, vocabulary 49,152), f16 weights. */
export const SMOLLM_135M: LlamaShape = { E: 576, layers: 30, heads: 9, kvHeads: 3, F: 1536, V: 49152, dtype: 'float16' };

/** A checkpoint directory `dir` (config.json, model.safetensors) of a random Llama; its tensors and file size too. */
export function writeRandomCheckpoint(dir: string, shape: LlamaShape):
  { config: HfConfig; tensors: Map<string, Tensor>; bytes: number } {
  const { config, tensors } = randomLlamaTensors(shape);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
  return { config, tensors, bytes: statSync(join(dir, 'model.safetensors')).size };
}

/** A Llama-shaped model with random weights (uniform ±0.02), stored in `dtype` and widened by the model. */
export function randomLlama(o: LlamaShape & { format?: WeightFormat }): { model: CausalLM; parameters: number } {
  const { config, tensors } = randomLlamaTensors(o);
  const w = new Weights(tensors, `random-${o.layers}x${o.E}`, { format: o.format });
  return { model: buildModel(config, w) as CausalLM, parameters: w.summary().parameters };
}
