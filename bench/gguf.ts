// Writing a Llama checkpoint as GGUF (llama.cpp's file format, version 3), so the benchmarks run llama.cpp on the very
// weights qkv runs: the same safetensors (or the same random tensors), the same shapes, in F32, F16, BF16, Q8_0 or
// Q4_0. Only what the benchmarks need: the Llama family with tied or untied embeddings.
//
// The layout (ggml's gguf.h):   "GGUF" u32 version, u64 tensor count, u64 key/value count,
//   key/values (string key, u32 type, value), tensor infos (string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset),
//   padding to 32 bytes, then each tensor's bytes at its offset (32-byte aligned). ne[0] is the innermost dimension, so a
//   Hugging Face weight [out, in] is ne = [in, out] with the same bytes.
//
// One difference in the weights themselves: Hugging Face's Llama applies RoPE to the two halves of each head
// (rotate_half), llama.cpp to adjacent pairs, so the rows of q_proj and k_proj are reordered per head:
//   row 2i + j of the GGUF head = row j·D/2 + i of the Hugging Face head   (i < D/2, j ∈ {0, 1})
// which is what llama.cpp's convert_hf_to_gguf.py does (`permute`).
import { closeSync, openSync, writeSync } from 'node:fs';
import { f32ToBf16, f32ToF16, type HfConfig, type Tensor } from '../src/index.js';

/** The tensor types the writer produces (ggml_type values). */
export const GGML = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, BF16: 30 } as const;
export type GgufType = keyof typeof GGML;
/** general.file_type for each weight type (llama_ftype). */
const FILE_TYPE: Record<GgufType, number> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 7, BF16: 32 };
const ALIGN = 32;
/** Q8_0 and Q4_0 quantize blocks of 32 weights along a row, each with its own f16 scale. */
const QK = 32;

/** Metadata values by GGUF value type. */
type Value = { u32: number } | { f32: number } | { bool: boolean } | { str: string } | { strs: string[] } | { i32s: Int32Array };

class Bytes {
  private chunks: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array): void { this.chunks.push(b); this.length += b.length; }
  u32(x: number): void { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, x, true); this.push(b); }
  u64(x: number): void { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(x), true); this.push(b); }
  f32(x: number): void { const b = new Uint8Array(4); new DataView(b.buffer).setFloat32(0, x, true); this.push(b); }
  str(s: string): void { const b = new TextEncoder().encode(s); this.u64(b.length); this.push(b); }
  value(v: Value): void {
    if ('u32' in v) { this.u32(4); this.u32(v.u32); } else if ('f32' in v) { this.u32(6); this.f32(v.f32); }
    else if ('bool' in v) { this.u32(7); this.push(Uint8Array.of(v.bool ? 1 : 0)); }
    else if ('str' in v) { this.u32(8); this.str(v.str); }
    else if ('strs' in v) { this.u32(9); this.u32(8); this.u64(v.strs.length); for (const s of v.strs) this.str(s); }
    else { this.u32(9); this.u32(5); this.u64(v.i32s.length); this.push(new Uint8Array(v.i32s.buffer, v.i32s.byteOffset, v.i32s.byteLength).slice()); }
  }
  pad(): void { const n = (ALIGN - (this.length % ALIGN)) % ALIGN; if (n) this.push(new Uint8Array(n)); }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) { out.set(c, at); at += c.length; }
    return out;
  }
}

/** The tokenizer as GGUF wants it: every token's text in id order, its type (1 normal, 3 control), the BPE merges. */
export interface GgufVocab { tokens: string[]; types: Int32Array; merges: string[]; bos: number; eos: number }

/**
 * A vocabulary of placeholder tokens `<t0>` … `<t{V−1}>` for benchmarks, which feed token ids, never text. Typed
 * user-defined (4), llama.cpp matches them literally in a prompt: where an API takes only text (wllama's completions),
 * the string of `<t{id}>` for the ids is tokenized to exactly those ids (bench/browser/page.ts builds it).
 */
