// The operations a decoder's forward pass is written in, so that each family writes its layer loop once and it runs on
// any device: CpuOps below (Tensors; the kernels chosen by the registry) and GpuOps (ops-webgpu.ts: GpuTensors on
// WebGPU, nothing read back until the logits). A family implements Decoder.logits over DecoderOps<X>; X is the
// activations' type, [B, T, C] rows (one sequence, B = 1, on the GPU).
//   x = input(embed(ids));   for each layer: x = scoped(() => block(x));   logits = linear(norm(last(x)), lm_head)
// scoped() is the per-layer arena: on the GPU everything a layer made but its result goes back to the buffer pool; on
// the CPU a layer's activations are written into an arena in the kernels' memory, emptied as the next layer begins, and
// its result is copied to one of two small ones, taken in turn (tensor/arena.ts: the matrix kernel reads and writes
// them in place, and nothing is left to the garbage collector). Forwards do not nest.
import type { CausalForwardOptions, Ablations, CausalLM, LayerQkv } from './model.js';
import { QkvError } from '../errors.js';
import type { LayerArena } from '../kernels/contract.js';
import { kernelStorage } from '../kernels/registry.js';
import { activation, add } from '../nn/activations.js';
import { gatedLinear, linear } from '../nn/linear.js';
import type { MixtureOfExperts } from '../nn/moe.js';
import { layerNorm, rmsNorm } from '../nn/norm.js';
import { embedding } from '../nn/positional/learned.js';
import { applyRope, type RopeFrequencies } from '../nn/positional/rope.js';
import { activationContiguous, activationCopy, withArena } from '../tensor/arena.js';
import type { LinearWeight } from '../tensor/quantize.js';
import { Tensor } from '../tensor/tensor.js';
import { headsView, modelAttention } from './attention-layer.js';
import { checkCausalForward } from './inputs.js';

/** One layer's attention as a family asks for it: its heads, RoPE (null: a NoPE layer), the scale and the masks. */
export interface AttendSpec {
  Hq: number; Hkv: number; D: number;
  rope: RopeFrequencies | null;
  scale: number;
  causal: boolean;
  /** Keys j > i − W only (null: every earlier key). */
  slidingWindow: number | null;
  /** s = c · tanh(s / c) before masking (Gemma 2). */
  softcap?: number;
  /** Mean-pool the key/value heads to this many first (the lab's GQA → MQA experiment; on the CPU). */
  poolKvHeads?: number;
  /** Learned sink logits [Hq] (gpt-oss): each joins its head's softmax rows, its probability dropped. */
  sinks?: Float32Array;
  /** RoPE's pairs: (k, k + d/2) by default, (2k, 2k + 1) interleaved (DeepSeek). */
  ropeStyle?: 'rotate-half' | 'interleaved';
  /** The values are the keys' last Dv dims (absorbed MLA): the KV cache may keep the keys only. */
  valuesInKeys?: boolean;
}

/** The operations of a decoder's forward pass on one device. */
export interface DecoderOps<X> {
  readonly device: 'cpu' | 'webgpu';
  /** Host values [B, T, C] (the embedded tokens) as activations. */
  input(values: Float32Array, shape: readonly [number, number, number]): X;
  /** y = x Wᵀ + b. */
  linear(x: X, w: LinearWeight, b?: Tensor | null): X;
  /** act(x Wgᵀ) ⊙ (x Wuᵀ): a gated feed-forward's first half (SwiGLU, GeGLU). */
  gatedLinear(x: X, gate: LinearWeight, up: LinearWeight, act: string): X;
  /** RMSNorm over the last dim (offset 1: Gemma's 1 + γ), or over each group of w's length in it (a head: qk-norm). */
  rmsNorm(x: X, w: Tensor, eps: number, offset?: number): X;
  /** LayerNorm over the last dim: (x − mean) / √(var + ε) · γ + β. */
  layerNorm(x: X, w: Tensor, b: Tensor | null, eps: number): X;
  /** An activation by its transformers name (hidden_act), element by element. */
  act(x: X, name: string): X;
  /** A mixture-of-experts feed-forward (nn/moe.ts) over the rows of x. */
  moe(x: X, m: MixtureOfExperts): X;
  /** Projections written for the CPU (MLA's low-rank paths, nn/mla.ts): f maps x to new activations. */
  host(x: X, f: (t: Tensor) => Tensor[], what: string): X[];
  add(a: X, b: X): X;
  /** c · tanh(x / c). */
  softcap(x: X, c: number): X;
  /** The new tokens' projections q [B, T, Hq·D], k [B, T, Hkv·D], v [B, T, Hkv·Dv] in; the heads' outputs [B, T, Hq·Dv]
   *  out: RoPE at the tokens' positions, the KV cache (store, view), attention through the registry. */
  attend(layer: number, q: X, k: X, v: X, spec: AttendSpec): X;
  /** The last position of every row: [B, T, C] → [B, 1, C]. */
  last(x: X): X;
  /** Runs one layer; what it made besides its result is freed (the GPU's arena; nothing to do on the CPU). */
  scoped(layer: () => X): X;
  /** Notes a layer's attention input x [B, T, E] (after its norm) for outputQkv; families that can, call it. */
  noteInput?(layer: number, x: X): void;
}

