// Multi-head latent attention (DeepSeek-V2, https://arxiv.org/abs/2405.04434; DeepSeek-V3): the projections around
// attention, in two ways that give the same scores and outputs. For each token x (hidden E) and head h:
//   q_h = W_qb,h RMSNorm(W_qa x) = [q_nope_h (dn) | q_rope_h (dr)]          (q through a rank-r_q bottleneck)
//   [c | k_rope] = W_kva x,   c ← RMSNorm(c)  (the latent, rank r_kv; k_rope (dr) shared by every head)
//   k_nope_h = W_uk,h c,  v_h = W_uv,h c                                     (W_kvb = [W_uk,h; W_uv,h] per head)
//   score_h = (q_nope_h · k_nope_h + RoPE(q_rope_h) · RoPE(k_rope)) · scale
// Plain: expand k and v per head and attend with H heads of dn + dr (values dv) — the cache holds H·(dn + dr + dv).
// Absorbed: q_nope_h · W_uk,h c = (W_uk,hᵀ q_nope_h) · c, and Σ_j p_j W_uv,h c_j = W_uv,h Σ_j p_j c_j, so attend with
// q̃_h = [q_rope_h | W_uk,hᵀ q_nope_h] against ONE shared key [k_rope | c] (MQA, Hkv = 1) whose values are its own
// latent part, then apply W_uv,h to each head's output — the cache holds only r_kv + dr per token.
// Both put the rotary dims first (q·k does not depend on the order of dims), so RoPE turns the first dr dims.
import { QkvError } from '../errors.js';
import type { LinearWeight } from '../tensor/quantize.js';
import { Tensor } from '../tensor/tensor.js';
import { linear } from './linear.js';
import { rmsNorm } from './norm.js';

/** The sizes of one MLA layer. */
export interface MlaSizes { H: number; qRank: number | null; kvRank: number; nope: number; rope: number; dv: number }

/** One layer's MLA weights as transformers names them (q_proj when there is no q bottleneck). */
export interface MlaWeights {
  qA: LinearWeight | null; qANorm: Tensor | null; qB: LinearWeight | null; q: LinearWeight | null;
  kvA: LinearWeight; kvANorm: Tensor; kvB: Tensor;
}

/** q, k, v for attention: [B, T, Hq·D], [B, T, Hkv·D], [B, T, Hkv·Dv]. */
export interface MlaProjections { q: Tensor; k: Tensor; v: Tensor; Hkv: number; D: number; Dv: number }

export class LatentAttention {
  private readonly uk: Float32Array; // W_uk [H, nope, kvRank]
  private readonly uv: Float32Array; // W_uv [H, dv, kvRank]

  constructor(readonly s: MlaSizes, readonly w: MlaWeights, readonly eps = 1e-6) {
    if (s.rope % 2) throw new QkvError(`MLA: qk_rope_head_dim must be even (RoPE turns pairs), got ${s.rope}`);
    const kvB = w.kvB.toFloat32(); // [H·(nope + dv), kvRank]
    const per = s.nope + s.dv;
    this.uk = new Float32Array(s.H * s.nope * s.kvRank);
    this.uv = new Float32Array(s.H * s.dv * s.kvRank);
    for (let h = 0; h < s.H; h++) {
      this.uk.set(kvB.subarray(h * per * s.kvRank, (h * per + s.nope) * s.kvRank), h * s.nope * s.kvRank);
      this.uv.set(kvB.subarray((h * per + s.nope) * s.kvRank, (h + 1) * per * s.kvRank), h * s.dv * s.kvRank);
    }
  }

