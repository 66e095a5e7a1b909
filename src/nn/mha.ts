// torch.nn.MultiheadAttention, reproduced exactly (Vaswani et al. 2017, §3.2.2), plus grouped-query heads.
//   q = query W_qᵀ + b_q,  k = key W_kᵀ + b_k,  v = value W_vᵀ + b_v      (packed in_proj_weight or q/k/v_proj_weight)
//   head_h = softmax(q_h k_hᵀ / √d_head + mask) v_h,   out = concat(head_1..head_H) W_oᵀ + b_o
// torch's masks block where True: attn_mask [L, S] or [B·H, L, S] (bool, or float added), key_padding_mask [B, S].
// numKvHeads < numHeads makes it GQA/MQA (Ainslie et al. 2023); toGqa() converts an MHA layer by mean-pooling heads.
// Not supported: bias_k / bias_v, add_zero_attn, dropout (inference only).
import { attention } from '../attention/index.js';
import { checkInt, describeValue, QkvError } from '../errors.js';
import { fmtShape } from '../tensor/shape.js';
import { checkTensor, Tensor } from '../tensor/tensor.js';
import { linear } from './linear.js';

/** Sizes of a MultiheadAttention layer (torch's constructor arguments, camelCase). */
export interface MhaConfig {
  embedDim: number;
  numHeads: number;
  kdim?: number;
  vdim?: number;
  batchFirst?: boolean;
  /** Key/value heads; fewer than numHeads gives GQA (1 = MQA). Default numHeads. */
  numKvHeads?: number;
}

/** Call options, torch's names in camelCase. */
export interface MhaForwardOptions {
  /** bool [B, S], true = padding (ignored key). */
  keyPaddingMask?: Tensor;
  /** bool [L, S] or [B·numHeads, L, S], true = blocked; or float, added to the scores. */
  attnMask?: Tensor;
  needWeights?: boolean;
  averageAttnWeights?: boolean;
  isCausal?: boolean;
}

/** The weights of the layer, torch layout. */
export interface MhaWeights { wq: Tensor; wk: Tensor; wv: Tensor; bq: Tensor | null; bk: Tensor | null; bv: Tensor | null; wo: Tensor; bo: Tensor | null }

export class MultiheadAttention {
  readonly headDim: number;
  readonly numKvHeads: number;

  constructor(readonly config: MhaConfig, readonly w: MhaWeights) {
    for (const [name, x] of [['config', config], ['weights', w]] as const) {
      if (typeof x !== 'object' || x === null) throw new QkvError(`MultiheadAttention: ${name} must be an object, got ${describeValue(x)}`);
    }
    const E = checkInt(config.embedDim, 'MultiheadAttention: embedDim', 1);
    const H = checkInt(config.numHeads, 'MultiheadAttention: numHeads', 1);
    if (E % H !== 0) throw new QkvError(`MultiheadAttention: embedDim (${E}) must be divisible by numHeads (${H})`);
    this.headDim = E / H;
    this.numKvHeads = checkInt(config.numKvHeads ?? H, 'MultiheadAttention: numKvHeads', 1);
    if (H % this.numKvHeads !== 0) throw new QkvError(`MultiheadAttention: numKvHeads (${this.numKvHeads}) must divide numHeads (${H})`);
    const kvRows = this.numKvHeads * this.headDim;
    const expect: [string, Tensor, number[]][] = [
      ['q_proj_weight', w.wq, [E, E]], ['k_proj_weight', w.wk, [kvRows, config.kdim ?? E]],
      ['v_proj_weight', w.wv, [kvRows, config.vdim ?? E]], ['out_proj.weight', w.wo, [E, E]],
    ];
    for (const [name, t, shape] of expect) {
      checkTensor(t, `MultiheadAttention: ${name}`);
      if (t.shape.join() !== shape.join()) throw new QkvError(`MultiheadAttention: ${name} must be ${fmtShape(shape)}, got ${fmtShape(t.shape)}`);
    }
  }

