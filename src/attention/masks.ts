// Masks: which keys j a query i may attend. Each mask answers per element (`allows`) and per tile (`tile`):
// a tile whose every entry is masked is skipped by the tiled kernel, so structured masks (causal, windows,
// documents, block-sparse) never need a dense L×S array. Positions follow the golden data's conventions:
// a query's position is i' = i + S − L (bottom-right alignment, as in KV-cache decoding), except 'top-left' causal.
// Dense masks and user functions answer TILE_SOME (unknown) and are evaluated element by element.
import { describeValue, QkvError } from '../errors.js';
import {
  SIMD_WINDOW_LIMIT, TILE_ALL, TILE_NONE, TILE_SOME, type KernelMask, type Row, type SimdMask, type TileState,
} from '../kernels/contract.js';
import type { AttentionOptions } from './options.js';

// the error for an option `what` that is not `rule` (String: a symbol given as a number prints too)
const invalid = (what: string, rule: string, x: unknown) => new QkvError(`attention: ${what} must be ${rule}, got ${String(x)}`);

// the tile states and the score row are the kernel contract's: a mask is what kernels read
export { TILE_ALL, TILE_NONE, TILE_SOME, type Row, type TileState };

/** Sizes a mask is built for: batch, query heads, query length L, key length S. */
export interface MaskDims { B: number; Hq: number; L: number; S: number }

/** A FlexAttention-style mask function: true when query i of batch b, head h may attend key j. */
export type MaskMod = (b: number, h: number, i: number, j: number) => boolean;

/** A mask bound to concrete sizes. `tile` covers rows i0..i1-1 and keys j0..j1-1. */
export abstract class Mask implements KernelMask {
  abstract readonly name: string;
  abstract allows(b: number, h: number, i: number, j: number): boolean;

  /** Conservative by default: unknown tiles are evaluated element by element. */
  tile(_b: number, _h: number, _i0: number, _i1: number, _j0: number, _j1: number): TileState {
    return TILE_SOME;
  }

  /** The mask as the WebAssembly kernels take it — a causal mask, a causal sliding window (window [W, 0], Mistral's and
   *  Gemma's; [W, r ≥ 0] is the same once causal cuts the right side), a key padding mask, or an AND of them — or null
   *  for any other mask (the TypeScript kernels take those). */
  simdPlan(): SimdMask | null {
    return null;
  }

  /** Sets `row[c] = −∞` for every key j0 + c (c < n) that query i may not attend. */
  maskRow(row: Row, b: number, h: number, i: number, j0: number, n: number): void {
    for (let c = 0; c < n; c++) if (!this.allows(b, h, i, j0 + c)) row[c] = -Infinity;
  }
}

/** A mask description not yet bound to sizes; `attention` builds it for the call's L and S. */
export interface MaskSpec {
  readonly kind: 'mask-spec';
  readonly describe: string;
  build(dims: MaskDims): Mask;
  /** The same mask as attention options, when it is one (or an AND of ones that combine by AND): lets kernels that
   *  take options only (WebGPU) take the spec. */
  readonly asOptions?: Readonly<Partial<AttentionOptions>>;
}

function spec(describe: string, build: (dims: MaskDims) => Mask, asOptions?: Partial<AttentionOptions>): MaskSpec {
  return { kind: 'mask-spec', describe, build: (dims) => build(checkDims(dims, describe)), asOptions };
}

// the sizes a spec is built for (attention passes its own; a caller of build() may pass anything)
function checkDims(dims: MaskDims, describe: string): MaskDims {
  const bad = (what: string, v: unknown) => new QkvError(`${describe}.build: ${what}, got ${describeValue(v)}`);
  if (typeof dims !== 'object' || dims === null) throw bad('dims must be { B, Hq, L, S }', dims);
  for (const key of ['B', 'Hq', 'L', 'S'] as const) {
    const v = Object.hasOwn(dims, key) ? dims[key] : undefined;
    if (v === undefined || !Number.isSafeInteger(v) || v < 0) throw bad(`dims.${key} must be an integer ≥ 0`, v);
  }
  return dims;
}

// ---------------------------------------------------------------------------------------------------------------
// Causal: top-left (torch is_causal) sees j ≤ i; bottom-right (FlashAttention, KV caches) sees j ≤ i + S − L.

