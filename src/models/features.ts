// What a checkpoint's attention does, read from its config.json alone (for `qkv info` and the lab): head layout (MHA,
// GQA ratio, MQA, MLA ranks), masks (sliding-window pattern), positions (RoPE variant and base, partial rotary, NoPE
// layers, a RoPE per layer type), normalisation (qk-norm), soft-capping, learned sinks — and its KV bytes per token.
import { slidingWindowOf, type HfConfig } from './config.js';

const num = (c: Record<string, unknown>, k: string): number | undefined => (typeof c[k] === 'number' ? (c[k] as number) : undefined);

/** The attention features of a config, one short line each. */
export function attentionFeatures(c: HfConfig): string[] {
  const out: string[] = [];
  const heads = num(c, 'num_attention_heads') ?? num(c, 'n_head');
  const kvHeads = num(c, 'num_key_value_heads') ?? heads;
  const arch = String(c.architectures?.[0] ?? '');
  if (num(c, 'kv_lora_rank')) {
    const q = num(c, 'q_lora_rank');
    const rope = num(c, 'qk_rope_head_dim') ?? '?';
    const qRank = q ? `, q rank ${q}` : '';
    out.push(`multi-head latent attention: latent rank ${c.kv_lora_rank}, RoPE key ${rope} dims shared by ${heads} heads${qRank}`);
  } else if (heads && kvHeads) {
    out.push(kvHeads === heads ? `multi-head (${heads} heads)` : kvHeads === 1 ? `multi-query (${heads} query heads, 1 kv head)`
      : `grouped-query: ${heads} query heads share ${kvHeads} kv heads (${heads / kvHeads} : 1)`);
  }
  const types = Array.isArray(c.layer_types) ? (c.layer_types as unknown[]).map(String) : null;
  const window = c.use_sliding_window === false ? null : slidingWindowOf(c); // (checked, as the families read it)
  if (window && types) {
    const sliding = types.filter((t) => t === 'sliding_attention').length;
    if (sliding) out.push(`sliding window ${window} on ${sliding} of ${types.length} layers (the rest global)`);
  } else if (window) out.push(`sliding window ${window}`);
  if (/^(Qwen3|Gemma3)/.test(arch)) out.push('qk-norm: RMSNorm over each head of q and k');
  if (/^Olmo2/.test(arch)) out.push('qk-norm: RMSNorm over the whole q and k projections');
  if (/^GptOss/.test(arch)) out.push('learned attention sinks: one logit per head in every softmax row');
  const cap = num(c, 'attn_logit_softcapping');
  if (cap) out.push(`attention logit soft-capping at ${cap}`);
  out.push(...ropeFeatures(c));
  return out;
}

// RoPE: its type and base (per layer type where the config has several), partial rotary, NoPE layers
function ropeFeatures(c: HfConfig): string[] {
  const params = (c.rope_parameters ?? c.rope_scaling ?? {}) as Record<string, unknown>;
  const describe = (p: Record<string, unknown>) => {
    const type = String(p.rope_type ?? p.type ?? 'default');
    const theta = p.rope_theta ?? c.rope_theta ?? 10000;
    return `${type === 'default' ? 'RoPE' : `RoPE (${type}${typeof p.factor === 'number' ? ` ×${p.factor}` : ''})`}, base ${theta}`;
  };
  const out: string[] = [];
  const perType = ['sliding_attention', 'full_attention'].filter((t) => typeof params[t] === 'object' && params[t] !== null);
  const ofType = (t: string) => `${t.replace('_attention', '')} layers: ${describe(params[t] as Record<string, unknown>)}`;
  if (perType.length) out.push(perType.map(ofType).join('; '));
  else if (c.model_type !== 'gpt2' && !/^(T5|Bert|ViT|GPT2)/.test(String(c.architectures?.[0] ?? ''))) out.push(describe(params));
  const partial = params.partial_rotary_factor ?? c.partial_rotary_factor;
  if (typeof partial === 'number' && partial < 1) out.push(`partial rotary: RoPE on ${partial * 100}% of each head's dims`);
  const noRope = Array.isArray(c.no_rope_layers) ? (c.no_rope_layers as unknown[]).filter((x) => x === 0).length : 0;
  if (noRope) out.push(`NoPE: ${noRope} of ${(c.no_rope_layers as unknown[]).length} layers apply no RoPE`);
  else if (typeof c.no_rope_layer_interval === 'number') out.push(`NoPE: every ${c.no_rope_layer_interval}th layer applies no RoPE`);
  return out;
}

/** KV-cache floats per token over all layers: 2 · kv heads · head_dim (k and v dims of their own where they differ), or
 *  MLA's latent + RoPE key; null when the config does not say. */
export function kvFloatsPerToken(c: HfConfig): number | null {
  const layers = num(c, 'num_hidden_layers') ?? num(c, 'n_layer') ?? num(c, 'num_decoder_layers') ?? num(c, 'num_layers');
  if (!layers) return null;
  const kvRank = num(c, 'kv_lora_rank');
  if (kvRank) return layers * (kvRank + (num(c, 'qk_rope_head_dim') ?? 0));
  const heads = num(c, 'num_attention_heads') ?? num(c, 'n_head') ?? num(c, 'num_heads');
  const hidden = num(c, 'hidden_size') ?? num(c, 'n_embd') ?? num(c, 'd_model');
  const kvHeads = num(c, 'num_key_value_heads') ?? heads;
  const headDim = num(c, 'head_dim') ?? num(c, 'd_kv') ?? (hidden && heads ? hidden / heads : undefined);
  if (!kvHeads || !headDim) return null;
  return layers * kvHeads * (headDim + (num(c, 'v_head_dim') ?? headDim));
}
