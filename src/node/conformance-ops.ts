// How each golden op is run by qkv: op name → a function from the case's tensors and params to qkv's outputs,
// named as the file names its expected tensors. The runner (conformance.ts) compares whatever both sides have.
import { attention, attentionBackward } from '../attention/index.js';
import { maskSpecOf } from '../attention/dispatch.js';
import type { AttentionOptions, KernelName } from '../attention/options.js';
import { alibiSlopes } from '../attention/score-mods.js';
import { checkQkv } from '../attention/validate.js';
import { GATConv, GATv2Conv } from '../nn/gat.js';
import { linearAttention } from '../nn/linear-attention.js';
import { MultiheadAttention } from '../nn/mha.js';
import { performerAttention } from '../nn/performer.js';
import { applyRope, ropeInvFreq, type RopeConfig } from '../nn/positional/rope.js';
import { sinusoidalEncoding } from '../nn/positional/sinusoidal.js';
import { t5RelativeBucket } from '../nn/positional/t5-bucket.js';
import { additiveAttention, cosineAttention, l2Attention, luongAttention } from '../nn/score-functions.js';
import { join } from 'node:path';
import { greedy } from '../generate/generate.js';
import { Tensor } from '../tensor/tensor.js';
import { loadCheckpoint } from './checkpoint.js';

/** Thrown to skip a case whose parameters name a feature qkv lacks. */
export class SkipCase extends Error {}

/** An op runner: outputs by name, and optionally a problem found before comparing (e.g. a wrong mask). */
export type OpRunner = (t: Map<string, Tensor>, params: Record<string, unknown>, kernel: KernelName) => { actual: Map<string, Tensor>; problem?: string };

const need = (t: Map<string, Tensor>, name: string): Tensor => {
  const x = t.get(name);
  if (!x) throw new Error(`file lacks tensor '${name}'`);
  return x;
};
const outputs = (o: Record<string, Tensor | null | undefined>) => new Map(Object.entries(o).filter((e): e is [string, Tensor] => !!e[1]));

const SDPA_PARAMS = new Set([
  'B', 'Hq', 'Hkv', 'L', 'S', 'D', 'Dv', 'scale', 'causal', 'mask', 'bias', 'key_lengths', 'window', 'dilation',
  'global_tokens', 'block_size', 'window_blocks', 'global_blocks', 'alibi_slopes', 'softcap', 'cu_seqlens', 'prefix',
]);

/** Attention options from a golden case's params and tensors. */
export function sdpaOptions(params: Record<string, unknown>, t: Map<string, Tensor>): AttentionOptions {
  for (const key of Object.keys(params)) if (!SDPA_PARAMS.has(key)) throw new SkipCase(`param '${key}' not supported yet`);
  const o: AttentionOptions = {};
  if (params.scale !== undefined) o.scale = params.scale as number;
  const c = params.causal;
  if (c === true || c === 'top_left') o.causal = 'top-left';
  else if (c === 'bottom_right') o.causal = 'bottom-right';
  if (params.mask === 'bool') o.mask = need(t, 'keep').to('bool');
  if (params.bias === 'additive') o.bias = need(t, 'bias');
  if (params.key_lengths !== undefined) o.keyLengths = t.get('key_lengths') ?? (params.key_lengths as number[]);
  if (params.window !== undefined) o.window = params.window as [number, number];
  if (params.dilation !== undefined) o.dilation = params.dilation as number;
  if (params.global_tokens !== undefined) o.globalTokens = params.global_tokens as number[];
  if (params.block_size !== undefined) {
    const random = t.get('random_blocks');
    o.blockSparse = {
      blockSize: params.block_size as number,
      windowBlocks: (params.window_blocks as number | undefined) ?? 0,
      globalBlocks: (params.global_blocks as number[] | undefined) ?? [],
      randomBlocks: random ? random.toArray() : [],
    };
  }
  if (params.alibi_slopes !== undefined) o.alibiSlopes = params.alibi_slopes as number[];
  if (params.softcap !== undefined) o.softcap = params.softcap as number;
  if (params.cu_seqlens !== undefined) o.cuSeqlens = t.get('cu_seqlens') ?? (params.cu_seqlens as number[]);
  if (params.prefix !== undefined) o.prefix = params.prefix as number;
  return o;
}

/** Checks the structured mask qkv built from params against the file's dense `keep` truth. */
function checkMask(o: AttentionOptions, q: Tensor, k: Tensor, v: Tensor, keep: Tensor): string | undefined {
  if (o.mask instanceof Tensor) return undefined; // the dense mask was the input itself
  const dims = checkQkv(q, k, v);
  const mask = maskSpecOf(o, dims)?.build(dims);
  const want = keep.broadcastTo([dims.B, dims.Hq, dims.L, dims.S]);
  for (let b = 0; b < dims.B; b++) for (let h = 0; h < dims.Hq; h++) for (let i = 0; i < dims.L; i++) for (let j = 0; j < dims.S; j++) {
    const got = mask ? mask.allows(b, h, i, j) : true;
    if (got !== (want.get(b, h, i, j) !== 0)) return `mask differs from keep at [${b}, ${h}, ${i}, ${j}]: qkv says ${got}`;
  }
  return undefined;
}