class CausalMask extends Mask {
  readonly name: string;
  constructor(private readonly shift: number, align: string) { super(); this.name = `causal(${align})`; }
  allows(_b: number, _h: number, i: number, j: number): boolean { return j <= i + this.shift; }
  override simdPlan(): SimdMask { return { causal: true, shift: this.shift, window: -1, keep: null }; }
  override tile(_b: number, _h: number, i0: number, i1: number, j0: number, j1: number): TileState {
    if (j1 - 1 <= i0 + this.shift) return TILE_ALL;
    if (j0 > i1 - 1 + this.shift) return TILE_NONE;
    return TILE_SOME;
  }
  override maskRow(row: Row, _b: number, _h: number, i: number, j0: number, n: number): void {
    // keys j > i + shift are the future: fill them in one pass, no per-element call
    for (let c = Math.max(0, i + this.shift - j0 + 1); c < n; c++) row[c] = -Infinity;
  }
}

/** Causal mask. `'top-left'`: query i sees keys 0..i (torch `is_causal`); `'bottom-right'`: keys 0..i+S−L. */
export function causal(align: 'top-left' | 'bottom-right' = 'top-left'): MaskSpec {
  return spec(`causal(${align})`, ({ L, S }) => new CausalMask(align === 'top-left' ? 0 : S - L, align), { causal: align });
}

// ---------------------------------------------------------------------------------------------------------------
// Sliding window [left, right] with optional dilation: key j is allowed when i' − left ≤ j ≤ i' + right
// and (i' − j) is a multiple of the dilation. window [w, 0] is Mistral's causal window.

class WindowMask extends Mask {
  readonly name: string;
  constructor(private readonly shift: number, private readonly left: number, private readonly right: number,
    private readonly dilation: number) {
    super();
    this.name = `window(${left}, ${right}${dilation > 1 ? `, dilation ${dilation}` : ''})`;
  }
  allows(_b: number, _h: number, i: number, j: number): boolean {
    const d = i + this.shift - j; // distance from the query's position back to the key
    return d <= this.left && -d <= this.right && d % this.dilation === 0;
  }
  /** [W, 0] alone is a causal sliding window. */
  override simdPlan(): SimdMask | null { return this.right === 0 ? this.withCausal(this.shift) : null; }
  /** With a causal mask of `shift`: the causal window they make together, or null (another alignment, dilation). */
  withCausal(shift: number): SimdMask | null {
    if (this.dilation !== 1 || this.right < 0 || this.shift !== shift) return null;
    return { causal: true, shift, window: this.left >= SIMD_WINDOW_LIMIT ? -1 : this.left, keep: null };
  }
  override tile(_b: number, _h: number, i0: number, i1: number, j0: number, j1: number): TileState {
    const a = i0 + this.shift;
    const z = i1 - 1 + this.shift;
    if (j1 - 1 < a - this.left || j0 > z + this.right) return TILE_NONE;
    if (this.dilation === 1 && j0 >= z - this.left && j1 - 1 <= a + this.right) return TILE_ALL;
    return TILE_SOME;
  }
}

/** Sliding window: query position i' sees keys i'−left..i'+right (Infinity for unbounded), every `dilation`-th. */
export function slidingWindow(left: number, right: number, dilation = 1): MaskSpec {
  for (const [name, x] of [['window[0] (left)', left], ['window[1] (right)', right]] as const) {
    if (!(x === Infinity || (Number.isInteger(x) && x >= 0))) {
      throw new QkvError(`attention: ${name} must be a non-negative integer or Infinity, got ${String(x)}`);
    }
  }
  if (!Number.isInteger(dilation) || dilation < 1) throw invalid('dilation', 'a positive integer', dilation);
  return spec(`window(${left}, ${right})`, ({ L, S }) => new WindowMask(S - L, left, right, dilation), { window: [left, right], dilation });
}

// ---------------------------------------------------------------------------------------------------------------
// Global tokens (Longformer): a global position attends to every key and is attended by every query.

