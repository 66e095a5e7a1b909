// DecoderOps on GpuTensors (ops.ts has the interface and the CPU's): a family's one forward pass runs on WebGPU with
// its weights and KV cache on the GPU and nothing read back until the logits. One sequence (B = 1). Each layer runs
// in an arena: every tensor an op makes is recorded, and scoped() gives all of a layer's back to the buffer pool
// except its result — no release lists in the families.
import type { GpuKVCache } from '../cache/webgpu.js';
import { attentionOverGpuCache } from '../attention/webgpu.js';
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

  /** `positions`: of the new tokens (the cache's length + 0, 1, …). */
  constructor(readonly cache: GpuKVCache, private readonly positions: readonly number[]) {}

  private own(t: GpuTensor): GpuTensor { this.arena.push(t); return t; }

  input(values: Float32Array, shape: readonly [number, number, number]): GpuTensor {
    if (shape[0] !== 1) throw new QkvError(`WebGPU forward: one sequence at a time, got a batch of ${shape[0]}`);
    return this.own(GpuTensor.upload(this.cache.device, values, shape));
  }
  linear(x: GpuTensor, w: LinearWeight, b?: Tensor | null): GpuTensor { return this.own(linearGpu(x, w, b)); }
  gatedLinear(x: GpuTensor, gate: LinearWeight, up: LinearWeight, act: string): GpuTensor {
    return this.own(gatedActGpu(act, this.linear(x, gate), this.linear(x, up)));
  }
  rmsNorm(x: GpuTensor, w: Tensor, eps: number, offset = 0): GpuTensor {
    const C = x.shape[x.shape.length - 1], g = w.shape[0];
    const grouped = g === C ? x : x.reshape([x.size / g, g]); // per head (qk-norm)
    return this.own(rmsNormGpuLayer(grouped, w, eps, offset)).reshape(x.shape);
  }
  layerNorm(): GpuTensor { throw new QkvError('WebGPU forward: LayerNorm has no GPU kernel yet (GPT-NeoX runs on the CPU)'); }
  moe(): GpuTensor { throw new QkvError('WebGPU forward: mixture-of-experts layers run on the CPU for now'); }
  host(_x: GpuTensor, _f: unknown, what: string): GpuTensor[] { throw new QkvError(`WebGPU forward: ${what} runs on the CPU for now`); }
  act(_x: GpuTensor, name: string): GpuTensor {
    throw new QkvError(`WebGPU forward: the activation '${name}' alone has no GPU kernel yet (the gated SwiGLU and GeGLU do)`);
  }
  add(a: GpuTensor, b: GpuTensor): GpuTensor { return this.own(addGpu(a, b)); }
  softcap(x: GpuTensor, c: number): GpuTensor { return this.own(softcapGpu(x, c)); }
  last(x: GpuTensor): GpuTensor {
    const [, T, C] = x.shape;
    return this.own(rowsGpu(x, T - 1, 1)).reshape([1, 1, C]);
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
    const T = q.shape[1];
    const Dv = v.size / (T * s.Hkv);
    let [qh, kh] = [q.reshape([T, s.Hq, s.D]), k.reshape([T, s.Hkv, s.D])];
    if (s.rope) [qh, kh] = [this.own(ropeGpuLayer(qh, this.table(s.rope))), this.own(ropeGpuLayer(kh, this.table(s.rope)))];
    const out = attentionOverGpuCache(this.cache, layer, {
      q: qh, k: kh, v: v.reshape([T, s.Hkv, Dv]), scale: s.scale, slidingWindow: s.slidingWindow, softcap: s.softcap,
    });
    return this.own(out).reshape([1, T, s.Hq * Dv]);
  }

  // RoPE's cos/sin table at this step's positions, made once per step and frequency set
  private table(freqs: RopeFrequencies): GpuTensor {
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
  const ops = new GpuOps(cache, ids.map((_, t) => cache.length(0) + t));
  try {
    return await model.logits(ops, [ids], true).read();
  } finally {
    ops.dispose();
  }
}
