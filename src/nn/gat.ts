// Graph attention with PyTorch Geometric semantics: GATConv (Veličković et al. 2018, https://arxiv.org/abs/1710.10903)
// and GATv2Conv (Brody et al. 2022, https://arxiv.org/abs/2105.14491). edge_index[0] is the source j, edge_index[1]
// the target i; each node attends over its incoming edges (plus a self loop unless addSelfLoops is false):
//   GAT:   e_ij = LeakyReLU(a_srcᵀ W x_j + a_dstᵀ W x_i),       out_i = Σ_j α_ij W x_j
//   GATv2: e_ij = aᵀ LeakyReLU(W_l x_j + W_r x_i),             out_i = Σ_j α_ij W_l x_j
//   α_ij = softmax over the incoming edges of i, per head; heads concatenated or averaged; + bias.
// A node with no incoming edge gets out = bias. Like PyG, existing self loops are removed before one is added per node.
import { checkInt, describeValue, QkvError } from '../errors.js';
import { fmtShape } from '../tensor/shape.js';
import { checkTensor, Tensor } from '../tensor/tensor.js';
import { linear } from './linear.js';

/** Hyper-parameters shared by GATConv and GATv2Conv (PyG's names in camelCase). */
export interface GatOptions { heads: number; outChannels: number; concat?: boolean; negativeSlope?: number; addSelfLoops?: boolean }

/** Output of a graph attention layer: node features, the attention per edge [E, heads] and the edges it used. */
export interface GatResult { out: Tensor; alpha: Tensor; edgeIndex: Tensor }

/** Throws unless the options and weights can make a layer (JavaScript callers are not type-checked). */
function checkGat(o: unknown, weights: [string, unknown][], optional: [string, unknown][], what: string): void {
  if (typeof o !== 'object' || o === null) {
    throw new QkvError(`${what}: options must be an object { heads, outChannels, … }, got ${describeValue(o)}`);
  }
  const { heads, outChannels, concat, negativeSlope, addSelfLoops } = o as Record<string, unknown>;
  checkInt(heads, `${what}: heads`, 1);
  checkInt(outChannels, `${what}: outChannels`, 1);
  for (const [n, x] of [['concat', concat], ['addSelfLoops', addSelfLoops]] as const) {
    if (x !== undefined && typeof x !== 'boolean') throw new QkvError(`${what}: ${n} must be a boolean, got ${describeValue(x)}`);
  }
  if (negativeSlope !== undefined && (typeof negativeSlope !== 'number' || !Number.isFinite(negativeSlope))) {
    throw new QkvError(`${what}: negativeSlope must be a finite number, got ${describeValue(negativeSlope)}`);
  }
  const HC = (heads as number) * (outChannels as number);
  for (const [n, t] of weights) {
    checkTensor(t, `${what}: ${n}`);
    // a projection is [H·C, F], an attention vector holds H·C values ([1, H, C] or [H, C])
    const ok = n.startsWith('lin') ? t.rank === 2 && t.shape[0] === HC : t.size === HC;
    if (!ok) {
      const want = n.startsWith('lin') ? `[${HC}, F]` : `[1, ${heads}, ${outChannels}]`;
      throw new QkvError(`${what}: ${n} must be ${want}, got ${fmtShape(t.shape)}`);
    }
  }
  for (const [n, t] of optional) if (t !== null) checkTensor(t, `${what}: ${n} (a Tensor or null)`);
}

/** x must be node features [N, F]. */
function checkNodes(x: unknown, edgeIndex: unknown, what: string): asserts x is Tensor {
  checkTensor(x, `${what}: x`);
  checkTensor(edgeIndex, `${what}: edgeIndex`);
  if (x.rank !== 2) throw new QkvError(`${what}: x must be node features [N, F], got ${fmtShape(x.shape)}`);
}

