// Mixture of experts (Shazeer et al. 2017, https://arxiv.org/abs/1701.06538; as in Mixtral, gpt-oss, DeepSeek-V3): a
// router scores each token against E experts, the token goes through its top-k of them and their outputs are mixed:
//   y = Σ_{e ∈ top-k(router(x))} g_e · expert_e(x)   (+ shared(x) for DeepSeek's always-on experts)
// Computed expert by expert over the tokens routed to it — one batched product per expert — in expert order, as
// transformers adds them. The point of qkv is attention; this module is here so that such models run at all.
import type { LinearWeight } from '../tensor/quantize.js';
import { Tensor } from '../tensor/tensor.js';
import { linear } from './linear.js';

/** Where one token goes: its experts and their mixing weights. */
export interface Routing { experts: readonly number[]; weights: readonly number[] }

/** The indices of the k largest values, largest first (torch.topk's order; the lower index first on ties). */
export function topK(values: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  idx.sort((a, b) => values[b] - values[a] || a - b);
  return idx.slice(0, k);
}

/** gpt-oss's rule: the top-k router logits, softmaxed among themselves. */
export function softmaxTopK(k: number): (logits: Float32Array) => Routing {
  return (logits) => {
    const experts = topK(logits, k);
    const m = logits[experts[0]];
    const e = experts.map((x) => Math.exp(logits[x] - m));
    const sum = e.reduce((a, b) => a + b, 0);
    return { experts, weights: e.map((x) => x / sum) };
  };
}

export class MixtureOfExperts {
  constructor(
    readonly router: { weight: LinearWeight; bias: Tensor | null },
    readonly route: (logits: Float32Array) => Routing,
    readonly experts: readonly ((x: Tensor) => Tensor)[],
    readonly shared: ((x: Tensor) => Tensor) | null = null,
  ) {}

  /** x [..., H] → [..., H]. */
  forward(x: Tensor): Tensor {
    const H = x.shape[x.rank - 1];
    const N = x.size / H;
    const E = this.experts.length;
    const flat = x.contiguous().reshape([N, H]);
    const logits = linear(flat, this.router.weight, this.router.bias).toFloat32(); // [N, E]
    // which tokens each expert takes, and with what weight
    const rows = this.experts.map((): number[] => []);
    const gates = this.experts.map((): number[] => []);
    for (let n = 0; n < N; n++) {
      const r = this.route(logits.subarray(n * E, (n + 1) * E));
      r.experts.forEach((e, m) => { rows[e].push(n); gates[e].push(r.weights[m]); });
    }
    const xs = flat.toFloat32();
    const out = new Float32Array(N * H);
    this.experts.forEach((expert, e) => {
      if (rows[e].length === 0) return;
      const xe = new Float32Array(rows[e].length * H);
      rows[e].forEach((n, i) => xe.set(xs.subarray(n * H, (n + 1) * H), i * H));
      const ye = expert(Tensor.from(xe, [rows[e].length, H])).toFloat32();
      // y_n += g_e · expert_e(x_n)
      rows[e].forEach((n, i) => { for (let d = 0; d < H; d++) out[n * H + d] += gates[e][i] * ye[i * H + d]; });
    });
    if (this.shared) {
      const s = this.shared(flat).toFloat32();
      for (let x2 = 0; x2 < out.length; x2++) out[x2] += s[x2];
    }
    return Tensor.from(out, x.shape);
  }
}
