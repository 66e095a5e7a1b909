// Qwen3 (Qwen Team 2025, https://arxiv.org/abs/2505.09388): the Llama architecture with qk-norm — an RMSNorm over each
// head of q and of k (weights [head_dim], shared by the heads) before RoPE, which keeps attention logits bounded
// without Qwen2's q/k/v biases:   q = RoPE(RMSNorm_head(q_proj(x))),   k = RoPE(RMSNorm_head(k_proj(x)))
import { Llama } from './llama.js';
import type { HfConfig } from './config.js';
import type { Weights } from './weights.js';

/** Qwen3ForCausalLM. */
export function qwen3(c: HfConfig, w: Weights): Llama {
  const window = c.use_sliding_window === true && typeof c.sliding_window === 'number' ? c.sliding_window : null;
  return new Llama(c, w, { architecture: 'Qwen3ForCausalLM', qkvBias: c.attention_bias === true, slidingWindow: window, qkNorm: 'head' });
}
