// OLMo 2 (OLMo Team 2024, https://arxiv.org/abs/2501.00656): the Llama architecture with its norms moved and qk-norm
// over the whole projection (one RMSNorm over all heads of q, one over all of k, before RoPE):
//   x = x + RMSNorm(o_proj(Attention(RoPE(RMSNorm(q_proj(x))), RoPE(RMSNorm(k_proj(x))), v_proj(x))))
//   x = x + RMSNorm(MLP(x))                        — no norm before attention or the MLP
import { Llama } from './llama.js';
import type { HfConfig } from './config.js';
import type { Weights } from './weights.js';

/** Olmo2ForCausalLM. */
export function olmo2(c: HfConfig, w: Weights): Llama {
  const variant = { qkvBias: c.attention_bias === true, slidingWindow: null, qkNorm: 'projection', postNorm: true } as const;
  return new Llama(c, w, { architecture: 'Olmo2ForCausalLM', ...variant });
}