class GlobalMask extends Mask {
  readonly name = 'global tokens';
  private readonly isGlobal: Uint8Array;
  private readonly prefix: Int32Array; // prefix[x] = number of global positions < x, for O(1) tile counts
  constructor(private readonly shift: number, tokens: readonly number[], size: number) {
    super();
    this.isGlobal = new Uint8Array(size);
    for (const t of tokens) this.isGlobal[t] = 1;
    this.prefix = new Int32Array(size + 1);
    for (let x = 0; x < size; x++) this.prefix[x + 1] = this.prefix[x] + this.isGlobal[x];
  }
  #count(a: number, z: number): number { // globals in positions a..z-1, clamped to the table
    const n = this.isGlobal.length;
    const lo = Math.min(Math.max(a, 0), n);
    const hi = Math.min(Math.max(z, 0), n);
    return this.prefix[hi] - this.prefix[lo];
  }
  allows(_b: number, _h: number, i: number, j: number): boolean {
    return this.isGlobal[i + this.shift] === 1 || this.isGlobal[j] === 1;
  }
  override tile(_b: number, _h: number, i0: number, i1: number, j0: number, j1: number): TileState {
    const rows = this.#count(i0 + this.shift, i1 + this.shift);
    const cols = this.#count(j0, j1);
    if (rows === i1 - i0 || cols === j1 - j0) return TILE_ALL;
    return rows === 0 && cols === 0 ? TILE_NONE : TILE_SOME;
  }
}

/** Global tokens: these positions attend to everything and are attended by everything (OR it with a window). */
export function globalTokens(tokens: readonly number[]): MaskSpec {
  if (!Array.isArray(tokens)) throw new QkvError(`attention: globalTokens must be a list of positions, got ${describeValue(tokens)}`);
  return spec(`global(${tokens.join(',')})`, ({ L, S }) => {
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= S) throw new QkvError(`attention: globalTokens entry ${t} must be an integer in [0, ${S})`);
    }
    return new GlobalMask(S - L, tokens, S);
  }, { globalTokens: [...tokens] });
}

// ---------------------------------------------------------------------------------------------------------------
// Block-sparse (BigBird): the grid is cut into blockSize × blockSize blocks; a small [L/bs, S/bs] block mask says
// which blocks are computed. BigBird's pattern = window blocks ∪ global blocks (rows and columns) ∪ random blocks.

/** BigBird's pattern, or any explicit block mask. */
export interface BlockSparseOptions {
  blockSize: number;
  /** Each query block sees key blocks qb−w..qb+w. */
  windowBlocks?: number;
  /** Global blocks attend to and are attended by every block. */
  globalBlocks?: readonly number[];
  /** randomBlocks[qb] lists extra key blocks for query block qb (a number or a list per query block). */
  randomBlocks?: readonly (number | readonly number[])[];
  /** An explicit [ceil(L/bs), ceil(S/bs)] block mask, row-major, 1 = computed; ORed with the pattern above. */
  blockMask?: { data: ArrayLike<number>; rows: number; cols: number };
}

class BlockMask extends Mask {
  readonly name = 'block-sparse';
  constructor(private readonly shift: number, private readonly bs: number, private readonly blocks: Uint8Array,
    private readonly rows: number, private readonly cols: number) { super(); }
  allows(_b: number, _h: number, i: number, j: number): boolean {
    return this.blocks[Math.floor((i + this.shift) / this.bs) * this.cols + Math.floor(j / this.bs)] === 1;
  }
  override tile(_b: number, _h: number, i0: number, i1: number, j0: number, j1: number): TileState {
    let on = 0;
    let total = 0;
    const bs = this.bs;
    for (let r = Math.floor((i0 + this.shift) / bs); r <= Math.floor((i1 - 1 + this.shift) / bs); r++) {
      for (let c = Math.floor(j0 / bs); c <= Math.floor((j1 - 1) / bs); c++) { on += this.blocks[r * this.cols + c]; total++; }
    }
    return on === 0 ? TILE_NONE : on === total ? TILE_ALL : TILE_SOME;
  }
}

/** Block-sparse attention (BigBird): window, global and random blocks, or an explicit block mask. */
export function blockSparse(o: BlockSparseOptions): MaskSpec {
  return spec(`block-sparse(${o.blockSize})`, ({ L, S }) => {
    const { blocks, rows, cols } = blockSparseTable(o, S);
    return new BlockMask(S - L, o.blockSize, blocks, rows, cols);
  }, { blockSparse: o });
}

