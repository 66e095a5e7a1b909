// DecoderOps on GpuTensors (ops.ts has the interface and the CPU's): a family's one forward pass runs on WebGPU with
// its weights and KV cache on the GPU and nothing read back until the logits. One sequence over a GPU KV cache, or
// a batch over a GPU paged cache (B sequences of one new token, or one of a prompt chunk: the batch engine). Each layer runs
// in an arena: every tensor an op makes is recorded, and scoped() gives all of a layer's back to the buffer pool
// except its result — no release lists in the families.
import { GpuPagedKVCache, type GpuKVCache } from '../cache/webgpu.js';
import { attentionOverGpuCache, attentionOverGpuPaged } from '../attention/webgpu.js';
import { QkvError } from '../errors.js';
import { addGpu, gatedActGpu, GpuTensor, linearGpu, rmsNormGpuLayer, ropeGpuLayer, ropeTableGpu, rowsGpu, softcapGpu }
  from '../nn/webgpu.js';
import type { RopeFrequencies } from '../nn/positional/rope.js';
import type { LinearWeight } from '../tensor/quantize.js';
import type { Tensor } from '../tensor/tensor.js';
import type { AttendSpec, Decoder, DecoderOps } from './ops.js';

export class GpuOps implements DecoderOps<GpuTensor> {
  readonly device = 'webgpu';
  private arena: GpuTensor[] = [];
  private readonly tables = new Map<RopeFrequencies, GpuTensor>(); // cos/sin at the step's positions, per RoPE

  /** `positions`: of the new tokens, row after row (a row's cache length + 0, 1, …). */
  constructor(readonly cache: GpuKVCache | GpuPagedKVCache, private readonly positions: readonly number[]) {}

  #own(t: GpuTensor): GpuTensor { this.arena.push(t); return t; }

