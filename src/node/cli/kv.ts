// `qkv kv [--model DIR | --preset NAME] [--context N] [--batch B] [--dtype f32|f16|bf16|int8|int4] [--block-size N]
//         [--window W]`: the KV-cache size table (MHA / GQA / MQA layouts and the cache strategies).
import { parseArgs } from 'node:util';
import { KV_PRESETS, humanBytes, kvTable, type KvShape } from '../../cache/memory.js';
import { QkvError } from '../../errors.js';
import { inspectCheckpoint } from '../checkpoint.js';
import { countArg, numberArg } from './shared.js';

export const KV_HELP = `usage: qkv kv [--model DIR | --preset NAME] [--context N] [--batch B] [--dtype f16] [--block-size 16] [--window W]
presets: ${Object.keys(KV_PRESETS).join(', ')}`;

/** Layers and heads from a checkpoint's config.json. */
function shapeOf(dir: string): KvShape {
  const c = inspectCheckpoint(dir).config as Record<string, unknown>;
  const n = (...keys: string[]) => { for (const k of keys) if (typeof c[k] === 'number') return c[k] as number; return undefined; };
  const heads = n('num_attention_heads', 'n_head', 'num_heads');
  const hidden = n('hidden_size', 'n_embd', 'd_model');
  const layers = n('num_hidden_layers', 'n_layer', 'num_decoder_layers', 'num_layers');
  if (!heads || !layers) throw new QkvError(`${dir}/config.json: no layer or head counts`);
  return {
    name: String((c.architectures as string[] | undefined)?.[0] ?? dir), layers, heads, kvHeads: n('num_key_value_heads') ?? heads,
    headDim: n('head_dim', 'd_kv') ?? (hidden! / heads), context: n('max_position_embeddings', 'n_positions'),
    slidingWindow: typeof c.sliding_window === 'number' ? c.sliding_window : undefined,
  };
}

export function kvCommand(argv: string[], out: (s: string) => void): number {
  const { values } = parseArgs({ args: argv, strict: true, options: {
    model: { type: 'string' }, preset: { type: 'string' }, context: { type: 'string' }, batch: { type: 'string' },
    dtype: { type: 'string' }, 'block-size': { type: 'string' }, window: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  } });
  if (values.help) { out(`${KV_HELP}\n`); return 0; }
  if (values.model && values.preset) throw new QkvError('qkv kv: give --model or --preset, not both');
  const presetName = values.preset ?? (values.model ? undefined : 'llama-2-7b');
  const shape = presetName ? KV_PRESETS[presetName] : shapeOf(values.model!);
  if (!shape) throw new QkvError(`qkv kv: unknown preset '${presetName}'\n${KV_HELP}`);
  const context = countArg(values.context, 'context') ?? shape.context ?? 4096;
  const batch = countArg(values.batch, 'batch') ?? 1;
  const dtype = values.dtype ?? 'f16';
  const rows = kvTable(shape, { context, batch, dtype, blockSize: countArg(values['block-size'], 'block-size'), window: countArg(values.window, 'window') });
  out(`KV cache of ${shape.name}: ${shape.layers} layers, ${shape.heads} query heads, ${shape.kvHeads} kv heads, head_dim ${shape.headDim}\n`);
  out(`${context} tokens × batch ${batch}, ${dtype}; bytes = 2 × layers × kv_heads × head_dim × bytes/elem × tokens × batch\n\n`);
  out(`${'layout'.padEnd(32)} ${'cache'.padEnd(32)} ${'bytes'.padStart(16)} ${'human'.padStart(10)} ${'per seq'.padStart(10)}  note\n`);
  for (const r of rows) {
    out(`${r.layout.padEnd(32)} ${r.cache.padEnd(32)} ${String(Math.round(r.bytes)).padStart(16)} ${humanBytes(r.bytes).padStart(10)} ${humanBytes(r.bytes / batch).padStart(10)}  ${r.note}\n`);
  }
  return 0;
}
