// `qkv info [DIR]`: architecture, parameters, dtype, context length and KV-cache bytes per token, from config.json
// and the safetensors headers only (no tensor data is read).
import { parseArgs } from 'node:util';
import { QkvError } from '../../errors.js';
import { attentionFeatures, kvFloatsPerToken } from '../../models/features.js';
import { supportedArchitectures } from '../../models/registry.js';
import { inspectCheckpoint } from '../checkpoint.js';
import { DEFAULT_MODEL_DIR, human } from './shared.js';

const pick = (c: Record<string, unknown>, keys: string[]): number | undefined => {
  for (const k of keys) if (typeof c[k] === 'number') return c[k] as number;
  return undefined;
};

export function infoCommand(argv: string[], out: (s: string) => void): number {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: {} });
  if (positionals.length > 1) throw new QkvError('usage: qkv info [DIR]');
  const s = inspectCheckpoint(positionals[0] ?? DEFAULT_MODEL_DIR);
  const c = s.config;
  const arch = c.architectures?.[0] ?? '(none)';
  const layers = pick(c, ['num_hidden_layers', 'n_layer', 'num_decoder_layers', 'num_layers']);
  const heads = pick(c, ['num_attention_heads', 'n_head', 'num_heads']);
  const hidden = pick(c, ['hidden_size', 'n_embd', 'd_model']);
  const kvHeads = pick(c, ['num_key_value_heads']) ?? heads;
  const headDim = pick(c, ['head_dim', 'd_kv']) ?? (hidden && heads ? hidden / heads : undefined);
  const context = pick(c, ['max_position_embeddings', 'n_positions']);
  const rows: [string, string][] = [
    ['directory', s.dir],
    ['architecture', `${arch}${supportedArchitectures().includes(arch) ? '' : '  (not supported by qkv)'}`],
    ['parameters', `${s.parameters.toLocaleString('en-US')} (${(s.parameters / 1e6).toFixed(1)} M)`],
    ['dtype', `${s.dtypes.join(', ')} (${human(s.bytes)} of weights; qkv computes in float32)`],
    ['layers / heads / kv heads', `${layers ?? '?'} / ${heads ?? '?'} / ${kvHeads ?? '?'}`],
    ['hidden size / head dim', `${hidden ?? '?'} / ${headDim ?? '?'}`],
    ['vocabulary', String(c.vocab_size ?? '?')],
    ['context length', context ? String(context) : 'unbounded (relative positions)'],
  ];
  attentionFeatures(c).forEach((f, n) => rows.push([n === 0 ? 'attention' : '', f]));
  const perToken = kvFloatsPerToken(c); // 2 × layers × kv heads × head_dim, or MLA's layers × (latent + RoPE key)
  if (perToken) {
    rows.push(['KV cache per token', `${human(perToken * 4)} in float32, ${human(perToken * 2)} in float16/bfloat16`]);
    if (context) rows.push(['KV cache at full context', `${human(perToken * 4 * context)} in float32 (batch 1)`]);
  }
  for (const [k, v] of rows) out(`${k.padEnd(26)} ${v}\n`);
  return 0;
}