export function placeholderVocab(V: number): GgufVocab {
  const tokens = Array.from({ length: V }, (_, i) => `<t${i}>`);
  return { tokens, types: new Int32Array(V).fill(4), merges: [], bos: 0, eos: 0 };
}


/** The vocabulary of a byte-level BPE tokenizer.json (GPT-2's kind, as qkv-tiny's), for llama.cpp's "gpt2" model. */
export function vocabFromTokenizerJson(json: Record<string, unknown>, bos: number, eos: number): GgufVocab {
  const model = json.model as { vocab: Record<string, number>; merges: (string | [string, string])[] };
  const tokens: string[] = [];
  for (const [t, id] of Object.entries(model.vocab)) tokens[id] = t;
  const types = new Int32Array(tokens.length).fill(1);
  for (const a of (json.added_tokens ?? []) as { id: number; content: string; special: boolean }[]) {
    tokens[a.id] = a.content;
    if (a.special) types[a.id] = 3;
  }
  const merges = model.merges.map((m) => (typeof m === 'string' ? m : m.join(' ')));
  return { tokens, types, merges, bos, eos };
}

/** Hugging Face's rotate_half rows → llama.cpp's adjacent pairs, per head (see the top of the file). */
function permuteRope(w: Float32Array, heads: number, cols: number): Float32Array {
  const rows = w.length / cols;
  const D = rows / heads;
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < D / 2; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * D + j * (D / 2) + i) * cols;
        out.set(w.subarray(from, from + cols), (h * D + 2 * i + j) * cols);
      }
    }
  }
  return out;
}

/** Q8_0: per block of 32, d = max|x| / 127 (f16), q = round(x / d) as int8. 34 bytes a block. */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / QK) * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < x.length / QK; b++) {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[b * QK + j]));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    view.setUint16(b * 34, f32ToF16(d), true);
    for (let j = 0; j < QK; j++) view.setInt8(b * 34 + 2 + j, Math.round(x[b * QK + j] * id));
  }
  return out;
}

/**
 * Q4_0: per block of 32, m = the weight of largest magnitude (with its sign), d = m / -8 (f16),
 * q = min(15, ⌊x / d + 8.5⌋) as 4 bits; byte j holds weight j (low nibble) and weight j + 16 (high). 18 bytes a block.
 */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / QK) * 18);
  const view = new DataView(out.buffer);
  for (let b = 0; b < x.length / QK; b++) {
    let m = 0;
    for (let j = 0; j < QK; j++) if (Math.abs(x[b * QK + j]) > Math.abs(m)) m = x[b * QK + j];
    const d = m / -8;
    const id = d ? 1 / d : 0;
    view.setUint16(b * 18, f32ToF16(d), true);
    const q = (v: number) => Math.min(15, Math.trunc(v * id + 8.5));
    for (let j = 0; j < QK / 2; j++) out[b * 18 + 2 + j] = q(x[b * QK + j]) | (q(x[b * QK + j + 16]) << 4);
  }
  return out;
}

/** The bytes of one tensor in `type`. */
function encode(x: Float32Array, type: GgufType): Uint8Array {
  if (type === 'F32') return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  if (type === 'Q8_0') return quantizeQ8_0(x);
  if (type === 'Q4_0') return quantizeQ4_0(x);
  const half = type === 'F16' ? f32ToF16 : f32ToBf16;
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = half(x[i]);
  return new Uint8Array(out.buffer);
}

/** Hugging Face Llama tensor names → GGUF names. */
function ggufName(name: string): string | null {
  const top: Record<string, string> = { 'model.embed_tokens.weight': 'token_embd.weight', 'model.norm.weight': 'output_norm.weight',
    'lm_head.weight': 'output.weight' };
  if (Object.hasOwn(top, name)) return top[name];
  const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(name);
  const layer: Record<string, string> = { input_layernorm: 'attn_norm', post_attention_layernorm: 'ffn_norm', 'self_attn.q_proj': 'attn_q',
    'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v', 'self_attn.o_proj': 'attn_output', 'mlp.gate_proj': 'ffn_gate',
    'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down' };
  return m && Object.hasOwn(layer, m[2]) ? `blk.${m[1]}.${layer[m[2]]}.weight` : null;
}

