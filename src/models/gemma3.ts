// Gemma 3 (Gemma Team 2025, https://arxiv.org/abs/2503.19786), text model, read next to transformers'
// modeling_gemma3.py. Gemma 2 (gemma2.ts) with these differences:
//   q = RoPE(RMSNorm_head(q_proj(x))),  k likewise        (qk-norm per head, (1 + γ) like every Gemma norm; replaces
//                                                           Gemma 2's logit soft-capping, which Gemma 3 configs drop)
//   local layers slide (window W), every 6th layer is global (layer_types)   — 5 : 1 instead of 1 : 1
//   each layer type has its own RoPE: local base 10⁴, global base 10⁶ with linear scaling (rope_parameters per type)
import { Gemma2 } from './gemma2.js';
import type { HfConfig } from './config.js';
import type { Weights } from './weights.js';

/** Gemma3ForCausalLM (the text model). */
export function gemma3(c: HfConfig, w: Weights): Gemma2 {
  return new Gemma2(c, w, { architecture: 'Gemma3ForCausalLM', qkNorm: true });
}
