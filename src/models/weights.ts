// A checkpoint's tensors by Hugging Face name, with errors that name the file and the tensor. Families ask for
// tensors with the shape their config implies, so a config/weights mismatch is caught at load time with both shapes
// in the message. Norms, biases and the like are widened to float32 on first use; the matrices of linear layers are
// kept in the format chosen at load time (WeightFormat), because decode reads each of them once per token.
import { kernelStorage } from '../kernels/registry.js';
import { checkInt, describeValue, QkvError } from '../errors.js';
import { markConstant } from '../tensor/constant.js';
import { F16Matrix } from '../tensor/f16-matrix.js';
import { Int4Matrix, Int8Matrix, type LinearWeight } from '../tensor/quantize.js';
import { checkShape, fmtShape } from '../tensor/shape.js';
import { checkTensor, type Tensor } from '../tensor/tensor.js';

/**
 * How linear-layer matrices are held: 'stored' keeps the checkpoint's dtype (f16/bf16 stay 16-bit and are widened
 * inside the matrix kernel — exact, half the bytes), 'float32' widens them once, 'int8' rounds each row to int8 with
 * a per-row scale (a quarter of f32's bytes; approximate — matrices whose in_features is not a multiple of 16 stay
 * as stored), 'int4' rounds blocks of 32 weights to 4 bits with a scale each (Q4_0's rule: an eighth of f32's bytes;
 * coarser still — a matrix whose in_features is not a multiple of 32 goes to int8 where it can, else stays as stored).
 */
export type WeightFormat = 'stored' | 'float32' | 'int8' | 'int4';
export const WEIGHT_FORMATS: readonly WeightFormat[] = ['stored', 'float32', 'int8', 'int4'];

// What Weights hands a family is a model's weight: constant from then on (tensor/constant.ts), so that the kernels may
// keep their own copy of it (quantized and scaled matrices are marked where they are made)
function constant<T extends Tensor>(t: T): T {
  markConstant(t.data);
  return t;
}

export class Weights {
  private readonly used = new Set<string>();
  readonly format: WeightFormat;