/**
 * Writes `tensors` (a Hugging Face Llama's, by their Hugging Face names) to `path` as GGUF, matrices in `type`, norms in
 * F32 (as llama.cpp keeps them). Returns the bytes of tensor data written.
 */
export function writeLlamaGguf(path: string, config: HfConfig, tensors: Map<string, Tensor>, type: GgufType, vocab: GgufVocab,
  name = 'qkv bench'): number {
  const c = config as Record<string, number>;
  const [E, H, Hkv] = [c.hidden_size, c.num_attention_heads, c.num_key_value_heads ?? c.num_attention_heads];
  const D = c.head_dim ?? E / H;
  const rope = (config as { rope_parameters?: { rope_theta?: number } }).rope_parameters?.rope_theta ?? c.rope_theta ?? 10000;
  const meta: [string, Value][] = [
    ['general.architecture', { str: 'llama' }], ['general.name', { str: name }], ['general.alignment', { u32: ALIGN }],
    ['general.file_type', { u32: FILE_TYPE[type] }],
    ['llama.context_length', { u32: c.max_position_embeddings }], ['llama.embedding_length', { u32: E }],
    ['llama.block_count', { u32: c.num_hidden_layers }], ['llama.feed_forward_length', { u32: c.intermediate_size }],
    ['llama.attention.head_count', { u32: H }], ['llama.attention.head_count_kv', { u32: Hkv }],
    ['llama.attention.key_length', { u32: D }], ['llama.attention.value_length', { u32: D }],
    ['llama.rope.dimension_count', { u32: D }], ['llama.rope.freq_base', { f32: rope }],
    ['llama.attention.layer_norm_rms_epsilon', { f32: c.rms_norm_eps }], ['llama.vocab_size', { u32: c.vocab_size }],
    ['tokenizer.ggml.model', { str: 'gpt2' }], ['tokenizer.ggml.pre', { str: 'gpt-2' }],
    ['tokenizer.ggml.tokens', { strs: vocab.tokens }], ['tokenizer.ggml.token_type', { i32s: vocab.types }],
    ['tokenizer.ggml.merges', { strs: vocab.merges }],
    ['tokenizer.ggml.bos_token_id', { u32: vocab.bos }], ['tokenizer.ggml.eos_token_id', { u32: vocab.eos }],
    ['tokenizer.ggml.add_bos_token', { bool: false }], // the prompt is exactly the ids given, as qkv gets them
  ];
  const entries: { name: string; shape: number[]; type: GgufType; data: Uint8Array }[] = [];
  for (const [hf, t] of tensors) {
    const g = ggufName(hf);
    if (!g) throw new Error(`writeLlamaGguf: no GGUF name for tensor "${hf}"`);
    let x = t.toFloat32();
    if (hf.endsWith('q_proj.weight')) x = permuteRope(x, H, t.shape[1]);
    if (hf.endsWith('k_proj.weight')) x = permuteRope(x, Hkv, t.shape[1]);
    const ty: GgufType = t.shape.length === 1 ? 'F32' : type;
    entries.push({ name: g, shape: [...t.shape].reverse(), type: ty, data: encode(x, ty) });
  }
  const head = new Bytes();
  head.push(new TextEncoder().encode('GGUF'));
  head.u32(3);
  head.u64(entries.length);
  head.u64(meta.length);
  for (const [k, v] of meta) { head.str(k); head.value(v); }
  let offset = 0;
  for (const e of entries) {
    head.str(e.name);
    head.u32(e.shape.length);
    for (const n of e.shape) head.u64(n);
    head.u32(GGML[e.type]);
    head.u64(offset);
    offset += Math.ceil(e.data.length / ALIGN) * ALIGN;
  }
  head.pad();
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, head.concat());
    for (const e of entries) {
      writeSync(fd, e.data);
      const pad = (ALIGN - (e.data.length % ALIGN)) % ALIGN;
      if (pad) writeSync(fd, new Uint8Array(pad));
    }
  } finally {
    closeSync(fd);
  }
  return offset;
}
