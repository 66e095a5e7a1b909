// Constant arrays: contents that never change once made — a model's weights as the loader gives them, matrices that
// qkv quantized or scaled. A kernel may keep its own copy of a constant array (the WebAssembly kernel's resident
// weights, a dense copy of a strided weight, a GPU buffer) and use that copy on every later call. Any other array is
// read afresh on each call, so that an array changed in place between calls (a learner editing a weight, an optimizer
// step) gives the new answer, never a kept copy's old one.
const constants = new WeakSet<ArrayBufferView>();

/** Marks arrays as constant: the caller promises their contents will not change. Returns the first. */
export function markConstant<A extends ArrayBufferView>(a: A, ...more: ArrayBufferView[]): A {
  constants.add(a);
  for (const m of more) constants.add(m);
  return a;
}

/** Whether `a` was marked constant (markConstant). */
export function isConstant(a: ArrayBufferView): boolean {
  return constants.has(a);
}

/**
 * A float32 form of `source` (widened, dequantized: `make`, a new array), kept in `kept` under `key` — for a consumer
 * that keys work by the array's identity (the GPU's upload). Made once, and constant itself, when `source` is constant;
 * otherwise made again on every call into the same kept array, so a source changed in place is read as it is now.
 */
export function keptForm(kept: WeakMap<object, Float32Array>, key: object, source: ArrayBufferView,
  make: () => Float32Array): Float32Array {
  const f = kept.get(key);
  if (f && isConstant(f)) return f;
  if (f) {
    f.set(make());
    return f;
  }
  const made = make();
  kept.set(key, isConstant(source) ? markConstant(made) : made);
  return made;
}
