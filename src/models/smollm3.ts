// SmolLM3 (Hugging Face 2025): the Llama architecture with NoPE layers (Kazemnejad et al. 2023,
// https://arxiv.org/abs/2305.19466) — every 4th layer applies no rotary embedding at all, so its heads see position
// only through the causal mask (and what earlier layers wrote into x). config: no_rope_layers[l] = 1 uses RoPE, 0 not;
// older configs give no_rope_layer_interval (layer l skips RoPE when (l + 1) % interval = 0).
import { QkvError } from '../errors.js';
import { Llama } from './llama.js';
import { count, type HfConfig } from './config.js';
import type { Weights } from './weights.js';

/** SmolLM3ForCausalLM. */
export function smollm3(c: HfConfig, w: Weights): Llama {
  const layers = count(c, 'num_hidden_layers');
  const list = c.no_rope_layers;
  if (list !== undefined && (!Array.isArray(list) || list.length !== layers || list.some((x) => x !== 0 && x !== 1))) {
    throw new QkvError(`config.json: 'no_rope_layers' must list 0 or 1 for each of the ${layers} layers`);
  }
  const interval = list ? 0 : count(c, 'no_rope_layer_interval', 4);
  const noRope = (l: number) => (list ? list[l] === 0 : (l + 1) % interval === 0);
  const window = c.use_sliding_window === true && typeof c.sliding_window === 'number' ? c.sliding_window : null;
  return new Llama(c, w, { architecture: 'SmolLM3ForCausalLM', qkvBias: c.attention_bias === true, slidingWindow: window, noRope });
}
