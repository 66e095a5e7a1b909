// tokenizer.json from outside, fuzzed: qkv-tiny's file with one to three values — anywhere in it, nested Sequences,
// the model's settings and a few vocabulary entries included — set to edge values or odd components (a Split with a
// nested-repetition or repeated-alternatives pattern, a bare BPE, a template processor without its parts) or deleted.
// Building the tokenizer must give a Tokenizer or a QkvError, and a Tokenizer must then encode, decode, split into pieces,
// tokenize and render a chat — each an answer or a QkvError, never a raw TypeError, RangeError or the library's own Error.
// (A token id of 10⁹ had made the vocabulary a billion entries long at the first vocabSize: 69 s; a `(a+)+$` split, 1.9 s
// on 25 a's.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { QkvError, Tokenizer } from '../../src/index.js';
import { DEFAULT_MODEL_DIR } from '../../src/node/default-model.js';
import { fuzzSeed, rng } from '../helpers.js';

const FILES = 300;
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const EDGE: readonly Json[] = [null, 0, -1, 1e9, 2 ** 22, 1.5, 'x', '', 'Ġ', true, [], {}, [1, 2], { type: 'x' },
  { type: 'Split', pattern: { Regex: '(a+)+$' }, behavior: 'Isolated', invert: false }, { type: 'Sequence', pretokenizers: [] },
  { type: 'Split', pattern: { Regex: '(a|a)*$' }, behavior: 'Isolated', invert: false },
  { type: 'Replace', pattern: { String: 'a' }, content: 'bb' }, { type: 'BPE' }, { type: 'WordPiece' }, { type: 'Unigram' },
  { type: 'Metaspace', replacement: '▁' }, { type: 'ByteFallback' }, { type: 'TemplateProcessing', single: [], pair: [], special_tokens: {} }];
const TEXTS = ['hello world', 'naïve café 🙂', '', ' aaaaaaaaaaaaaaaaaaaaaaaa!', '<|endoftext|>x', '\u0000\uffff'];

// the paths of a JSON value: every key of small objects and arrays, a few vocabulary entries and merges
function paths(o: Json, rand: () => number, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (o === null || typeof o !== 'object' || at.length > 4) return out;
  const keys: (string | number)[] = Array.isArray(o) ? (o.length > 6 ? [0, 1, o.length - 1] : o.map((_, i) => i))
    : Object.keys(o).length > 64 ? Array.from({ length: 3 }, () => Object.keys(o)[Math.floor(rand() * Object.keys(o).length)]) : Object.keys(o);
  for (const k of keys) {
    out.push([...at, k]);
    paths((o as Record<string | number, Json>)[k], rand, [...at, k], out);
  }
  return out;
}

test(`${FILES} mutated tokenizer.json files: a working tokenizer or a QkvError, and every method an answer or a QkvError`, () => {
  const base = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, 'tokenizer.json'), 'utf8')) as Json;
  const config = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  const rand = rng(fuzzSeed(2028));
  const findings: string[] = [];
  let built = 0;
  for (let f = 0; f < FILES; f++) {
    const json = structuredClone(base) as Record<string, Json>;
    const all = paths(json, rand);
    const edits: string[] = [];
    for (let e = 1 + Math.floor(rand() * 3); e > 0; e--) {
      const path = all[Math.floor(rand() * all.length)];
      let parent: Json = json;
      for (const k of path.slice(0, -1)) parent = (parent as Record<string | number, Json>)?.[k] ?? null;
      if (parent === null || typeof parent !== 'object') continue;
      const key = path[path.length - 1];
      if (rand() < 0.3 && !Array.isArray(parent)) { delete (parent as Record<string, Json>)[key]; edits.push(`${path.join('.')} deleted`); continue; }
      const v = EDGE[Math.floor(rand() * EDGE.length)];
      (parent as Record<string | number, Json>)[key] = structuredClone(v);
      edits.push(`${path.join('.')} = ${JSON.stringify(v)}`);
    }
    let stage = 'fromJSON';
    try {
      const tok = Tokenizer.fromJSON(json, config);
      built++;
      for (const text of TEXTS) {
        stage = `encode ${JSON.stringify(text)}`;
        const ids = tok.encode(text);
        stage = 'decode'; tok.decode(ids);
        stage = 'pieces'; tok.pieces(ids.slice(0, 8));
        stage = 'tokenize'; tok.tokenize(text);
      }
      stage = 'chat'; tok.chat([{ role: 'user', content: 'hi' }]);
      stage = 'vocabulary'; void tok.vocabSize; tok.idToToken(5); tok.tokenToId('a');
    } catch (e) {
      if (!(e instanceof QkvError)) findings.push(`${edits.join(' | ')}: ${stage}: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    }
  }
  assert.deepEqual(findings.slice(0, 5), [], `${findings.length} raw errors`);
  assert.ok(built > FILES / 4, `only ${built} of ${FILES} files built a tokenizer: the mutations are too coarse to test the methods`);
});
