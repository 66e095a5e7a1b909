// Architecture name (config.json "architectures") → the family that builds it.
import { describeValue, QkvError } from '../errors.js';
import { count, num, ropeConfig, type HfConfig } from './config.js';
import { bert } from './bert.js';
import { deepseekV3 } from './deepseek-v3.js';
import { gemma2 } from './gemma2.js';
import { gemma3 } from './gemma3.js';
import { gpt2 } from './gpt2.js';
import { gptNeoX } from './gpt-neox.js';
import { gptOss } from './gpt-oss.js';
import { decoderInfo, llama } from './llama.js';
import { mistral } from './mistral.js';
import { olmo2 } from './olmo2.js';
import { phi3 } from './phi3.js';
import type { Model } from './model.js';
import { qwen2 } from './qwen2.js';
import { qwen3 } from './qwen3.js';
import { smollm3 } from './smollm3.js';
import { t5 } from './t5.js';
import { vit } from './vit.js';
import type { Weights } from './weights.js';

type Builder = (c: HfConfig, w: Weights) => Model;

const FAMILIES = new Map<string, Builder>([
  ['GPT2LMHeadModel', gpt2],
  ['LlamaForCausalLM', llama],
  ['MistralForCausalLM', mistral],
  ['Qwen2ForCausalLM', qwen2],
  ['Gemma2ForCausalLM', gemma2],
  ['Qwen3ForCausalLM', qwen3],
  ['Gemma3ForCausalLM', gemma3],
  ['SmolLM3ForCausalLM', smollm3],
  ['Phi3ForCausalLM', phi3],
  ['GPTNeoXForCausalLM', gptNeoX],
  ['Olmo2ForCausalLM', olmo2],
  ['GptOssForCausalLM', gptOss],
  ['DeepseekV3ForCausalLM', deepseekV3],
  ['BertModel', bert],
  ['T5ForConditionalGeneration', t5],
  ['ViTModel', vit],
]);

// the decoder families whose sizes, heads, RoPE and norms checkConfig reads up front
const DECODERS = ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM', 'Gemma2ForCausalLM', 'Qwen3ForCausalLM',
  'Gemma3ForCausalLM', 'SmolLM3ForCausalLM', 'Phi3ForCausalLM', 'GPTNeoXForCausalLM', 'Olmo2ForCausalLM', 'GptOssForCausalLM'];

/** Registers another architecture (e.g. from a plugin); names must be new. */
export function registerArchitecture(name: string, build: Builder): void {
  if (FAMILIES.has(name)) throw new QkvError(`architecture '${name}' is already registered`);
  FAMILIES.set(name, build);
}

/** Architectures qkv can load. */
export function supportedArchitectures(): string[] {
  return [...FAMILIES.keys()];
}

/**
 * Checks config.json without weights, as far as the family reads it up front (for qkv info, which reads headers only):
 * the decoder families' sizes, heads, RoPE and norms. Every family checks the rest when it is built.
 */
export function checkConfig(config: HfConfig): void {
  const arch = config.architectures?.[0];
  if (typeof arch !== 'string' || !FAMILIES.has(arch)) return; // qkv info shows it as not supported
  if (!DECODERS.includes(arch)) return;
  const info = decoderInfo(config, arch);
  ropeConfig(config, info.headDim);
  count(config, 'intermediate_size');
  num(config, arch === 'GPTNeoXForCausalLM' ? 'layer_norm_eps' : 'rms_norm_eps', 1e-6, { min: 0 });
}

/** Builds the model that config.json describes from its weights. */
export function buildModel(config: HfConfig, weights: Weights): Model {
  if (typeof config !== 'object' || config === null) throw new QkvError(`config.json must be an object, got ${describeValue(config)}`);
  const arch = config.architectures?.[0];
  if (arch !== undefined && typeof arch !== 'string') {
    throw new QkvError(`config.json: "architectures" must name the model class, got ${describeValue(arch)}`);
  }
  if (!arch) throw new QkvError(`config.json: no "architectures" entry (supported: ${supportedArchitectures().join(', ')})`);
  const build = FAMILIES.get(arch);
  if (!build) throw new QkvError(`config.json: architecture '${arch}' is not supported (supported: ${supportedArchitectures().join(', ')})`);
  return build(config, weights);
}