  // q [B, T, H, nope + rope] and the latent c (normalised) [B, T, kvRank] and k_rope [B, T, rope]
  #common(x: Tensor): { q: Float32Array; c: Float32Array; kRope: Float32Array; N: number } {
    const { w, s } = this;
    const q = w.q ? linear(x, w.q) : linear(rmsNorm(linear(x, w.qA!), w.qANorm, this.eps), w.qB!);
    const kv = linear(x, w.kvA).toFloat32(); // [N, kvRank + rope]
    const N = kv.length / (s.kvRank + s.rope);
    const c = new Float32Array(N * s.kvRank), kRope = new Float32Array(N * s.rope);
    for (let n = 0; n < N; n++) {
      c.set(kv.subarray(n * (s.kvRank + s.rope), n * (s.kvRank + s.rope) + s.kvRank), n * s.kvRank);
      kRope.set(kv.subarray(n * (s.kvRank + s.rope) + s.kvRank, (n + 1) * (s.kvRank + s.rope)), n * s.rope);
    }
    const cn = rmsNorm(Tensor.from(c, [N, s.kvRank]), w.kvANorm, this.eps).toFloat32();
    return { q: q.toFloat32(), c: cn, kRope, N };
  }

  /** The plain way: k and v expanded per head; q, k [B, T, H·(rope + nope)] (rotary dims first), v [B, T, H·dv]. */
  plain(x: Tensor): MlaProjections {
    const { s } = this;
    const [B, T] = x.shape;
    const { q, c, kRope, N } = this.#common(x);
    const D = s.rope + s.nope;
    const kvUp = linear(Tensor.from(c, [N, s.kvRank]), this.w.kvB).toFloat32(); // [N, H·(nope + dv)]
    const [qo, ko, vo] = [new Float32Array(N * s.H * D), new Float32Array(N * s.H * D), new Float32Array(N * s.H * s.dv)];
    for (let n = 0; n < N; n++) for (let h = 0; h < s.H; h++) {
      const [row, up] = [(n * s.H + h) * D, (n * s.H + h) * (s.nope + s.dv)];
      const qIn = (n * s.H + h) * D; // q_h = [nope | rope] as projected
      qo.set(q.subarray(qIn + s.nope, qIn + D), row); // rope first …
      qo.set(q.subarray(qIn, qIn + s.nope), row + s.rope); // … then nope
      ko.set(kRope.subarray(n * s.rope, (n + 1) * s.rope), row); // the shared rope key
      ko.set(kvUp.subarray(up, up + s.nope), row + s.rope); // k_nope_h = W_uk,h c
      vo.set(kvUp.subarray(up + s.nope, up + s.nope + s.dv), (n * s.H + h) * s.dv); // v_h = W_uv,h c
    }
    const [q3, k3] = [Tensor.from(qo, [B, T, s.H * D]), Tensor.from(ko, [B, T, s.H * D])];
    return { q: q3, k: k3, v: Tensor.from(vo, [B, T, s.H * s.dv]), Hkv: s.H, D, Dv: s.dv };
  }

  /**
   * The absorbed way: q̃ [B, T, H·(rope + kvRank)] = [q_rope | W_ukᵀ q_nope], one key per token [B, T, rope + kvRank]
   * = [k_rope | c], and the values are the keys' latent part (v [B, T, kvRank]: the cache may keep only the keys).
   */
  absorbed(x: Tensor): MlaProjections {
    const { s } = this;
    const [B, T] = x.shape;
    const { q, c, kRope, N } = this.#common(x);
    const D = s.rope + s.kvRank;
    const qo = new Float32Array(N * s.H * D);
    const ko = new Float32Array(N * D);
    for (let n = 0; n < N; n++) {
      ko.set(kRope.subarray(n * s.rope, (n + 1) * s.rope), n * D);
      ko.set(c.subarray(n * s.kvRank, (n + 1) * s.kvRank), n * D + s.rope);
      for (let h = 0; h < s.H; h++) {
        const [row, qIn] = [(n * s.H + h) * D, (n * s.H + h) * (s.nope + s.rope)];
        qo.set(q.subarray(qIn + s.nope, qIn + s.nope + s.rope), row);
        // q̃_r = Σ_d W_uk,h[d, r] q_nope,d
        for (let d = 0; d < s.nope; d++) {
          const qd = q[qIn + d];
          const wRow = (h * s.nope + d) * s.kvRank;
          for (let r = 0; r < s.kvRank; r++) qo[row + s.rope + r] += this.uk[wRow + r] * qd;
        }
      }
    }
    const [q3, k3] = [Tensor.from(qo, [B, T, s.H * D]), Tensor.from(ko, [B, T, D])];
    return { q: q3, k: k3, v: Tensor.from(c, [B, T, s.kvRank]), Hkv: 1, D, Dv: s.kvRank };
  }

  /** The absorbed way's last step: each head's latent output o_h [kvRank] → W_uv,h o_h [dv]; [B, T, H·kvRank] → [B, T, H·dv]. */
  expand(o: Tensor): Tensor {
    const { s } = this;
    const a = o.toFloat32();
    const N = a.length / (s.H * s.kvRank);
    const out = new Float32Array(N * s.H * s.dv);
    for (let nh = 0; nh < N * s.H; nh++) {
      const h = nh % s.H;
      for (let d = 0; d < s.dv; d++) {
        let sum = 0;
        const wRow = (h * s.dv + d) * s.kvRank;
        for (let r = 0; r < s.kvRank; r++) sum += this.uv[wRow + r] * a[nh * s.kvRank + r];
        out[nh * s.dv + d] = sum;
      }
    }
    return Tensor.from(out, [...o.shape.slice(0, -1), s.H * s.dv]);
  }
}