/** The [rows, cols] table of computed blocks (1 = computed) of a block-sparse pattern over S positions. */
export function blockSparseTable(o: BlockSparseOptions, S: number): { blocks: Uint8Array; rows: number; cols: number } {
  {
    const bs = o.blockSize;
    if (!Number.isInteger(bs) || bs < 1) throw invalid('blockSparse.blockSize', 'a positive integer', bs);
    const rows = Math.ceil(S / bs); // query blocks are counted in aligned positions 0..S-1
    const cols = Math.ceil(S / bs);
    const blocks = new Uint8Array(rows * cols);
    const w = o.windowBlocks ?? 0;
    if (!Number.isInteger(w) || w < 0) throw invalid('blockSparse.windowBlocks', 'a non-negative integer', w);
    const checkBlock = (x: number, what: string) => {
      if (!Number.isInteger(x) || x < 0 || x >= cols) throw new QkvError(`attention: blockSparse.${what} entry ${x} must be a block index in [0, ${cols})`);
    };
    for (let r = 0; r < rows; r++) for (let c = Math.max(0, r - w); c <= Math.min(cols - 1, r + w); c++) blocks[r * cols + c] = 1;
    for (const g of o.globalBlocks ?? []) {
      checkBlock(g, 'globalBlocks');
      for (let x = 0; x < cols; x++) { blocks[g * cols + x] = 1; if (x < rows) blocks[x * cols + g] = 1; }
    }
    (o.randomBlocks ?? []).forEach((entry, r) => {
      if (r >= rows) throw new QkvError(`attention: blockSparse.randomBlocks has ${o.randomBlocks!.length} rows, expected at most ${rows}`);
      for (const c of typeof entry === 'number' ? [entry] : entry) { checkBlock(c, 'randomBlocks'); blocks[r * cols + c] = 1; }
    });
    if (o.blockMask) {
      const m = o.blockMask;
      if (m.rows !== rows || m.cols !== cols || m.data.length !== rows * cols) {
        throw new QkvError(`attention: blockSparse.blockMask must be [${rows}, ${cols}] for S=${S}, block ${bs}; got [${m.rows}, ${m.cols}]`);
      }
      for (let x = 0; x < rows * cols; x++) if (m.data[x]) blocks[x] = 1;
    }
    return { blocks, rows, cols };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Packed variable-length documents (cu_seqlens): tokens attend only within their own document.

class DocumentMask extends Mask {
  readonly name = 'documents';
  constructor(private readonly doc: Int32Array) { super(); }
  allows(_b: number, _h: number, i: number, j: number): boolean { return this.doc[i] === this.doc[j]; }
  override tile(_b: number, _h: number, i0: number, i1: number, j0: number, j1: number): TileState {
    const d = this.doc;
    if (d[i0] === d[i1 - 1] && d[j0] === d[j1 - 1] && d[i0] === d[j0]) return TILE_ALL;
    if (d[i1 - 1] < d[j0] || d[j1 - 1] < d[i0]) return TILE_NONE; // doc ids increase with position
    return TILE_SOME;
  }
}

/** Packed documents: `cuSeqlens = [0, n0, n0+n1, …, L]`; token i attends key j only in the same document. */
export function documents(cuSeqlens: readonly number[]): MaskSpec {
  return spec(`documents(${cuSeqlens.join(',')})`, ({ L, S }) => {
    if (L !== S) throw new QkvError(`attention: cuSeqlens needs packed self-attention with L = S, got L=${L}, S=${S}`);
    const n = cuSeqlens.length;
    const ok = n >= 2 && cuSeqlens[0] === 0 && cuSeqlens[n - 1] === S
      && cuSeqlens.every((x, t) => Number.isInteger(x) && (t === 0 || x >= cuSeqlens[t - 1]));
    if (!ok) throw new QkvError(`attention: cuSeqlens must rise from 0 to S=${S} in integers, got [${cuSeqlens.join(', ')}]`);
    const doc = new Int32Array(S);
    for (let t = 0; t + 1 < n; t++) doc.fill(t, cuSeqlens[t], cuSeqlens[t + 1]);
    return new DocumentMask(doc);
  }, { cuSeqlens: [...cuSeqlens] });
}

// ---------------------------------------------------------------------------------------------------------------
// Prefix-LM: keys inside the prefix are visible to every query, the rest causally (j ≤ i').

class PrefixMask extends Mask {
  readonly name: string;
  constructor(private readonly shift: number, private readonly prefix: number) { super(); this.name = `prefix-lm(${prefix})`; }
  allows(_b: number, _h: number, i: number, j: number): boolean { return j < this.prefix || j <= i + this.shift; }
  override tile(_b: number, _h: number, i0: number, i1: number, j0: number, j1: number): TileState {
    if (j1 - 1 < this.prefix || j1 - 1 <= i0 + this.shift) return TILE_ALL;
    if (j0 >= this.prefix && j0 > i1 - 1 + this.shift) return TILE_NONE;
    return TILE_SOME;
  }
}

/** Prefix-LM (T5/UniLM): the first `prefix` keys are bidirectional, the rest causal. */
export function prefixLM(prefix: number): MaskSpec {
  if (typeof prefix !== 'number') throw invalid('prefix', 'an integer', prefix);
  return spec(`prefix-lm(${prefix})`, ({ L, S }) => {
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > S) throw invalid('prefix', `an integer in [0, S=${S}]`, prefix);
    return new PrefixMask(S - L, prefix);
  }, { prefix });
}

// ---------------------------------------------------------------------------------------------------------------
// Key padding: batch b attends only its first keyLengths[b] keys.

class KeyPaddingMask extends Mask {
  readonly name = 'key padding';
  constructor(private readonly lengths: readonly number[], private readonly S: number) { super(); }
  /** As the SIMD kernels' key bytes [B, S]: 1 for j < keyLengths[b]. */
  override simdPlan(): SimdMask {
    const keep = new Uint8Array(this.lengths.length * this.S);
    this.lengths.forEach((n, b) => keep.fill(1, b * this.S, b * this.S + n));
    return { causal: false, shift: 0, window: -1, keep };
  }
  allows(b: number, _h: number, _i: number, j: number): boolean { return j < this.lengths[b]; }
  override tile(b: number, _h: number, _i0: number, _i1: number, j0: number, j1: number): TileState {
    if (j1 <= this.lengths[b]) return TILE_ALL;
    return j0 >= this.lengths[b] ? TILE_NONE : TILE_SOME;
  }
  override maskRow(row: Row, b: number, _h: number, _i: number, j0: number, n: number): void {
    for (let c = Math.max(0, this.lengths[b] - j0); c < n; c++) row[c] = -Infinity;
  }
}

/** Key padding: batch b attends keys 0..keyLengths[b]−1. */
export function keyPadding(keyLengths: readonly number[]): MaskSpec {
  return spec('key padding', ({ B, S }) => {
    if (keyLengths.length !== B) throw new QkvError(`attention: keyLengths has ${keyLengths.length} entries, expected B=${B}`);
    keyLengths.forEach((n, b) => {
      if (!Number.isInteger(n) || n < 0 || n > S) throw invalid(`keyLengths[${b}]`, `an integer in [0, S=${S}]`, n);
    });
    return new KeyPaddingMask([...keyLengths], S);
  }, { keyLengths: [...keyLengths] });
}

// ---------------------------------------------------------------------------------------------------------------
// User functions and combinators.

class FunctionMask extends Mask {
  readonly name = 'maskMod';
  constructor(private readonly fn: MaskMod) { super(); }
  allows(b: number, h: number, i: number, j: number): boolean { return this.fn(b, h, i, j) === true; }
}

/** A FlexAttention-style mask from a function `(b, h, i, j) → boolean` (indices are top-left: i in 0..L−1). */
export function maskMod(fn: MaskMod): MaskSpec {
  if (typeof fn !== 'function') throw new QkvError(`attention: maskMod must be a function (b, h, i, j) => boolean, got ${describeValue(fn)}`);
  return spec('maskMod', () => new FunctionMask(fn));
}

class AndMask extends Mask {
  readonly name: string;
  constructor(private readonly parts: readonly Mask[]) { super(); this.name = parts.map((p) => p.name).join(' ∧ '); }
  allows(b: number, h: number, i: number, j: number): boolean { return this.parts.every((m) => m.allows(b, h, i, j)); }
  override tile(b: number, h: number, i0: number, i1: number, j0: number, j1: number): TileState {
    let all = true;
    for (const m of this.parts) {
      const t = m.tile(b, h, i0, i1, j0, j1);
      if (t === TILE_NONE) return TILE_NONE;
      if (t === TILE_SOME) all = false;
    }
    return all ? TILE_ALL : TILE_SOME;
  }
  override maskRow(row: Row, b: number, h: number, i: number, j0: number, n: number): void {
    for (const m of this.parts) m.maskRow(row, b, h, i, j0, n); // each part only ever adds −∞
  }
  // causal ∧ window (a causal sliding window) ∧ key padding, each at most once
  override simdPlan(): SimdMask | null {
    const c = this.parts.find((m) => m instanceof CausalMask) as CausalMask | undefined;
    const w = this.parts.find((m) => m instanceof WindowMask) as WindowMask | undefined;
    const pads = this.parts.filter((m) => m !== c && m !== w);
    if (pads.length > 1 || this.parts.length !== (c ? 1 : 0) + (w ? 1 : 0) + pads.length) return null;
    const none: SimdMask = { causal: false, shift: 0, window: -1, keep: null };
    const plan = w ? (c ? w.withCausal(c.simdPlan().shift) : w.simdPlan()) : (c?.simdPlan() ?? none);
    const pad = pads.length ? pads[0].simdPlan() : null;
    if (!plan || (pads.length && (!pad || pad.causal || !pad.keep))) return null;
    return { ...plan, keep: pad?.keep ?? null };
  }
}

class OrMask extends Mask {
  readonly name: string;
  constructor(private readonly parts: readonly Mask[]) { super(); this.name = `(${parts.map((p) => p.name).join(' ∨ ')})`; }
  allows(b: number, h: number, i: number, j: number): boolean { return this.parts.some((m) => m.allows(b, h, i, j)); }
  override tile(b: number, h: number, i0: number, i1: number, j0: number, j1: number): TileState {
    let none = true;
    for (const m of this.parts) {
      const t = m.tile(b, h, i0, i1, j0, j1);
      if (t === TILE_ALL) return TILE_ALL;
      if (t === TILE_SOME) none = false;
    }
    return none ? TILE_NONE : TILE_SOME;
  }
}

/** Allowed only where every mask allows. */
export function and(...specs: MaskSpec[]): MaskSpec {
  return spec(specs.map((s) => s.describe).join(' & '), (dims) => new AndMask(specs.map((s) => s.build(dims))), andOptions(specs));
}

// AND of specs as one set of options, where the options combine by AND too: distinct keys, and no global tokens (as
// options they widen the window, an OR)
function andOptions(specs: MaskSpec[]): Partial<AttentionOptions> | undefined {
  const out: Record<string, unknown> = {};
  for (const s of specs) {
    if (!s.asOptions || 'globalTokens' in s.asOptions) return undefined;
    for (const [k, v] of Object.entries(s.asOptions)) {
      if (k in out) return undefined;
      out[k] = v;
    }
  }
  return out as Partial<AttentionOptions>;
}

/** Allowed where any mask allows. */
export function or(...specs: MaskSpec[]): MaskSpec {
  return spec(specs.map((s) => s.describe).join(' | '), (dims) => new OrMask(specs.map((s) => s.build(dims))), orOptions(specs));
}

// The one OR that options express: a sparse pattern (window and/or block-sparse) widened by global tokens (Longformer)
function orOptions(specs: MaskSpec[]): Partial<AttentionOptions> | undefined {
  if (specs.length !== 2) return undefined;
  const g = specs.find((s) => s.asOptions && Object.keys(s.asOptions).join() === 'globalTokens');
  const p = specs.find((s) => s !== g);
  const patternKeys = new Set(['window', 'dilation', 'blockSparse']);
  if (!g || !p?.asOptions || !Object.keys(p.asOptions).every((k) => patternKeys.has(k))) return undefined;
  return { ...p.asOptions, globalTokens: g.asOptions!.globalTokens };
}

/** Wraps an already-bound Mask (e.g. a dense tensor mask) as a spec. */
export function fromMask(mask: Mask): MaskSpec {
  return spec(mask.name, () => mask);
}