/** Edges as [src[], dst[]] after PyG's self-loop handling. */
function edgesOf(edgeIndex: Tensor, N: number, addSelfLoops: boolean): [number[], number[]] {
  if (edgeIndex.rank !== 2 || edgeIndex.shape[0] !== 2) throw new QkvError(`gat: edge_index must be [2, E], got ${fmtShape(edgeIndex.shape)}`);
  const flat = edgeIndex.toArray();
  const E = edgeIndex.shape[1];
  const src: number[] = [];
  const dst: number[] = [];
  for (let e = 0; e < E; e++) {
    const [j, i] = [flat[e], flat[E + e]];
    if (!Number.isInteger(j) || !Number.isInteger(i) || j < 0 || i < 0 || j >= N || i >= N) {
      throw new QkvError(`gat: edge ${e} (${j} → ${i}) names a node outside 0..${N - 1}`);
    }
    if (addSelfLoops && i === j) continue; // PyG: remove_self_loops, then add_self_loops
    src.push(j);
    dst.push(i);
  }
  if (addSelfLoops) for (let n = 0; n < N; n++) { src.push(n); dst.push(n); }
  return [src, dst];
}

/** α = softmax of e over the incoming edges of each target, per head; then out_i = Σ α_ij msg_j. */
function aggregate(e: Float64Array, src: number[], dst: number[], msg: Float32Array, N: number, H: number, C: number,
  concat: boolean, bias: Tensor | null): { out: Tensor; alpha: Float32Array } {
  const E = src.length;
  const max = new Float64Array(N * H).fill(-Infinity);
  for (let x = 0; x < E; x++) for (let h = 0; h < H; h++) max[dst[x] * H + h] = Math.max(max[dst[x] * H + h], e[x * H + h]);
  const sum = new Float64Array(N * H);
  const alpha = new Float32Array(E * H);
  for (let x = 0; x < E; x++) for (let h = 0; h < H; h++) sum[dst[x] * H + h] += Math.exp(e[x * H + h] - max[dst[x] * H + h]);
  for (let x = 0; x < E; x++) for (let h = 0; h < H; h++) alpha[x * H + h] = Math.exp(e[x * H + h] - max[dst[x] * H + h]) / sum[dst[x] * H + h];
  const acc = new Float64Array(N * H * C);
  for (let x = 0; x < E; x++) for (let h = 0; h < H; h++) {
    const a = alpha[x * H + h];
    for (let c = 0; c < C; c++) acc[(dst[x] * H + h) * C + c] += a * msg[(src[x] * H + h) * C + c];
  }
  const width = concat ? H * C : C;
  const out = new Float32Array(N * width);
  for (let n = 0; n < N; n++) for (let h = 0; h < H; h++) for (let c = 0; c < C; c++) {
    const v = acc[(n * H + h) * C + c];
    if (concat) out[n * width + h * C + c] = v;
    else out[n * width + c] += v / H;
  }
  if (bias) {
    if (bias.size !== width) throw new QkvError(`gat: bias must have ${width} entries, got ${fmtShape(bias.shape)}`);
    const b = bias.toFloat32();
    for (let n = 0; n < N; n++) for (let c = 0; c < width; c++) out[n * width + c] += b[c];
  }
  return { out: Tensor.from(out, [N, width]), alpha };
}

const leaky = (x: number, slope: number) => (x > 0 ? x : slope * x);

function result(out: Tensor, alpha: Float32Array, src: number[], dst: number[], H: number): GatResult {
  return { out, alpha: Tensor.from(alpha, [src.length, H]), edgeIndex: Tensor.from([...src, ...dst], [2, src.length], 'int32') };
}

/** PyG GATConv. Weights: lin [H·C, F], attSrc and attDst [1, H, C] (or [H, C]), bias [H·C] or [C]. */
export class GATConv {
  constructor(readonly o: GatOptions, readonly lin: Tensor, readonly attSrc: Tensor, readonly attDst: Tensor, readonly bias: Tensor | null) {
    checkGat(o, [['lin', lin], ['attSrc', attSrc], ['attDst', attDst]], [['bias', bias]], 'GATConv');
  }

  /** From a PyG state_dict: `lin.weight`, `att_src`, `att_dst`, `bias`. */
  static fromStateDict(sd: Map<string, Tensor>, o: GatOptions): GATConv {
    const get = (n: string) => { const t = sd.get(n); if (!t) throw new QkvError(`GATConv: state_dict lacks '${n}'`); return t; };
    return new GATConv(o, get('lin.weight'), get('att_src'), get('att_dst'), sd.get('bias') ?? null);
  }