  /** From a torch state_dict (`in_proj_weight` or `q/k/v_proj_weight`, `in_proj_bias`, `out_proj.*`). */
  static fromStateDict(sd: Map<string, Tensor>, config: MhaConfig): MultiheadAttention {
    const E = config.embedDim;
    const kvRows = (config.numKvHeads ?? config.numHeads) * (E / config.numHeads);
    const rows = (t: Tensor | undefined, a: number, b: number) => (t ? t.slice(0, a, b).contiguous() : null);
    const packed = sd.get('in_proj_weight');
    const get = (n: string) => { const t = sd.get(n); if (!t) throw new QkvError(`MultiheadAttention: state_dict lacks '${n}'`); return t; };
    const bias = sd.get('in_proj_bias');
    const [q1, k1, v1] = [E, E + kvRows, E + 2 * kvRows]; // row ranges inside the packed tensors
    const w: MhaWeights = {
      wq: packed ? rows(packed, 0, q1)! : get('q_proj_weight'),
      wk: packed ? rows(packed, q1, k1)! : get('k_proj_weight'),
      wv: packed ? rows(packed, k1, v1)! : get('v_proj_weight'),
      bq: rows(bias, 0, q1), bk: rows(bias, q1, k1), bv: rows(bias, k1, v1),
      wo: get('out_proj.weight'), bo: sd.get('out_proj.bias') ?? null,
    };
    return new MultiheadAttention(config, w);
  }

  /** Bytes of KV cache one token costs in this layer at `bytesPerElement` (2 × Hkv × d_head × bytes). */
  kvCacheBytesPerToken(bytesPerElement = 2): number {
    if (typeof bytesPerElement !== 'number' || !(bytesPerElement > 0) || !Number.isFinite(bytesPerElement)) {
      const got = describeValue(bytesPerElement);
      throw new QkvError(`MultiheadAttention.kvCacheBytesPerToken: bytesPerElement must be a positive number, got ${got}`);
    }
    return 2 * this.numKvHeads * this.headDim * bytesPerElement;
  }

  /**
   * out [B, L, E] (or [L, B, E] unless batchFirst) and, when needWeights (default, as torch), the weights
   * averaged over heads [B, L, S] or per head [B, H, L, S].
   */
  forward(query: Tensor, key: Tensor, value: Tensor, o: MhaForwardOptions = {}): { out: Tensor; weights: Tensor | null } {
    const bf = this.config.batchFirst ?? false;
    if (typeof o !== 'object' || o === null) {
      throw new QkvError(`MultiheadAttention.forward: options must be an object, got ${describeValue(o)}`);
    }
    const [q3, k3, v3] = [query, key, value].map((t, n) => {
      checkTensor(t, `MultiheadAttention: ${['query', 'key', 'value'][n]}`);
      if (t.rank !== 3) throw new QkvError(`MultiheadAttention: ${['query', 'key', 'value'][n]} must be rank 3, got ${fmtShape(t.shape)}`);
      return bf ? t : t.transpose(0, 1); // work batch-first: [B, T, E]
    });
    const [B, L] = q3.shape;
    const S = k3.shape[1];
    const { numHeads: H } = this.config;
    const [Hkv, hd] = [this.numKvHeads, this.headDim];
    const heads = (x: Tensor, n: number) => x.reshape([B, -1, n, hd]).transpose(1, 2); // [B, T, n·hd] -> [B, n, T, hd]
    const q = heads(linear(q3, this.w.wq, this.w.bq, 'MultiheadAttention q'), H); // [B, H, L, hd]
    const k = heads(linear(k3, this.w.wk, this.w.bk, 'MultiheadAttention k'), Hkv); // [B, Hkv, S, hd]
    const v = heads(linear(v3, this.w.wv, this.w.bv, 'MultiheadAttention v'), Hkv); // [B, Hkv, S, hd]
    const needWeights = o.needWeights ?? true;
    const r = attention(q, k, v, {
      ...this.#masks(o, B, L, S), causal: o.isCausal ?? false,
      returnWeights: needWeights, kernel: needWeights ? 'reference' : 'auto',
    });
    const merged = r.out.transpose(1, 2).reshape([B, L, H * hd]); // [B, L, E]
    let out = linear(merged, this.w.wo, this.w.bo, 'MultiheadAttention out_proj'); // [B, L, E]
    if (!bf) out = out.transpose(0, 1).contiguous(); // [L, B, E]
    if (!needWeights) return { out, weights: null };
    return { out, weights: (o.averageAttnWeights ?? true) ? meanOverHeads(r.weights!) : r.weights! };
  }