const sdpa: OpRunner = (t, params, kernel) => {
  const [q, k, v] = [need(t, 'q'), need(t, 'k'), need(t, 'v')];
  const o = sdpaOptions(params, t);
  const keep = t.get('keep');
  const problem = keep ? checkMask(o, q, k, v, keep) : undefined;
  const r = attention(q, k, v, { ...o, kernel, returnWeights: t.has('weights') });
  return { actual: outputs({ out: r.out, lse: r.lse, weights: r.weights }), problem };
};

const sdpaBackward: OpRunner = (t, params, kernel) => {
  const [q, k, v, dout] = [need(t, 'q'), need(t, 'k'), need(t, 'v'), need(t, 'dout')];
  const o = sdpaOptions(params, t);
  const g = attentionBackward(q, k, v, dout, { ...o, kernel: kernel === 'reference' ? 'reference' : 'flash' });
  const f = attention(q, k, v, { ...o, kernel });
  return { actual: outputs({ dq: g.dq, dk: g.dk, dv: g.dv, out: f.out, lse: f.lse }) };
};

const scoreResult = (r: { scores: Tensor; weights: Tensor; out: Tensor }) => ({ actual: outputs({ ...r }) });

const ropeConfig = (p: Record<string, unknown>): RopeConfig => ({
  ropeType: p.rope_type as RopeConfig['ropeType'], ropeTheta: p.rope_theta as number, headDim: p.head_dim as number,
  partialRotaryFactor: p.partial_rotary_factor as number | undefined, factor: p.factor as number | undefined,
  maxPositionEmbeddings: p.max_position_embeddings as number | undefined,
  originalMaxPositionEmbeddings: p.original_max_position_embeddings as number | undefined, seqLen: p.seq_len as number | undefined,
  lowFreqFactor: p.low_freq_factor as number | undefined, highFreqFactor: p.high_freq_factor as number | undefined,
  betaFast: p.beta_fast as number | undefined, betaSlow: p.beta_slow as number | undefined,
  attentionFactor: p.attention_factor as number | undefined, mscale: p.mscale as number | undefined,
  mscaleAllDim: p.mscale_all_dim as number | undefined, truncate: p.truncate as boolean | undefined,
});

const mha: OpRunner = (t, p) => {
  const layer = MultiheadAttention.fromStateDict(t, {
    embedDim: p.embed_dim as number, numHeads: p.num_heads as number, kdim: p.kdim as number | undefined,
    vdim: p.vdim as number | undefined, batchFirst: (p.batch_first as boolean | undefined) ?? false,
  });
  const x = t.get('x');
  const [query, key, value] = x ? [x, x, x] : [need(t, 'query'), need(t, 'key'), need(t, 'value')];
  const perHead = t.has('weights');
  const r = layer.forward(query, key, value, {
    keyPaddingMask: t.get('key_padding_mask')?.to('bool'), attnMask: t.get('attn_mask')?.to('bool'),
    needWeights: true, averageAttnWeights: !perHead,
  });
  return { actual: outputs({ out: r.out, [perHead ? 'weights' : 'weights_avg']: r.weights }) };
};

const gatOptions = (p: Record<string, unknown>) => ({
  heads: p.heads as number, outChannels: p.out_channels as number, concat: p.concat as boolean | undefined,
  negativeSlope: p.negative_slope as number | undefined, addSelfLoops: p.add_self_loops as boolean | undefined,
});