  input(values: Float32Array, shape: readonly [number, number, number]): GpuTensor {
    const [B, T] = shape;
    if (!(this.cache instanceof GpuPagedKVCache) && B !== 1) {
      throw new QkvError(`WebGPU forward: one sequence at a time over a GPU KV cache (a batch needs the paged one), got ${B}`);
    }
    if (B * T !== this.positions.length || (B > 1 && T > 1)) {
      const got = `[${B}, ${T}] and ${this.positions.length} positions`;
      throw new QkvError(`WebGPU forward: B rows of one token or one row of T, with a position each; got ${got}`);
    }
    return this.#own(GpuTensor.upload(this.cache.device, values, shape));
  }
  linear(x: GpuTensor, w: LinearWeight, b?: Tensor | null): GpuTensor { return this.#own(linearGpu(x, w, b)); }
  gatedLinear(x: GpuTensor, gate: LinearWeight, up: LinearWeight, act: string): GpuTensor {
    return this.#own(gatedActGpu(act, this.linear(x, gate), this.linear(x, up)));
  }
  rmsNorm(x: GpuTensor, w: Tensor, eps: number, offset = 0): GpuTensor {
    const C = x.shape[x.shape.length - 1], g = w.shape[0];
    const grouped = g === C ? x : x.reshape([x.size / g, g]); // per head (qk-norm)
    return this.#own(rmsNormGpuLayer(grouped, w, eps, offset)).reshape(x.shape);
  }
  layerNorm(): GpuTensor { throw new QkvError('WebGPU forward: LayerNorm has no GPU kernel yet (GPT-NeoX runs on the CPU)'); }
  moe(): GpuTensor { throw new QkvError('WebGPU forward: mixture-of-experts layers run on the CPU for now'); }
  host(_x: GpuTensor, _f: unknown, what: string): GpuTensor[] { throw new QkvError(`WebGPU forward: ${what} runs on the CPU for now`); }
  act(_x: GpuTensor, name: string): GpuTensor {
    throw new QkvError(`WebGPU forward: the activation '${name}' alone has no GPU kernel yet (the gated SwiGLU and GeGLU do)`);
  }
  add(a: GpuTensor, b: GpuTensor): GpuTensor { return this.#own(addGpu(a, b)); }
  softcap(x: GpuTensor, c: number): GpuTensor { return this.#own(softcapGpu(x, c)); }
  last(x: GpuTensor): GpuTensor {
    const [B, T, C] = x.shape;
    return T === 1 ? x : this.#own(rowsGpu(x, T - 1, 1)).reshape([B, 1, C]); // one row when T > 1 (input says so)
  }

  scoped(layer: () => GpuTensor): GpuTensor {
    const outer = this.arena;
    this.arena = [];
    try {
      const result = layer();
      for (const t of this.arena) if (t.buffer !== result.buffer) t.release();
      outer.push(result);
      return result;
    } finally {
      this.arena = outer;
    }
  }

  attend(layer: number, q: GpuTensor, k: GpuTensor, v: GpuTensor, s: AttendSpec): GpuTensor {
    if (!s.causal || s.poolKvHeads) throw new QkvError('WebGPU forward: the ablations (no causal mask, pooled kv heads) run on the CPU');
    if (s.sinks) throw new QkvError('WebGPU forward: learned attention sinks (gpt-oss) run on the CPU for now');
    if (s.ropeStyle === 'interleaved') throw new QkvError('WebGPU forward: interleaved RoPE pairs run on the CPU for now');
    const [B, T] = q.shape;
    const Dv = v.size / (B * T * s.Hkv);
    // rows of tokens [B·T, heads, D]: RoPE's table has the position of each
    let [qh, kh] = [q.reshape([B * T, s.Hq, s.D]), k.reshape([B * T, s.Hkv, s.D])];
    if (s.rope) [qh, kh] = [this.#own(ropeGpuLayer(qh, this.#table(s.rope))), this.#own(ropeGpuLayer(kh, this.#table(s.rope)))];
    const a = { q: qh, k: kh, v: v.reshape([B * T, s.Hkv, Dv]), scale: s.scale, slidingWindow: s.slidingWindow, softcap: s.softcap };
    const out = this.cache instanceof GpuPagedKVCache ? attentionOverGpuPaged(this.cache, layer, { ...a, B, T })
      : attentionOverGpuCache(this.cache, layer, a);
    return this.#own(out).reshape([B, T, s.Hq * Dv]);
  }

  // RoPE's cos/sin table at this step's positions, made once per step and frequency set
  #table(freqs: RopeFrequencies): GpuTensor {
    let t = this.tables.get(freqs);
    if (!t) this.tables.set(freqs, (t = ropeTableGpu(this.cache.device, freqs, this.positions)));
    return t;
  }

  /** Gives back everything the step still holds. */
  dispose(): void {
    for (const t of [...this.arena, ...this.tables.values()]) t.release();
    this.arena = [];
    this.tables.clear();
  }
}

/**
 * A decoder's forward pass on WebGPU for one sequence: the same logits() as on the CPU, over GpuOps, with the KV cache
 * on the GPU; only the last position's logits [V] come back.
 */
export async function forwardWebGPU(model: Decoder, ids: readonly number[], cache: GpuKVCache): Promise<Float32Array> {
  return forwardOps(model, [ids], new GpuOps(cache, ids.map((_, t) => cache.length(0) + t)));
}

/**
 * The forward pass of a batch over a GPU paged cache (the rows' sequences as its `batch` says): B rows of one new token,
 * or one row of a prompt chunk, at `positions` (row after row). The last position's logits of each row, [B · V].
 */
export async function forwardWebGPUPaged(model: Decoder, ids: readonly (readonly number[])[], cache: GpuPagedKVCache,
  positions: readonly number[]): Promise<Float32Array> {
  return forwardOps(model, ids, new GpuOps(cache, positions));
}

async function forwardOps(model: Decoder, ids: readonly (readonly number[])[], ops: GpuOps): Promise<Float32Array> {
  try {
    return await model.logits(ops, ids, true).read();
  } finally {
    ops.dispose();
  }
}
