// A checkpoint's tensors by Hugging Face name, widened to float32 on first use, with errors that name the file and
// the tensor. Families ask for tensors with the shape their config implies, so a config/weights mismatch is caught
// at load time with both shapes in the message.
import { QkvError } from '../errors.js';
import { fmtShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';

export class Weights {
  private readonly used = new Set<string>();

  /** `tensors` by name; `source` names where they came from (a file or directory) for error messages. */
  constructor(readonly tensors: Map<string, Tensor>, readonly source = 'checkpoint') {}

  has(name: string): boolean { return this.tensors.has(name); }

  /** The tensor `name` as float32, checked against `shape` when given. */
  get(name: string, shape?: readonly number[]): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new QkvError(`${this.source}: missing tensor '${name}'`);
    if (shape && t.shape.join() !== shape.join()) {
      throw new QkvError(`${this.source}: tensor '${name}' has shape ${fmtShape(t.shape)}, but the config implies ${fmtShape(shape)}`);
    }
    this.used.add(name);
    if (t.dtype === 'float32') return t;
    // widen once and keep only the float32 copy, so the checkpoint is never held twice
    const f = t.to('float32');
    this.tensors.set(name, f);
    return f;
  }

  /** Like get, or null when the checkpoint does not have it. */
  optional(name: string, shape?: readonly number[]): Tensor | null {
    return this.tensors.has(name) ? this.get(name, shape) : null;
  }

  /** Total parameters and the dtype(s) held now (float32 once the model has widened them). */
  summary(): { parameters: number; dtypes: string[] } {
    let parameters = 0;
    const dtypes = new Set<string>();
    for (const t of this.tensors.values()) { parameters += t.size; dtypes.add(t.dtype); }
    return { parameters, dtypes: [...dtypes] };
  }
}
