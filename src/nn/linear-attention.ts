// Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs", https://arxiv.org/abs/2006.16236).
// Softmax's exp(q·k) is replaced by a feature-map kernel φ(q)·φ(k) with φ(x) = elu(x) + 1, so the sums factor:
//   out_i = φ(q_i)ᵀ (Σ_j φ(k_j) v_jᵀ) / φ(q_i)ᵀ (Σ_j φ(k_j))
// O(n·d·dv) time and an O(d·dv) state instead of an n×n matrix. Causal: the sums run over j ≤ i, which is a
// recurrence — LinearAttentionState is that recurrent decoder step. Layout q, k [B, H, n, d], v [B, H, n, dv].
import { checkInt, describeValue, QkvError } from '../errors.js';
import { fmtShape } from '../tensor/shape.js';
import { checkTensor, Tensor } from '../tensor/tensor.js';

/** φ(x) = elu(x) + 1, elementwise on a row. */
function phi(src: Float32Array, at: number, D: number, dst: Float64Array): void {
  for (let d = 0; d < D; d++) { const x = src[at + d]; dst[d] = x > 0 ? x + 1 : Math.exp(x); }
}

/** Throws unless x[at..at + n − 1] is a row of a Float32Array (JavaScript callers are not type-checked). */
function checkRow(x: unknown, at: unknown, n: number, what: string): void {
  if (!(x instanceof Float32Array)) throw new QkvError(`LinearAttentionState: ${what} must be a Float32Array, got ${describeValue(x)}`);
  checkInt(at, `LinearAttentionState: ${what}'s offset`, 0, x.length - n);
}

/** The running state of causal linear attention for one head: S = Σ φ(k_j) v_jᵀ [d, dv] and z = Σ φ(k_j) [d]. */
export class LinearAttentionState {
  readonly S: Float64Array;
  readonly z: Float64Array;
  private readonly fq: Float64Array;
  private readonly fk: Float64Array;
  constructor(readonly D: number, readonly Dv: number) {
    checkInt(D, 'LinearAttentionState: D', 1, 1 << 16);
    checkInt(Dv, 'LinearAttentionState: Dv', 1, 1 << 16);
    if (D * Dv > 1 << 26) throw new QkvError(`LinearAttentionState: a state of D × Dv = ${D} × ${Dv} values is too large (at most 2^26)`);
    this.S = new Float64Array(D * Dv);
    this.z = new Float64Array(D);
    this.fq = new Float64Array(D);
    this.fk = new Float64Array(D);
  }

  /** Adds key/value (rows at kAt, vAt) to the state. */
  push(k: Float32Array, kAt: number, v: Float32Array, vAt: number): void {
    const { D, Dv, S, z, fk } = this;
    checkRow(k, kAt, D, 'k');
    checkRow(v, vAt, Dv, 'v');
    phi(k, kAt, D, fk);
    // S += φ(k) vᵀ;  z += φ(k)
    for (let d = 0; d < D; d++) {
      z[d] += fk[d];
      for (let e = 0; e < Dv; e++) S[d * Dv + e] += fk[d] * v[vAt + e];
    }
  }

  /** out = φ(q)ᵀ S / φ(q)ᵀ z, written at out[outAt..]. */
  read(q: Float32Array, qAt: number, out: Float32Array, outAt: number): void {
    const { D, Dv, S, z, fq } = this;
    checkRow(q, qAt, D, 'q');
    checkRow(out, outAt, Dv, 'out');
    phi(q, qAt, D, fq);
    let den = 0;
    for (let d = 0; d < D; d++) den += fq[d] * z[d];
    for (let e = 0; e < Dv; e++) {
      let num = 0;
      for (let d = 0; d < D; d++) num += fq[d] * S[d * Dv + e];
      out[outAt + e] = den > 0 ? num / den : 0;
    }
  }

  /**
   * One recurrent decoder step: push (k, v), then read q — causal linear attention one token at a time.
   * @example const st = new LinearAttentionState(2, 2); st.step(q, k, v) // q, k, v: Float32Array rows
   */
  step(q: Float32Array, k: Float32Array, v: Float32Array): Float32Array {
    checkRow(q, 0, this.D, 'q'); // before the state changes
    this.push(k, 0, v, 0);
    const out = new Float32Array(this.Dv);
    this.read(q, 0, out, 0);
    return out;
  }
}

/** Linear attention with φ = elu + 1; `causal` sums only over keys j ≤ i (needs L = S). */
export function linearAttention(q: Tensor, k: Tensor, v: Tensor, options: { causal?: boolean } = {}): Tensor {
  for (const [n, t] of [['q', q], ['k', k], ['v', v]] as const) {
    checkTensor(t, `linearAttention: ${n}`);
    if (t.rank !== 4) throw new QkvError(`linearAttention: ${n} must be [batch, heads, seq, dim], got ${fmtShape(t.shape)}`);
  }
  const [B, H, L, D] = q.shape;
  const S = k.shape[2];
  const Dv = v.shape[3];
  if (k.shape[0] !== B || k.shape[1] !== H || k.shape[3] !== D || v.shape[0] !== B || v.shape[1] !== H || v.shape[2] !== S) {
    throw new QkvError(`linearAttention: shapes do not match: q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`);
  }
  if (options.causal && L !== S) throw new QkvError(`linearAttention: causal needs L = S, got L=${L}, S=${S}`);
  const [qa, ka, va] = [q.toFloat32(), k.toFloat32(), v.toFloat32()];
  const out = new Float32Array(B * H * L * Dv);
  if (out.length === 0) return Tensor.from(out, [B, H, L, Dv]); // nothing to compute (however many empty rows)
  for (let bh = 0; bh < B * H; bh++) {
    const st = new LinearAttentionState(D, Dv);
    if (options.causal) {
      // the recurrence: state after key i, read by query i
      for (let i = 0; i < L; i++) {
        st.push(ka, (bh * S + i) * D, va, (bh * S + i) * Dv);
        st.read(qa, (bh * L + i) * D, out, (bh * L + i) * Dv);
      }
    } else {
      for (let j = 0; j < S; j++) st.push(ka, (bh * S + j) * D, va, (bh * S + j) * Dv);
      for (let i = 0; i < L; i++) st.read(qa, (bh * L + i) * D, out, (bh * L + i) * Dv);
    }
  }
  return Tensor.from(out, [B, H, L, Dv]);
}
