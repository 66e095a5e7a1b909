// What a model's forward pass takes from its caller, checked before any of it is used: JavaScript callers are not
// type-checked, and a ragged batch, an empty row, a NaN position or a mask of the wrong length otherwise surfaced as a
// reshape error deep in a layer, a raw TypeError, NaN logits or — for a short mask or short positions — a silent
// default. Each error names the argument, what it must be and what it was.
import { checkIds, describeValue, QkvError } from '../errors.js';

type Rows = readonly (readonly number[])[];

/** Token ids as a model takes them: B ≥ 1 rows of one length T ≥ 1, each id an integer in [0, vocabSize). [B, T]. */
export function checkIdRows(ids: unknown, what: string, vocabSize: number): [number, number] {
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every(Array.isArray)) {
    throw new QkvError(`${what} must be a non-empty list of rows of token ids ([[id, …], …]), got ${describeValue(ids)}`);
  }
  const T = (ids[0] as unknown[]).length;
  if (T === 0 || ids.some((row: unknown[]) => row.length !== T)) {
    const lengths = ids.slice(0, 8).map((row: unknown[]) => row.length).join(', ') + (ids.length > 8 ? ', …' : '');
    throw new QkvError(`${what}: every row must hold the same number of tokens (at least 1), got rows of ${lengths}`);
  }
  ids.forEach((row, b) => checkIds(row, `${what} row ${b}`, vocabSize));
  return [ids.length, T];
}

/** Unless undefined: B rows of `width` values each passing `ok` ("B rows of width <want>", `why` says what width is). */
export function checkRows(rows: unknown, what: string, B: number, width: number, ok: (x: unknown) => boolean, want: string,
  why: string): void {
  if (rows === undefined) return;
  const problem = rowsProblem(rows, B, width, ok);
  if (problem) throw new QkvError(`${what} must be ${B} row(s) of ${width} ${want} (${why}): ${problem}`);
}

// the first thing wrong with `rows`, or null
function rowsProblem(rows: unknown, B: number, width: number, ok: (x: unknown) => boolean): string | null {
  if (!Array.isArray(rows)) return `got ${describeValue(rows)}`;
  if (rows.length !== B) return `got ${rows.length} row(s)`;
  for (const [b, row] of rows.entries()) {
    if (!Array.isArray(row)) return `row ${b} is ${describeValue(row)}`;
    if (row.length !== width) return `row ${b} holds ${row.length}`;
    const i = row.findIndex((x) => !ok(x));
    if (i >= 0) return `row ${b}[${i}] is ${describeValue(row[i])}`;
  }
  return null;
}

export const isMaskValue = (x: unknown) => x === 0 || x === 1;
export const isPosition = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;

/**
 * A causal LM's forward arguments: ids as checkIdRows; the options an object; positionIds, when given, one integer ≥ 0
 * per new token; attentionMask a 0 or 1 per key, cached and new; a cache that is one (store, length); the ablations
 * in their shapes.
 */
export function checkCausalForward(ids: unknown, o: unknown, vocabSize: number, what: string): [number, number] {
  const [B, T] = checkIdRows(ids, `${what}: ids`, vocabSize);
  if (typeof o !== 'object' || o === null) throw new QkvError(`${what}: options must be an object, got ${describeValue(o)}`);
  const { cache, positionIds, attentionMask, ablate } = o as { cache?: unknown; positionIds?: Rows; attentionMask?: Rows;
    ablate?: unknown };
  checkCache(cache, what);
  checkAblations(ablate, `${what}: ablate`);
  checkRows(positionIds, `${what}: positionIds`, B, T, isPosition, 'integers ≥ 0', 'one per new token');
  const past = cache ? (cache as { length(layer: number): number }).length(0) : 0;
  checkRows(attentionMask, `${what}: attentionMask`, B, past + T, isMaskValue, 'values 0 or 1',
    `one per key: ${past} cached + ${T} new`);
  return [B, T];
}

/** Unless undefined: a KV cache (cache/*.ts: store and length), else a QkvError naming `what`'s cache option. */
export function checkCache(cache: unknown, what: string): void {
  const isCache = typeof cache === 'object' && cache !== null &&
    typeof (cache as { store?: unknown }).store === 'function' && typeof (cache as { length?: unknown }).length === 'function';
  if (cache !== undefined && !isCache) throw new QkvError(`${what}: cache must be a KV cache (cache/*.ts), got ${describeValue(cache)}`);
}

/**
 * Unless undefined: the lab's ablations (model.ts: Ablations) as their shapes — slidingWindow and kvHeads integers ≥ 1,
 * heads a list of { layer, head }, patch { layer, head, weights: Float32Array, size } — each wrong one named. Whether a
 * head or layer exists is checked where the layer runs.
 */
export function checkAblations(ab: unknown, what: string): void {
  if (ab === undefined) return;
  if (typeof ab !== 'object' || ab === null) throw new QkvError(`${what} must be an object, got ${describeValue(ab)}`);
  const { slidingWindow, kvHeads, heads, patch } = ab as Record<string, unknown>;
  const count = (x: unknown) => x === undefined || (Number.isSafeInteger(x) && (x as number) >= 1);
  if (!count(slidingWindow)) throw new QkvError(`${what}.slidingWindow must be an integer ≥ 1, got ${describeValue(slidingWindow)}`);
  if (!count(kvHeads)) throw new QkvError(`${what}.kvHeads must be an integer ≥ 1, got ${describeValue(kvHeads)}`);
  const isHead = (h: unknown) => typeof h === 'object' && h !== null &&
    Number.isSafeInteger((h as { layer?: unknown }).layer) && Number.isSafeInteger((h as { head?: unknown }).head);
  if (heads !== undefined && !(Array.isArray(heads) && heads.every(isHead))) {
    throw new QkvError(`${what}.heads must be a list of { layer, head } integers, got ${describeValue(heads)}`);
  }
  const p = patch as { weights?: unknown; size?: unknown } | undefined;
  if (p !== undefined && !(isHead(p) && p.weights instanceof Float32Array && Number.isSafeInteger(p.size) && (p.size as number) >= 1)) {
    throw new QkvError(`${what}.patch must be { layer, head, weights: Float32Array, size ≥ 1 }, got ${describeValue(patch)}`);
  }
}
