// Phi-3 (Abdin et al. 2024, https://arxiv.org/abs/2404.14219): the Llama architecture with fused projections — one
// qkv_proj whose rows are q, then k, then v, and one gate_up_proj (the gate's rows, then up's) — and LongRoPE
// (rope.ts) for contexts past the original one. The fused matrices are split into Llama's q/k/v and gate/up at load.
import { Llama, decoderInfo } from './llama.js';
import { count, slidingWindowOf, type HfConfig } from './config.js';
import type { Weights } from './weights.js';

/** Phi3ForCausalLM. */
export function phi3(c: HfConfig, w: Weights): Llama {
  const { hiddenSize: E, numHeads: Hq, numKvHeads: Hkv, headDim: D, numLayers } = decoderInfo(c, 'Phi3ForCausalLM');
  const F = count(c, 'intermediate_size');
  for (let l = 0; l < numLayers; l++) {
    const p = `model.layers.${l}.`;
    const [attn, mlp] = [`${p}self_attn.`, `${p}mlp.`];
    const qkv = [[`${attn}q_proj.weight`, Hq * D], [`${attn}k_proj.weight`, Hkv * D], [`${attn}v_proj.weight`, Hkv * D]] as const;
    w.splitRows(`${attn}qkv_proj.weight`, E, qkv);
    w.splitRows(`${mlp}gate_up_proj.weight`, E, [[`${mlp}gate_proj.weight`, F], [`${mlp}up_proj.weight`, F]]);
  }
  return new Llama(c, w, { architecture: 'Phi3ForCausalLM', qkvBias: false, slidingWindow: slidingWindowOf(c) });
}
