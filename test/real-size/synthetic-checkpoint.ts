// A Llama-shaped checkpoint with random bf16 weights, written to disk tensor by tensor (never whole in memory) in the
// Hugging Face layout: config.json, model-0000i-of-0000n.safetensors shards and model.safetensors.index.json. For the
// real-size loading test (~1B shape) and `npm run bench:load` (Llama-2-7B's shape, 13.5 GB); the caller deletes it.
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** The shape of a Llama checkpoint (hidden size E, FFN width F, vocabulary V). */
export interface LlamaShape { E: number; layers: number; heads: number; kvHeads: number; F: number; V: number; tied: boolean }

/** Llama-3.2-1B's shape: 1.24 B parameters, 2.47 GB in bf16 (tied embeddings). */
export const LLAMA_1B: LlamaShape = { E: 2048, layers: 16, heads: 32, kvHeads: 8, F: 8192, V: 128256, tied: true };
/** Llama-2-7B's shape: 6.74 B parameters, 13.5 GB in bf16. */
export const LLAMA_7B: LlamaShape = { E: 4096, layers: 32, heads: 32, kvHeads: 32, F: 11008, V: 32000, tied: false };

/** The tensors of a Llama checkpoint, in order: name and shape. */
export function llamaTensors(s: LlamaShape): [string, number[]][] {
  const kv = (s.E / s.heads) * s.kvHeads;
  const t: [string, number[]][] = [['model.embed_tokens.weight', [s.V, s.E]]];
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    t.push([`${p}input_layernorm.weight`, [s.E]], [`${p}self_attn.q_proj.weight`, [s.E, s.E]],
      [`${p}self_attn.k_proj.weight`, [kv, s.E]], [`${p}self_attn.v_proj.weight`, [kv, s.E]],
      [`${p}self_attn.o_proj.weight`, [s.E, s.E]], [`${p}post_attention_layernorm.weight`, [s.E]],
      [`${p}mlp.gate_proj.weight`, [s.F, s.E]], [`${p}mlp.up_proj.weight`, [s.F, s.E]], [`${p}mlp.down_proj.weight`, [s.E, s.F]]);
  }
  t.push(['model.norm.weight', [s.E]]);
  if (!s.tied) t.push(['lm_head.weight', [s.V, s.E]]);
  return t;
}

const POOL = 2 ** 23; // bf16 values of random bits, reused at shifting offsets
const PIECE = 2 ** 24; // bytes per write

// bf16 weights of magnitude in [2^−7, 2^−6) with random signs (xorshift32), and 1.0 for the norms
function randomPool(seed: number): Uint16Array {
  const pool = new Uint16Array(POOL);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < POOL; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    pool[i] = (x & 0x807f) | 0x3c00;
  }
  return pool;
}

/**
 * Writes the checkpoint into `dir` (created) in `shards` files; returns the bytes of tensor data. Weights are random
 * (not trained): enough for the loader and one forward, whose logits stay finite.
 */
export function writeSyntheticLlama(dir: string, s: LlamaShape, shards: number, seed = 1): number {
  mkdirSync(dir, { recursive: true });
  const tensors = llamaTensors(s);
  const pool = randomPool(seed);
  const ones = new Uint16Array(POOL).fill(0x3f80);
  const bytesOf = (shape: number[]) => 2 * shape.reduce((a, b) => a * b, 1);
  const total = tensors.reduce((n, [, shape]) => n + bytesOf(shape), 0);
  const weightMap: Record<string, string> = {};
  let [next, written] = [0, 0];
  for (let i = 0; i < shards; i++) {
    // shard i takes tensors until the shards so far hold (i + 1)/shards of the bytes (the last takes the rest)
    const mine: [string, number[]][] = [];
    while (next < tensors.length && (written < ((i + 1) * total) / shards || i === shards - 1)) {
      mine.push(tensors[next]);
      written += bytesOf(tensors[next++][1]);
    }
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    for (const [name] of mine) weightMap[name] = file;
    writeShard(join(dir, file), mine, pool, ones);
  }
  const index = { metadata: { total_size: total }, weight_map: weightMap };
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index, null, 1));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: s.E, num_hidden_layers: s.layers, num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads, intermediate_size: s.F, vocab_size: s.V, max_position_embeddings: 4096, rms_norm_eps: 1e-5,
    rope_theta: 10000, tie_word_embeddings: s.tied, hidden_act: 'silu', torch_dtype: 'bfloat16', bos_token_id: 1, eos_token_id: 2,
  }, null, 1));
  return total;
}

function writeShard(path: string, tensors: [string, number[]][], pool: Uint16Array, ones: Uint16Array): void {
  const header: Record<string, unknown> = {};
  let at = 0;
  for (const [name, shape] of tensors) {
    const n = 2 * shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'BF16', shape, data_offsets: [at, at + n] };
    at += n;
  }
  let json = JSON.stringify(header);
  json = json.padEnd(Math.ceil(json.length / 8) * 8, ' ');
  const fd = openSync(path, 'w');
  try {
    const head = Buffer.alloc(8 + json.length);
    head.writeBigUInt64LE(BigInt(json.length), 0);
    head.write(json, 8, 'latin1');
    writeSync(fd, head);
    let shift = 0;
    for (const [, shape] of tensors) {
      const src = shape.length === 1 ? ones : pool;
      for (let left = shape.reduce((a, b) => a * b, 1); left > 0;) {
        const n = Math.min(left, PIECE / 2, POOL - shift);
        writeSync(fd, new Uint8Array(src.buffer, 2 * shift, 2 * n));
        left -= n;
        shift = (shift + n + 4099) % POOL; // a different stretch of the pool next time
      }
    }
  } finally {
    closeSync(fd);
  }
}