  forward(x: Tensor, edgeIndex: Tensor): GatResult {
    checkNodes(x, edgeIndex, 'GATConv.forward');
    const { heads: H, outChannels: C } = this.o;
    const N = x.shape[0];
    const xw = linear(x, this.lin, null, 'GATConv lin').toFloat32(); // [N, H·C]
    const [as, ad] = [this.attSrc.toFloat32(), this.attDst.toFloat32()];
    // per-node halves of the score: a_srcᵀ W x_n and a_dstᵀ W x_n, per head
    const s = new Float64Array(N * H);
    const d = new Float64Array(N * H);
    for (let n = 0; n < N; n++) for (let h = 0; h < H; h++) for (let c = 0; c < C; c++) {
      s[n * H + h] += as[h * C + c] * xw[(n * H + h) * C + c];
      d[n * H + h] += ad[h * C + c] * xw[(n * H + h) * C + c];
    }
    const [src, dst] = edgesOf(edgeIndex, N, this.o.addSelfLoops ?? true);
    const slope = this.o.negativeSlope ?? 0.2;
    const e = new Float64Array(src.length * H);
    for (let x2 = 0; x2 < src.length; x2++) for (let h = 0; h < H; h++) e[x2 * H + h] = leaky(s[src[x2] * H + h] + d[dst[x2] * H + h], slope);
    const { out, alpha } = aggregate(e, src, dst, xw, N, H, C, this.o.concat ?? true, this.bias);
    return result(out, alpha, src, dst, H);
  }
}

/** PyG GATv2Conv (share_weights = false). Weights: lin_l, lin_r [H·C, F] with biases, att [1, H, C], bias. */
export class GATv2Conv {
  constructor(readonly o: GatOptions, readonly linL: Tensor, readonly linLBias: Tensor | null, readonly linR: Tensor,
    readonly linRBias: Tensor | null, readonly att: Tensor, readonly bias: Tensor | null) {
    const optional: [string, unknown][] = [['linLBias', linLBias], ['linRBias', linRBias], ['bias', bias]];
    checkGat(o, [['linL', linL], ['linR', linR], ['att', att]], optional, 'GATv2Conv');
  }

  /** From a PyG state_dict: `lin_l.weight`, `lin_l.bias`, `lin_r.weight`, `lin_r.bias`, `att`, `bias`. */
  static fromStateDict(sd: Map<string, Tensor>, o: GatOptions): GATv2Conv {
    const get = (n: string) => { const t = sd.get(n); if (!t) throw new QkvError(`GATv2Conv: state_dict lacks '${n}'`); return t; };
    return new GATv2Conv(o, get('lin_l.weight'), sd.get('lin_l.bias') ?? null, get('lin_r.weight'), sd.get('lin_r.bias') ?? null, get('att'), sd.get('bias') ?? null);
  }

  forward(x: Tensor, edgeIndex: Tensor): GatResult {
    checkNodes(x, edgeIndex, 'GATv2Conv.forward');
    const { heads: H, outChannels: C } = this.o;
    const N = x.shape[0];
    const xl = linear(x, this.linL, this.linLBias, 'GATv2Conv lin_l').toFloat32(); // sources [N, H·C]
    const xr = linear(x, this.linR, this.linRBias, 'GATv2Conv lin_r').toFloat32(); // targets [N, H·C]
    const a = this.att.toFloat32();
    const [src, dst] = edgesOf(edgeIndex, N, this.o.addSelfLoops ?? true);
    const slope = this.o.negativeSlope ?? 0.2;
    const e = new Float64Array(src.length * H);
    // e_ij = Σ_c a_c · LeakyReLU(W_l x_j + W_r x_i)_c — the nonlinearity sits inside, unlike GAT
    for (let x2 = 0; x2 < src.length; x2++) for (let h = 0; h < H; h++) {
      let acc = 0;
      for (let c = 0; c < C; c++) acc += a[h * C + c] * leaky(xl[(src[x2] * H + h) * C + c] + xr[(dst[x2] * H + h) * C + c], slope);
      e[x2 * H + h] = acc;
    }
    const { out, alpha } = aggregate(e, src, dst, xl, N, H, C, this.o.concat ?? true, this.bias);
    return result(out, alpha, src, dst, H);
  }
}