/** Every op qkv runs from golden data. */
export const OPS: Record<string, OpRunner> = {
  sdpa,
  sdpa_backward: sdpaBackward,
  additive_attention: (t) => scoreResult(additiveAttention(need(t, 'q'), need(t, 'k'), need(t, 'v'), need(t, 'W1'), need(t, 'W2'), need(t, 'va'))),
  luong_attention: (t, p) => scoreResult(luongAttention(need(t, 'q'), need(t, 'k'), need(t, 'v'), p.kind as 'dot' | 'general', t.get('W'))),
  cosine_attention: (t, p) => scoreResult(cosineAttention(need(t, 'q'), need(t, 'k'), need(t, 'v'), (p.temperature as number | undefined) ?? 1)),
  l2_attention: (t) => scoreResult(l2Attention(need(t, 'q'), need(t, 'k'), need(t, 'v'))),
  linear_attention: (t, p) => {
    if (p.feature_map !== undefined && p.feature_map !== 'elu+1') throw new SkipCase(`feature map '${String(p.feature_map)}' not supported yet`);
    const [q, k, v] = [need(t, 'q'), need(t, 'k'), need(t, 'v')];
    return { actual: outputs({ out: linearAttention(q, k, v), out_causal: linearAttention(q, k, v, { causal: true }) }) };
  },
  performer_attention: (t, _p, kernel) => {
    const [q, k, v] = [need(t, 'q'), need(t, 'k'), need(t, 'v')];
    return { actual: outputs({ out: performerAttention(q, k, v, { omega: need(t, 'omega') }), exact: attention(q, k, v, { kernel }).out }) };
  },
  sinusoidal_encoding: (_t, p) => ({ actual: outputs({ pe: sinusoidalEncoding(p.max_len as number, p.d_model as number, (p.base as number | undefined) ?? 10000) }) }),
  rope: (t, p) => {
    const x = need(t, 'x');
    const positions = need(t, 'positions');
    const base = (p.base as number | undefined) ?? 10000;
    return { actual: outputs({
      rotate_half: applyRope(x, { positions, base, style: 'rotate-half' }),
      interleaved: applyRope(x, { positions, base, style: 'interleaved' }),
    }) };
  },
  t5_relative_bucket: (t, p) => {
    const rel = need(t, 'relative_position').toArray();
    const [nb, md] = [(p.num_buckets as number | undefined) ?? 32, (p.max_distance as number | undefined) ?? 128];
    const bucket = (bi: boolean) => Tensor.from(rel.map((r) => t5RelativeBucket(r, bi, nb, md)), [rel.length], 'int64');
    return { actual: outputs({ bidirectional: bucket(true), causal: bucket(false) }) };
  },
  alibi_slopes: (t) => {
    const actual = new Map<string, Tensor>();
    for (const name of t.keys()) {
      const m = /^slopes_(\d+)$/.exec(name);
      if (m) actual.set(name, Tensor.from(alibiSlopes(Number(m[1])), [Number(m[1])]));
    }
    return { actual };
  },
  rope_inv_freq: (_t, p) => {
    const f = ropeInvFreq(ropeConfig(p));
    return { actual: outputs({ inv_freq: Tensor.from(Float32Array.from(f.invFreq), [f.invFreq.length]), attention_factor: Tensor.from([f.attentionFactor], [1]) }) };
  },
  torch_multihead_attention: mha,
  gat: (t, p) => {
    const r = GATConv.fromStateDict(t, gatOptions(p)).forward(need(t, 'x'), need(t, 'edge_index'));
    return { actual: outputs({ out: r.out, alpha: r.alpha, att_edge_index: r.edgeIndex }) };
  },
  gatv2: (t, p) => {
    const r = GATv2Conv.fromStateDict(t, gatOptions(p)).forward(need(t, 'x'), need(t, 'edge_index'));
    return { actual: outputs({ out: r.out, alpha: r.alpha, att_edge_index: r.edgeIndex }) };
  },
};

// ------------------------------------------------------------------------------------------------------------------
// hf_model: a checkpoint directory next to the case file; logits or hidden states, attentions and greedy tokens.

/** Set by the runner: the directory of the golden data, where params.model_dir is resolved. */
export const hfContext = { dir: '' };

const rows = (t: Tensor | undefined) => {
  if (!t) return undefined;
  const [B, T] = t.shape;
  const flat = t.toArray();
  return Array.from({ length: B }, (_, b) => flat.slice(b * T, (b + 1) * T));
};

OPS.hf_model = (t, p) => {
  const model = loadCheckpoint(join(hfContext.dir, String(p.model_dir))).model;
  const actual = new Map<string, Tensor>();
  const ids = rows(t.get('input_ids'));
  const mask = rows(t.get('attention_mask'));
  if (model.kind === 'causal-lm') {
    const r = model.forward(ids!, { attentionMask: mask, positionIds: rows(t.get('position_ids')), outputAttentions: true });
    actual.set('logits', r.logits);
    r.attentions!.forEach((a, l) => actual.set(`attentions.${l}`, a));
    const want = t.get('generated');
    if (want) {
      const prompt = [ids![0]];
      const out = greedy(model, prompt, want.shape[1] - prompt[0].length);
      actual.set('generated', Tensor.from(out, [1, out.length], 'int64'));
    }
  } else if (model.kind === 'encoder') {
    const r = model.forward({ inputIds: ids, attentionMask: mask, tokenTypeIds: rows(t.get('token_type_ids')), pixelValues: t.get('pixel_values'), outputAttentions: true });
    actual.set('last_hidden_state', r.lastHiddenState);
    r.attentions!.forEach((a, l) => actual.set(`attentions.${l}`, a));
  } else {
    const enc = model.encode(ids!, mask, true);
    const r = model.decode(rows(t.get('decoder_input_ids'))!, enc.hidden, { attentionMask: mask, outputAttentions: true });
    actual.set('logits', r.logits);
    enc.attentions!.forEach((a, l) => actual.set(`encoder_attentions.${l}`, a));
    r.attentions!.forEach((a, l) => actual.set(`attentions.${l}`, a));
    r.crossAttentions!.forEach((a, l) => actual.set(`cross_attentions.${l}`, a));
  }
  return { actual };
};