  /** `tensors` by name; `source` names where they came from (a file or directory) for error messages. */
  constructor(readonly tensors: Map<string, Tensor>, readonly source = 'checkpoint', o: { format?: WeightFormat } = {}) {
    if (!(tensors instanceof Map)) throw new QkvError(`Weights: tensors must be a Map of name → Tensor, got ${describeValue(tensors)}`);
    if (typeof o !== 'object' || o === null) throw new QkvError(`Weights: options must be an object, got ${describeValue(o)}`);
    const format = o.format ?? 'stored';
    if (!WEIGHT_FORMATS.includes(format)) throw new QkvError(`weights: format must be one of ${WEIGHT_FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
    this.format = format;
  }

  has(name: string): boolean { return this.tensors.has(name); }

  /** The tensor `name` as float32, checked against `shape` when given. */
  get(name: string, shape?: readonly number[]): Tensor {
    this.#checkArgs(name, shape);
    const t = this.tensors.get(name);
    if (!t) throw new QkvError(`${this.source}: missing tensor '${name}'`);
    if (shape) this.#check(name, t, shape);
    this.used.add(name);
    if (t.dtype === 'float32') return constant(t);
    // widen once and keep only the float32 copy, so the checkpoint is never held twice
    const f = t.to('float32');
    this.tensors.set(name, f);
    return constant(f);
  }

  /**
   * The matrix `name` [out, in] of a linear layer, held in this checkpoint's format. Quantized (int8, int4) or scaled
   * for the kernel (F16Matrix), the stored tensor leaves this map: only the kernel's form is held (an embedding table
   * that is also the output projection goes through table() and asFormat() instead, and stays).
   */
  matrix(name: string, shape: readonly [number, number]): LinearWeight {
    const stored = this.table(name, shape);
    const w = this.asFormat(stored);
    if (w instanceof Int8Matrix || w instanceof Int4Matrix) this.#release(name, stored, w.dtype);
    if (w instanceof F16Matrix) this.#drop(name, w.dtype); // its storage is the F16Matrix's now
    return w;
  }

  /** The tensor `name` as stored when it is a float matrix (f32/f16/bf16: for embedding tables), else as get. */
  table(name: string, shape: readonly [number, number]): Tensor {
    return this.stored(name, shape);
  }

  /** Like table, for a float tensor of any rank (a mixture's experts stacked [E, in, out]). */
  stored(name: string, shape: readonly number[]): Tensor {
    this.#checkArgs(name, shape);
    const t = this.tensors.get(name);
    if (!t || this.format === 'float32' || !['float16', 'bfloat16', 'float32'].includes(t.dtype)) return this.get(name, shape);
    this.#check(name, t, shape);
    this.used.add(name);
    return constant(t);
  }

  /** The matrix `name` stored as [in, out] (GPT-2's Conv1D) as a linear layer's [out, in]: float32, transposed once. */
  transposed(name: string, shape: readonly [number, number]): Tensor {
    return constant(this.get(name, shape).transpose(0, 1).contiguous());
  }

  /**
   * Like stored, and the tensor leaves this map: for a family that keeps only its own rearrangement of it (gpt-oss's
   * stacked experts, transposed one by one), so the checkpoint's layout is not held beside the copy.
   */
  take(name: string, shape: readonly number[]): Tensor {
    const t = this.stored(name, shape);
    this.#drop(name, t.dtype);
    return t;
  }

  /**
   * The embedding table `name` as the model should hold it once its output projection is known: when asFormat
   * quantized this very table (tied embeddings, int8/int4) or scaled it (F16Matrix, in place), that form — the lookup
   * widens its rows — and the stored table leaves this map, so a tied table is not held twice; else the table itself.
   * Families resolve the output projection and call this before they build their layers: the stored table's room in
   * the kernels' memory, given back here, is then filled by the layers' matrices; resolved after them, it stayed
   * resident and empty (57 MiB of SmolLM-135M's int8 peak).
   */
  embeddingTable(name: string, table: Tensor): LinearWeight {
    const q = this.kernelFormOf.get(table);
    if (!q) return table;
    if (q instanceof F16Matrix) this.#drop(name, q.dtype); // the same storage, scaled
    else this.#release(name, table, q.dtype);
    return q;
  }
  private readonly kernelFormOf = new WeakMap<Tensor, Int8Matrix | Int4Matrix | F16Matrix>();

  /**
   * A float matrix in this checkpoint's format (for a tied output projection that reuses the embedding table); the same
   * form for the same tensor when asked again. An f16 matrix that the loader read into the kernel's memory becomes an
   * F16Matrix there (scaled in place, exactly, so that no weight is subnormal: the tensor must not be read as f16 after).
   */
  asFormat(t: Tensor): LinearWeight {
    checkTensor(t, 'Weights.asFormat: t');
    const known = this.kernelFormOf.get(t);
    if (known) return known;
    // int8 and int4 straight into the matrix kernel's memory (held once: q and the scales), a block of rows at a time
    const remember = <Q extends Int8Matrix | Int4Matrix | F16Matrix>(q: Q): Q => { this.kernelFormOf.set(t, q); return q; };
    const scales = (n: number) => kernelStorage().matrix?.('float32', n) as Float32Array | null; // (int4: a fifth of the bytes)
    if (this.format === 'int4' && t.shape[1] % 32 === 0) {
      return remember(Int4Matrix.quantize(t, (n) => kernelStorage().matrix?.('int4', n) as Uint8Array | null, scales));
    }
    const place = (n: number) => kernelStorage().matrix?.('int8', n) as Int8Array | null;
    if ((this.format === 'int8' || this.format === 'int4') && t.shape[1] % 16 === 0) return remember(Int8Matrix.quantize(t, place, scales));
    if (this.format === 'float32' && t.dtype !== 'float32') return constant(t.to('float32'));
    const scaled = this.format === 'stored' && t.dtype === 'float16' && t.rank === 2 && kernelStorage().holdsMatrix?.(t.data)
      ? F16Matrix.scaleInPlace(t, kernelStorage().scaleF16) : null;
    return scaled ? remember(scaled) : constant(t);
  }

  // a name and an optional shape from a JavaScript caller, who is not type-checked
  #checkArgs(name: unknown, shape: unknown): void {
    if (typeof name !== 'string') throw new QkvError(`Weights: a tensor name must be a string, got ${describeValue(name)}`);
    if (shape !== undefined) checkShape(shape as number[], `Weights: tensor '${name}'`);
  }

  #check(name: string, t: Tensor, shape: readonly number[]): void {
    if (t.shape.join() !== shape.join()) {
      throw new QkvError(`${this.source}: tensor '${name}' has shape ${fmtShape(t.shape)}, but the config implies ${fmtShape(shape)}`);
    }
  }

  /**
   * Splits the fused tensor `name` [Σ rows, cols] (a vector when cols is 0) by rows into the named parts, in order —
   * Phi-3's qkv_proj into q, k and v — each a copy of its rows; the fused tensor is dropped.
   */
  splitRows(name: string, cols: number, parts: readonly (readonly [string, number])[]): void {
    this.#checkArgs(name, undefined);
    checkInt(cols, 'Weights.splitRows: cols');
    const part = (p: unknown) => Array.isArray(p) && typeof p[0] === 'string' && Number.isSafeInteger(p[1]) && p[1] >= 0;
    if (!Array.isArray(parts) || !parts.every(part)) {
      throw new QkvError(`Weights.splitRows: parts must be a list of [name, rows], got ${describeValue(parts)}`);
    }
    const t = this.tensors.get(name);
    if (!t) throw new QkvError(`${this.source}: missing tensor '${name}'`);
    const rows = parts.reduce((s, [, n]) => s + n, 0);
    this.#check(name, t, cols ? [rows, cols] : [rows]);
    let at = 0;
    for (const [part, n] of parts) {
      this.tensors.set(part, t.slice(0, at, at + n).contiguous());
      at += n;
    }
    this.tensors.delete(name);
  }

  /** Like get, or null when the checkpoint does not have it. */
  optional(name: string, shape?: readonly number[]): Tensor | null {
    return this.tensors.has(name) ? this.get(name, shape) : null;
  }

  /** Names of the float tensors that hold a NaN or an infinity (to explain NaN logits; a pass over every weight). */
  nonFinite(): string[] {
    const names: string[] = [];
    for (const [name, t] of this.tensors) {
      if (!['float32', 'float16', 'bfloat16'].includes(t.dtype)) continue;
      if (t.toFloat32().some((x) => !Number.isFinite(x))) names.push(name);
    }
    return names;
  }

  /** Total parameters and the dtype(s) held now (float32 once the model has widened them; int8 once quantized). */
  summary(): { parameters: number; dtypes: string[] } {
    let parameters = this.dropped.parameters;
    const dtypes = new Set<string>(this.dropped.dtypes);
    for (const t of this.tensors.values()) { parameters += t.size; dtypes.add(t.dtype); }
    return { parameters, dtypes: [...dtypes] };
  }

  // a stored matrix the model holds only quantized leaves the map, and its room in the kernels' memory is returned at
  // once (a checkpoint read a tensor at a time then reuses it for the next, whatever the garbage collector does)
  #release(name: string, stored: Tensor, heldAs: string): void {
    this.#drop(name, heldAs);
    kernelStorage().releaseMatrix?.(stored.data);
  }

  // a tensor the model now holds in its own form (quantized, rearranged) leaves the map; the summary still counts it
  private readonly dropped = { parameters: 0, dtypes: new Set<string>() };
  #drop(name: string, heldAs: string): void {
    const t = this.tensors.get(name);
    if (!t) return;
    this.dropped.parameters += t.size;
    this.dropped.dtypes.add(heldAs);
    this.tensors.delete(name);
  }
}