/** A decoder family written once over DecoderOps: logits [B, T, V] (or [B, 1, V] with lastOnly). */
export interface Decoder extends CausalLM {
  logits<X>(ops: DecoderOps<X>, ids: readonly (readonly number[])[], lastOnly: boolean, ablate?: Ablations): X;
}

export const isDecoder = (m: CausalLM): m is Decoder => typeof (m as Partial<Decoder>).logits === 'function';

/**
 * The trunk every decoder family shares: x = embed(ids) [B, T, E] (× `embedScale`: Gemma's √E), each layer's block in
 * the per-layer arena (ops.scoped), then the last position only when asked. The family adds its final norm and head.
 */
export function decoderTrunk<X, L>(ops: DecoderOps<X>, ids: readonly (readonly number[])[], embed: LinearWeight, layers: readonly L[],
  block: (x: X, layer: L, l: number) => X, lastOnly: boolean, embedScale = 1): X {
  const E = embed.shape[1];
  const e = embedding(embed, ids.flat()).toFloat32();
  let x = ops.input(embedScale === 1 ? e : e.map((v) => v * embedScale), [ids.length, ids[0].length, E]); // [B, T, E]
  for (const [l, L] of layers.entries()) x = ops.scoped(() => block(x, L, l));
  return lastOnly ? ops.last(x) : x; // [B, T or 1, E]
}

/** Positions of the new tokens: given, or cache length + 0, 1, … for every row. */
export function positionsOf(ids: readonly (readonly number[])[], o: CausalForwardOptions): number[] {
  const past = o.cache?.length(0) ?? 0;
  return ids.flatMap((row, b) => row.map((_, t) => o.positionIds?.[b][t] ?? past + t));
}

/** The forward pass on the CPU: a Decoder's logits over CpuOps, and the attention weights of every layer on request. */
export function forwardOnCpu(m: Decoder, ids: readonly (readonly number[])[], o: CausalForwardOptions = {}):
  { logits: Tensor; attentions?: Tensor[]; qkv?: LayerQkv[] } {
  checkCausalForward(ids, o, m.info.vocabSize, 'forward');
  if (o.outputQkv && o.cache) throw new QkvError('forward: outputQkv shows a whole prompt\'s q, k and v; leave out the cache');
  const ops = new CpuOps(o, positionsOf(ids, o));
  const logits = m.logits(ops, ids, o.lastOnly ?? false, o.ablate);
  return { logits, attentions: o.outputAttentions ? ops.attentions : undefined, qkv: o.outputQkv ? ops.qkv : undefined };
}

/** DecoderOps on Tensors: the CPU layers (nn/), attention through the KV cache and the kernel registry. */
export class CpuOps implements DecoderOps<Tensor> {
  readonly device = 'cpu';
  /** Every layer's attention weights [B, Hq, T, S], when the options ask for them. */
  readonly attentions: Tensor[] = [];
  /** Every layer's q, k, v as attention uses them (after RoPE), when the options ask for them. */
  readonly qkv: LayerQkv[] = [];

  // the arenas, unless the options keep a layer's tensors past it (weights, q/k/v, inputs)
  readonly #arenas: readonly [LayerArena, LayerArena, LayerArena] | null;

