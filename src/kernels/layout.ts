// Uniform blocks (WGSL) and job argument lists (WebAssembly), declared once. A layout is a list of named four-byte
// fields in order; from it come the WGSL struct, the host's writer (by field name: no offset is counted by hand) and
// each field's word index in a WebAssembly job. test/unit/kernels/layouts.test.ts checks every layout against its
// shader's `struct Params` and against the words its AssemblyScript job reads (`const q = ptr(job, 1)` must be the
// layout's q), so host and kernel cannot drift apart.

/** A four-byte field: an unsigned or signed integer, or a float (a job carries its bits). */
export type FieldType = 'u32' | 'i32' | 'f32';

// a float's bits, through one scratch word (jobs are written hundreds of times per generated token)
const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);

export class Layout<F extends string> {
  /** The position of each field: its byte offset is 4 × index, its job word is index. */
  readonly index: Readonly<Record<F, number>>;

  // each field's name, and whether it is a float (words: a plain loop over these, hundreds of times per token)
  readonly #names: readonly F[];
  readonly #floats: readonly boolean[];

  constructor(readonly name: string, readonly fields: readonly (readonly [F, FieldType])[]) {
    this.index = Object.fromEntries(fields.map(([f], i) => [f, i])) as Record<F, number>;
    this.#names = fields.map(([f]) => f);
    this.#floats = fields.map(([, t]) => t === 'f32');
  }

  /** The WGSL declaration `struct Params { a: u32, b: f32, … }`, four fields a line. */
  wgsl(): string {
    const parts = this.fields.map(([f, t]) => `${f}: ${t}`);
    const lines = Array.from({ length: Math.ceil(parts.length / 4) }, (_, l) => `  ${parts.slice(4 * l, 4 * l + 4).join(', ')},`);
    return `struct ${this.name} {\n${lines.join('\n')}\n}`;
  }

  /** A uniform block holding `values`: field i at byte 4i, little-endian, the size rounded up to 16 bytes. */
  bytes(values: Readonly<Record<F, number>>): ArrayBuffer {
    const view = new DataView(new ArrayBuffer(Math.ceil(this.fields.length / 4) * 16));
    this.fields.forEach(([f, t], i) => {
      if (t === 'f32') view.setFloat32(4 * i, values[f], true);
      else if (t === 'i32') view.setInt32(4 * i, values[f], true);
      else view.setUint32(4 * i, values[f], true);
    });
    return view.buffer;
  }

  /** A job's words in field order, as the runtime writes them (i32; a float as its bits). */
  words(values: Readonly<Record<F, number>>): number[] {
    const names = this.#names, floats = this.#floats;
    const out = new Array<number>(names.length);
    for (let i = 0; i < names.length; i++) {
      if (!floats[i]) { out[i] = values[names[i]]; continue; }
      f32[0] = values[names[i]];
      out[i] = i32[0];
    }
    return out;
  }
}
