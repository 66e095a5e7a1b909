// Qwen2 (Yang et al. 2024, https://arxiv.org/abs/2407.10671): the Llama architecture with a bias on the q, k and v
// projections (o_proj has none). Its optional sliding window applies only when use_sliding_window is set.
import { Llama } from './llama.js';
import { slidingWindowOf, type HfConfig } from './config.js';
import type { Weights } from './weights.js';

/** Qwen2ForCausalLM. */
export function qwen2(c: HfConfig, w: Weights): Llama {
  const window = c.use_sliding_window === true ? slidingWindowOf(c) : null;
  return new Llama(c, w, { architecture: 'Qwen2ForCausalLM', qkvBias: true, slidingWindow: window });
}
