// Tokenizer.pieces: each token's text, for labels (`qkv score`, the lab's attention maps). The pieces join to the whole
// decode, and each is what decoding one more token adds — a character split over byte-level tokens whole on the token
// that completes it — computed with the incremental decoder's short window, not a decode of every prefix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settledText, type Tokenizer } from '../../../src/generate/tokenizer.js';
import { loadCheckpoint } from '../../../src/node/checkpoint.js';
import { TINY } from '../../models/helpers.js';

const tokenizer = loadCheckpoint(TINY).tokenizer as Tokenizer;

// the definition: the text each prefix adds, its unfinished characters (U+FFFD) held back until they end
function slowPieces(ids: readonly number[]): string[] {
  const out: string[] = [];
  let prev = '';
  for (let i = 0; i < ids.length; i++) {
    const full = i === ids.length - 1 ? tokenizer.decode(ids) : settledText(tokenizer.decode(ids.slice(0, i + 1)));
    out.push(full.startsWith(prev) ? full.slice(prev.length) : tokenizer.decode([ids[i]]));
    prev = full.startsWith(prev) ? full : prev + out[i];
  }
  return out;
}

test('pieces join to the decoded text, a character split over tokens whole on its last token, as the prefix-by-prefix definition', () => {
  const text = 'naïve café 🙂 — Ünïcödé: 日本語のテキスト, plain words, numbers 12345, and tabs\tand\nnewlines. '.repeat(12);
  const ids = tokenizer.encode(text);
  assert.ok(ids.length > 300, `${ids.length} tokens`);
  const pieces = tokenizer.pieces(ids);
  assert.equal(pieces.length, ids.length);
  assert.equal(pieces.join(''), tokenizer.decode(ids));
  assert.deepEqual(pieces, slowPieces(ids));
  assert.ok(!pieces.some((p) => p.includes('\uFFFD')), 'no replacement character: each character whole, once');
  assert.ok(pieces.includes(''), 'the tokens before a character\'s last byte are empty');
  // a text that ends inside a character: the last piece shows what decode shows
  const cut = ids.slice(0, pieces.indexOf('') + 1);
  assert.deepEqual(tokenizer.pieces(cut), slowPieces(cut));
  assert.deepEqual(tokenizer.pieces([]), []);
  assert.throws(() => tokenizer.pieces([1, -1]), /Tokenizer\.pieces: ids/);
});