  /** torch's masks (true = blocked) as qkv's keep mask / additive bias over [B, H, L, S]. */
  #masks(o: MhaForwardOptions, B: number, L: number, S: number): { mask?: Tensor; bias?: Tensor } {
    const H = this.config.numHeads;
    let keep: Uint8Array | null = null;
    let bias: Tensor | undefined;
    const allow = () => (keep ??= new Uint8Array(B * H * L * S).fill(1));
    if (o.keyPaddingMask) {
      const m = o.keyPaddingMask;
      if (m.shape.join() !== [B, S].join()) throw new QkvError(`MultiheadAttention: key_padding_mask must be [B=${B}, S=${S}], got ${fmtShape(m.shape)}`);
      const pad = m.toArray();
      const k = allow();
      for (let b = 0; b < B; b++) for (let j = 0; j < S; j++) if (pad[b * S + j]) for (let h = 0; h < H; h++) for (let i = 0; i < L; i++) k[((b * H + h) * L + i) * S + j] = 0;
    }
    if (o.attnMask) {
      const m = o.attnMask;
      const per = m.rank === 3;
      if (!(m.shape.join() === [L, S].join() || m.shape.join() === [B * H, L, S].join())) {
        throw new QkvError(`MultiheadAttention: attn_mask must be [L=${L}, S=${S}] or [B·H=${B * H}, L, S], got ${fmtShape(m.shape)}`);
      }
      const full = per ? m.reshape([B, H, L, S]) : m;
      if (m.dtype === 'bool') {
        const blocked = full.toArray();
        const k = allow();
        for (let x = 0; x < k.length; x++) if (blocked[per ? x : x % (L * S)]) k[x] = 0;
      } else bias = full;
    }
    return { mask: keep ? new Tensor('bool', keep, [B, H, L, S]) : undefined, bias };
  }

  /**
   * The same layer with `numKvHeads` key/value heads: each group of consecutive kv heads is replaced by the mean of
   * its projection weights and biases (the GQA paper's conversion of a trained MHA checkpoint, §2.1).
   */
  toGqa(numKvHeads: number): MultiheadAttention {
    const Hkv = this.numKvHeads;
    if (!Number.isInteger(numKvHeads) || numKvHeads < 1 || Hkv % numKvHeads !== 0) {
      throw new QkvError(`toGqa: numKvHeads must divide the current ${Hkv} kv heads, got ${String(numKvHeads)}`);
    }
    const g = Hkv / numKvHeads;
    const hd = this.headDim;
    // rows [head·hd, (head+1)·hd) of a projection belong to one head; average g consecutive heads
    const pool = (t: Tensor | null) => {
      if (!t) return null;
      const cols = t.rank === 2 ? t.shape[1] : 1;
      const a = t.toFloat32();
      const out = new Float32Array(numKvHeads * hd * cols);
      for (let n = 0; n < numKvHeads; n++) for (let m = 0; m < g; m++) for (let r = 0; r < hd * cols; r++) {
        out[n * hd * cols + r] += a[((n * g + m) * hd) * cols + r] / g;
      }
      return Tensor.from(out, t.rank === 2 ? [numKvHeads * hd, cols] : [numKvHeads * hd]);
    };
    const w = this.w;
    return new MultiheadAttention({ ...this.config, numKvHeads },
      { ...w, wk: pool(w.wk)!, wv: pool(w.wv)!, bk: pool(w.bk), bv: pool(w.bv) });
  }
}

/** [B, H, L, S] → [B, L, S], the mean over heads. */
function meanOverHeads(w: Tensor): Tensor {
  const [B, H, L, S] = w.shape;
  const a = w.toFloat32();
  const out = new Float32Array(B * L * S);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let x = 0; x < L * S; x++) out[b * L * S + x] += a[(b * H + h) * L * S + x] / H;
  return Tensor.from(out, [B, L, S]);
}
