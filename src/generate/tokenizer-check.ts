// Checks on a tokenizer.json before @huggingface/tokenizers builds it: the file comes with a checkpoint, from outside.
// - Token ids must be integers below MAX_TOKEN_ID: one token with id 10⁹ made the library's vocabulary a billion
//   entries long (a 69 s hang and the memory of it at the first vocabSize).
// - Regular expressions (a Split pre-tokenizer's or a Replace normalizer's pattern) must not repeat without bound a group
//   that holds an unbounded repetition, as `(a+)+` does, or alternatives, as `(a|a)*` does: JavaScript's backtracking
//   engine takes exponential time on some inputs (`(a+)+$` spent 1.9 s on 25 a's, `(a|a)*$` 0.4 s on 24, each doubling
//   with one more), and the input is whatever a client sends to `qkv serve`. Real tokenizers' patterns (GPT-2's,
//   Llama 3's, Qwen's, DeepSeek's) repeat character classes, never such groups. The rule is conservative (it refuses
//   `(a|b)*` too, which is safe); slow shapes without a repeated group (polynomial ones such as `\s*\s*$`) pass:
//   `qkv serve` encodes text in a worker with a deadline (node/text-sandbox.ts). Decoding runs in the caller's
//   thread, on every generated token, so a decoder's pattern (real decoders use none) may repeat at most one thing
//   without bound: `\s*\s*\s*\s*x` took 40 s on 200 spaces.
import { QkvError } from '../errors.js';

/** Token ids at most this (4,194,304; the largest vocabularies in use are ~256k). */
export const MAX_TOKEN_ID = 2 ** 22;

/** Throws a QkvError naming `source` and the fault when the parsed tokenizer.json breaks a rule above. */
export function checkTokenizerJson(json: object, source: string): void {
  const checkId = (id: unknown, what: string) => {
    if (typeof id === 'number' && (!Number.isInteger(id) || id < 0 || id >= MAX_TOKEN_ID)) {
      throw new QkvError(`${source}: ${what} has id ${id}; token ids must be integers in [0, ${MAX_TOKEN_ID})`);
    }
  };
  const vocab = own(own(json, 'model'), 'vocab');
  if (typeof vocab === 'object' && vocab !== null && !Array.isArray(vocab)) {
    for (const [token, id] of Object.entries(vocab)) checkId(id, `token ${JSON.stringify(token.slice(0, 40))}`);
  }
  const added = own(json, 'added_tokens');
  if (Array.isArray(added)) added.forEach((t, i) => checkId(own(t, 'id'), `added_tokens[${i}]`));
  for (const [where, re] of patterns(json, '', 0)) {
    const repeats = where.startsWith('decoder') ? unboundedRepetitions(re) : 0;
    if (repeats > 1) {
      throw new QkvError(`${source}: the decoder's pattern at ${where} has ${repeats} unbounded repetitions; a decoder's pattern may ` +
        `have one (decoding runs on every generated token, and adjacent repetitions such as \\s*\\s*\\s*x backtrack for minutes): ` +
        `${JSON.stringify(re.slice(0, 80))}`);
    }
    if (repeatsAmbiguousGroup(re)) {
      throw new QkvError(`${source}: the pattern at ${where} repeats without bound a group that holds a repetition or ` +
        `alternatives (as (a+)+ and (a|a)* do), which can take exponential time on some inputs: ${JSON.stringify(re.slice(0, 80))}`);
    }
  }
}

// o[k] when o is an object that has k itself (never a prototype's)
function own(o: unknown, k: string): unknown {
  return typeof o === 'object' && o !== null && Object.hasOwn(o, k) ? (o as Record<string, unknown>)[k] : undefined;
}

// every { pattern: { Regex: string } } in the file, with where it sits (a tokenizer nests them in Sequences)
function patterns(o: unknown, where: string, depth: number): [string, string][] {
  if (typeof o !== 'object' || o === null || depth > 64) return [];
  const found: [string, string][] = [];
  for (const [k, v] of Object.entries(o)) {
    if (k === 'vocab' || k === 'merges') continue; // large, and never patterns
    const at = where ? `${where}.${k}` : k;
    const re = k === 'pattern' ? own(v, 'Regex') : undefined;
    if (typeof re === 'string') found.push([at, re]);
    else found.push(...patterns(v, at, depth + 1));
  }
  return found;
}

/**
 * True when a group that holds an unbounded repetition (+, *, {n,}) or alternatives (|), at any depth, is itself repeated
 * without bound — the shapes of catastrophic backtracking. Escapes and character classes are skipped; lookarounds and
 * (?:…) are groups like any.
 */
export function repeatsAmbiguousGroup(re: string): boolean {
  const open: boolean[] = []; // per open group: whether it holds an unbounded repetition or alternatives
  let closed: boolean | null = null; // the group that just closed held one (null: the last atom was not a group)
  const mark = () => { if (open.length) open[open.length - 1] = true; };
  for (let i = 0; i < re.length; i++) {
    const c = re[i];
    if (c === '\\') { i++; closed = null; continue; }
    if (c === '[') { i = classEnd(re, i); closed = null; continue; }
    if (c === '(') { open.push(false); closed = null; continue; }
    if (c === ')') {
      closed = open.pop() ?? false;
      if (closed) mark();
      continue;
    }
    if (c === '|') { mark(); closed = null; continue; }
    if (isUnbounded(re, i)) {
      if (closed) return true;
      mark();
    }
    if (c !== '?') closed = null; // a lazy or possessive mark keeps the quantifier's group in view
  }
  return false;
}

/** How many unbounded repetitions (+, *, {n,}) the pattern has, outside character classes and escapes. */
export function unboundedRepetitions(re: string): number {
  let n = 0;
  for (let i = 0; i < re.length; i++) {
    const c = re[i];
    if (c === '\\') { i++; continue; }
    if (c === '[') { i = classEnd(re, i); continue; }
    if (isUnbounded(re, i)) n++;
  }
  return n;
}

// the index of the ']' that closes the character class opening at re[i] (a ']' first in the class is a literal)
function classEnd(re: string, i: number): number {
  i++;
  if (re[i] === '^') i++;
  if (re[i] === ']') i++;
  while (i < re.length && re[i] !== ']') i += re[i] === '\\' ? 2 : 1;
  return i;
}

// whether re[i] is an unbounded quantifier: +, * or {n,}
function isUnbounded(re: string, i: number): boolean {
  const c = re[i];
  return c === '+' || c === '*' || (c === '{' && /^\{\d*,\}/.test(re.slice(i, i + 12)));
}
