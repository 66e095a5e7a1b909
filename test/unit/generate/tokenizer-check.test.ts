// tokenizer.json comes with a checkpoint, from outside: token ids past 2^22 (a billion-entry vocabulary) and patterns
// that repeat a group holding a repetition or alternatives (exponential backtracking on a client's text) are refused before
// the library builds the tokenizer; the patterns of real tokenizers pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { QkvError, Tokenizer } from '../../../src/index.js';
import { repeatsAmbiguousGroup, unboundedRepetitions } from '../../../src/generate/tokenizer-check.js';
import { DEFAULT_MODEL_DIR } from '../../../src/node/default-model.js';

const REAL = [
  // GPT-2 (ByteLevel's own), Llama 3 / cl100k, Qwen2, DeepSeek-V3's digit and CJK splits, a Metaspace-style one
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  '\\p{N}{1,3}', '[一-龥぀-ゟ゠-ヿ]+', '\\s?[!-/:-~！-／：-～‘-‟　-。]+', '\\s+$', ' ?[^(\\s|[.,!?…。，、।۔،])]+',
];
const NESTED = ['(a+)+$', '(a*)*', '(?:x+y)*', '((ab)+c)+', '(a+){2,}', '(\\s+)+', '( ?\\p{L}+)+', '(?:[a-z]+\\d*)+',
  '(a|a)*$', '(?:(a|a)c)+', '(x|xy){3,}', '((?:a|b))*'];

test('patterns that repeat a group holding a repetition or alternatives are recognised; real tokenizers\' patterns are not', () => {
  for (const re of REAL) assert.equal(repeatsAmbiguousGroup(re), false, re);
  for (const re of NESTED) assert.equal(repeatsAmbiguousGroup(re), true, re);
  // bounded, optional, escaped or inside a class: not nested
  for (const re of ['(a+)?b', '(a+){1,3}', '[(a+)]+', '\\(a+\\)+', '(ab)+', '[]a+]+', '(a|b)?c', '[a|b]+', 'a|b+', '\\|+']) {
    assert.equal(repeatsAmbiguousGroup(re), false, re);
  }
});

test('Tokenizer.fromJSON refuses such a pattern or a token id past 2^22, naming the file and where', () => {
  const json = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
  assert.ok(Tokenizer.fromJSON(json).encode('hello').length > 0);
  const split = { type: 'Split', pattern: { Regex: '(a+)+$' }, behavior: 'Isolated', invert: false };
  const withSplit = { ...json, pre_tokenizer: { type: 'Sequence', pretokenizers: [split, json.pre_tokenizer] } };
  assert.throws(() => Tokenizer.fromJSON(withSplit), (e: unknown) => e instanceof QkvError &&
    /tokenizer.json: the pattern at pre_tokenizer\.pretokenizers\.0\.pattern repeats without bound a group/.test(e.message));
  const model = json.model as { vocab: Record<string, number> };
  const vocab = { ...model.vocab, hello: 1e9 };
  assert.throws(() => Tokenizer.fromJSON({ ...json, model: { ...model, vocab } }, {}, 'x/tokenizer.json'),
    /x\/tokenizer.json: token "hello" has id 1000000000; token ids must be integers in \[0, 4194304\)/);
  const added = [{ id: -1, content: '<x>', special: true }];
  assert.throws(() => Tokenizer.fromJSON({ ...json, added_tokens: added }), /added_tokens\[0\] has id -1/);
});

test('a decoder\'s pattern may repeat one thing without bound (decoding runs in the caller\'s thread on every token)', () => {
  assert.deepEqual(['\\s*\\s*\\s*x', 'a+b*', '[a*]+c{2,}', '\\*+', 'a{1,3}b?', '▁'].map(unboundedRepetitions), [3, 2, 2, 1, 0, 0]);
  const json = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
  const replace = (Regex: string) => ({ type: 'Replace', pattern: { Regex }, content: ' ' });
  const withDecoder = (Regex: string) => ({ ...json, decoder: { type: 'Sequence', decoders: [replace(Regex), json.decoder] } });
  assert.throws(() => Tokenizer.fromJSON(withDecoder('\\s*\\s*\\s*x')), (e: unknown) => e instanceof QkvError &&
    /the decoder's pattern at decoder\.decoders\.0\.pattern has 3 unbounded repetitions; a decoder's pattern may have one/.test(e.message));
  assert.equal(Tokenizer.fromJSON(withDecoder('▁+')).decode([104, 105]), Tokenizer.fromJSON(json).decode([104, 105]));
  // the same pattern in a pre-tokenizer is the worker's business (qkv serve encodes there, with a deadline)
  const split = { type: 'Split', pattern: { Regex: '\\s*\\s*x' }, behavior: 'Isolated', invert: false };
  assert.ok(Tokenizer.fromJSON({ ...json, pre_tokenizer: { type: 'Sequence', pretokenizers: [split, json.pre_tokenizer] } }));
});