  constructor(private readonly o: CausalForwardOptions, private readonly positions: readonly number[]) {
    this.#arenas = o.outputAttentions || o.outputQkv ? null : (kernelStorage().arenas?.() ?? null);
  }

  // the embeddings in the result arena that layer 0 does not write (its result goes to the other): its residual add
  // and norm then run as SIMD jobs over the kernels' memory, as every later layer's do
  input(values: Float32Array, shape: readonly [number, number, number]): Tensor {
    const x = Tensor.from(values, [...shape]);
    if (!this.#arenas) return x;
    const into = this.#arenas[1 + ((this.#layers + 1) % 2)];
    into.reset();
    return withArena(into, () => activationCopy(x));
  }
  linear(x: Tensor, w: LinearWeight, b?: Tensor | null): Tensor { return linear(x, w, b); }
  gatedLinear(x: Tensor, gate: LinearWeight, up: LinearWeight, act: string): Tensor { return gatedLinear(x, gate, up, act); }
  rmsNorm(x: Tensor, w: Tensor, eps: number, offset = 0): Tensor {
    const C = x.shape[x.rank - 1], g = w.shape[0];
    if (g === C) return rmsNorm(x, w, eps, offset);
    return rmsNorm(x.reshape([...x.shape.slice(0, -1), C / g, g]), w, eps, offset).reshape(x.shape); // per head
  }
  layerNorm(x: Tensor, w: Tensor, b: Tensor | null, eps: number): Tensor { return layerNorm(x, w, b, eps); }
  act(x: Tensor, name: string): Tensor { return activation(name)(x); }
  moe(x: Tensor, m: MixtureOfExperts): Tensor { return m.forward(x); }
  host(x: Tensor, f: (t: Tensor) => Tensor[]): Tensor[] { return f(x); }
  add(a: Tensor, b: Tensor): Tensor { return add(a, b); }
  softcap(x: Tensor, c: number): Tensor { return Tensor.from(x.toFloat32().map((v) => c * Math.tanh(v / c)), x.shape); }
  last(x: Tensor): Tensor { return x.slice(1, x.shape[1] - 1).contiguous(); }
  #layers = 0;
  // layer l writes the work arena, emptied first, and its result is copied to result arena l mod 2: layer l − 1's
  // result, its input, lies in the other (a copy of [B, T, E]: 1 MiB at 512 tokens of a 135M model, whose layer's
  // activations take ~16 MiB)
  scoped(layer: () => Tensor): Tensor {
    if (!this.#arenas) return layer();
    const [work, ...results] = this.#arenas;
    work.reset();
    const y = withArena(work, layer);
    const result = results[this.#layers++ % 2];
    result.reset();
    return withArena(result, () => activationCopy(y));
  }
  private readonly inputs = new Map<number, Tensor>();
  noteInput(layer: number, x: Tensor): void { if (this.o.outputQkv) this.inputs.set(layer, x); }

  attend(layer: number, q: Tensor, k: Tensor, v: Tensor, s: AttendSpec): Tensor {
    // [B, H, T, D]: q and k as views (RoPE permutes and rotates them in one pass), v copied into the layer's arena
    let [qh, kh, vh] = [headsView(q, s.Hq), headsView(k, s.Hkv), activationContiguous(headsView(v, s.Hkv))];
    if (s.poolKvHeads && s.poolKvHeads < s.Hkv) [kh, vh] = [poolHeads(kh, s.poolKvHeads), poolHeads(vh, s.poolKvHeads)];
    const a = modelAttention({
      q: qh, k: kh, v: vh, rope: s.rope ? { freqs: s.rope, positions: this.positions, style: s.ropeStyle } : undefined,
      cache: this.o.cache, layer,
      scale: s.scale, causal: s.causal, keyMask: this.o.attentionMask, slidingWindow: s.slidingWindow, softcap: s.softcap,
      sinks: s.sinks, valuesInKeys: s.valuesInKeys, positionFree: !s.rope, returnWeights: this.o.outputAttentions,
    });
    const { out, weights } = this.#intervene(layer, a.out, vh, a.weights);
    if (weights) this.attentions.push(weights);
    if (this.o.outputQkv) {
      // the same rotation modelAttention applies (no cache: queries and keys at the same positions)
      const rot = (x: Tensor) => (s.rope ? applyRope(x, { freqs: s.rope, positions: this.positions, style: s.ropeStyle }) : x);
      this.qkv.push({ q: rot(qh), k: rot(kh), v: vh, scale: s.scale, x: this.inputs.get(layer) });
    }
    return out; // [B, T, Hq·Dv]
  }

  // the lab's head interventions (Ablations.heads, .patch) on one layer's head outputs [B, T, Hq·Dv] and weights
  #intervene(layer: number, out: Tensor, vh: Tensor, weights?: Tensor): { out: Tensor; weights?: Tensor } {
    const ab = this.o.ablate;
    const removed = ab?.heads?.filter((x) => x.layer === layer) ?? [];
    const patch = ab?.patch?.layer === layer ? ab.patch : null;
    if (removed.length === 0 && !patch) return { out, weights };
    if (this.o.cache) throw new QkvError('forward: head ablation and patching run on a whole prompt; leave out the cache');
    const [B, T, HD] = out.shape;
    const [, Hkv, S, Dv] = vh.shape;
    const Hq = HD / Dv;
    const o = out.toFloat32().slice();
    for (const { head } of removed) {
      if (!Number.isInteger(head) || head < 0 || head >= Hq) {
        throw new QkvError(`ablate.heads: head must be in [0, ${Hq}), got ${String(head)}`);
      }
      for (let r = 0; r < B * T; r++) o.fill(0, r * HD + head * Dv, r * HD + (head + 1) * Dv);
    }
    const w = weights?.toFloat32().slice();
    if (patch) this.#patchHead(o, patch, vh.toFloat32(), { B, T, S, Hq, Hkv, Dv }, w);
    return { out: Tensor.from(o, out.shape), weights: w && weights ? Tensor.from(w, weights.shape) : undefined };
  }

  // o_i = Σ_j w_ij v_j for head `patch.head` over rows and keys i, j < min(T, size) (the weights of another prompt)
  #patchHead(o: Float32Array, patch: NonNullable<Ablations['patch']>, v: Float32Array,
    d: { B: number; T: number; S: number; Hq: number; Hkv: number; Dv: number }, own?: Float32Array): void {
    const { B, T, S, Hq, Hkv, Dv } = d;
    const { head, weights: w, size } = patch;
    if (!Number.isInteger(head) || head < 0 || head >= Hq) {
      throw new QkvError(`ablate.patch: head must be in [0, ${Hq}), got ${String(head)}`);
    }
    if (w.length !== size * size) throw new QkvError(`ablate.patch: weights must be [size, size] = ${size * size} values, got ${w.length}`);
    if (S !== T) throw new QkvError('ablate.patch: needs self-attention over the prompt (no cache)');
    const kvh = Math.floor(head / (Hq / Hkv));
    const n = Math.min(T, size);
    for (let b = 0; b < B; b++) for (let i = 0; i < n; i++) {
      const at = (b * T + i) * Hq * Dv + head * Dv;
      o.fill(0, at, at + Dv);
      for (let j = 0; j < n; j++) {
        const p = w[i * size + j];
        if (own) own[((b * Hq + head) * T + i) * S + j] = p; // the maps show the pattern the head used
        if (p !== 0) for (let e = 0; e < Dv; e++) o[at + e] += p * v[((b * Hkv + kvh) * S + j) * Dv + e];
      }
      if (own) own.fill(0, ((b * Hq + head) * T + i) * S + n, ((b * Hq + head) * T + i + 1) * S);
    }
  }
}

/**
 * Mean of each group of consecutive heads: [B, H, T, D] → [B, n, T, D]. Projections and RoPE are linear, so pooling
 * projected keys equals projecting with mean-pooled weights — the GQA paper's checkpoint conversion.
 */
export function poolHeads(x: Tensor, n: number): Tensor {
  const [B, H, T, D] = x.shape;
  if (H % n !== 0) throw new QkvError(`poolHeads: ${n} heads must divide ${H}`);
  const g = H / n;
  const a = x.toFloat32();
  const out = new Float32Array(B * n * T * D);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let r = 0; r < T * D; r++) {
    out[((b * n + Math.floor(h / g)) * T * D) + r] += a[((b * H + h) * T * D) + r] / g;
  }
  return Tensor.from(out, [B, n, T, D]);
}
