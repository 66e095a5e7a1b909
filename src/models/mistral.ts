// Mistral 7B (Jiang et al. 2023, https://arxiv.org/abs/2310.06825): the Llama architecture with sliding-window
// attention — every layer attends to the last `sliding_window` positions only (keys j > i − W), so the KV cache can
// be a ring buffer of W tokens (issue #5).
import { Llama } from './llama.js';
import { slidingWindowOf, type HfConfig } from './config.js';
import type { Weights } from './weights.js';

/** MistralForCausalLM. */
export function mistral(c: HfConfig, w: Weights): Llama {
  return new Llama(c, w, { architecture: 'MistralForCausalLM', qkvBias: false, slidingWindow: slidingWindowOf(c) });
}
