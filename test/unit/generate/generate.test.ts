// Sampling and generation options: seeds, top-k/top-p/min-p, repetition penalty, stop strings, streaming, limits.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generate, generateBatch, generateStream, greedy, seq2seqGenerate, settledText } from '../../../src/generate/generate.js';
import { checkSampling, sampleNext } from '../../../src/generate/sampling.js';
import { IncrementalDecoder, Tokenizer } from '../../../src/generate/tokenizer.js';
import { ContiguousKVCache, Int8KVCache, PagedKVCache, SinkKVCache, SlidingWindowKVCache } from '../../../src/cache/index.js';
import type { KVCache } from '../../../src/cache/kv-cache.js';
import type { CausalLM, Seq2SeqLM } from '../../../src/models/model.js';
import { Rng } from '../../../src/nn/random.js';
import { loadCheckpoint } from '../../../src/node/checkpoint.js';
import { join } from 'node:path';
import { GOLDEN_MODELS, TINY } from '../../models/helpers.js';

describe('sampleNext', () => {
  const logits = [1, 3, 2, 0.5, 2.9];
  test('greedy, temperature 0, top-k 1 and a tiny top-p all pick the argmax', () => {
    for (const o of [{ greedy: true }, { temperature: 0 }, { topK: 1 }, { topP: 1e-6 }, { minP: 1 }]) {
      for (let s = 0; s < 20; s++) assert.equal(sampleNext(logits, [], o, new Rng(s)), 1, JSON.stringify(o));
    }
  });

  test('sampling follows softmax(logits / T) (frequencies within a few percent)', () => {
    const rng = new Rng(1);
    const counts = new Array(5).fill(0);
    for (let n = 0; n < 20000; n++) counts[sampleNext(logits, [], { temperature: 1 }, rng)]++;
    const z = logits.reduce((s, l) => s + Math.exp(l), 0);
    logits.forEach((l, i) => assert.ok(Math.abs(counts[i] / 20000 - Math.exp(l) / z) < 0.015, `token ${i}`));
  });

  test('top-k 2 only ever draws the two best; top-p 0.5 only the nucleus', () => {
    const rng = new Rng(2);
    for (let n = 0; n < 500; n++) assert.ok([1, 4].includes(sampleNext(logits, [], { topK: 2 }, rng)));
    for (let n = 0; n < 500; n++) assert.ok([1, 4].includes(sampleNext(logits, [], { topP: 0.5 }, rng)));
  });

  test('repetition penalty pushes seen tokens down', () => {
    assert.equal(sampleNext(logits, [1], { greedy: true, repetitionPenalty: 2 }), 4);
  });

  test('presence and frequency penalties lower generated tokens by presence + frequency · count (not the prompt\'s)', () => {
    const logits = [1, 1.2, 1.1, 0.5];
    // token 1 was generated twice, token 2 once; token 3 only in the prompt
    assert.equal(sampleNext(logits, [3, 1, 2, 1], { greedy: true, presencePenalty: 0.12 }, new Rng(0), [1, 2, 1]), 1); // 1, 1.08, 0.98
    assert.equal(sampleNext(logits, [3, 1, 2, 1], { greedy: true, frequencyPenalty: 0.12 }, new Rng(0), [1, 2, 1]), 0); // 1, 0.96, 0.98
    assert.equal(sampleNext([0, 0, 0, 2], [3], { greedy: true, presencePenalty: 2 }, new Rng(0), []), 3);
    assert.throws(() => checkSampling({ frequencyPenalty: 3 }), /frequencyPenalty must be a number in \[−2, 2\], got 3/);
  });

  test('the same seed gives the same draws', () => {
    const draws = (seed: number) => { const r = new Rng(seed); return Array.from({ length: 30 }, () => sampleNext(logits, [], {}, r)); };
    assert.deepEqual(draws(9), draws(9));
    assert.notDeepEqual(draws(9), draws(10));
  });
});

describe('generate on qkv-tiny', () => {
  const ckpt = loadCheckpoint(TINY);
  const model = ckpt.model as CausalLM;

  test('streamed pieces add up to the final text; the seed fixes the text', async () => {
    const pieces: string[] = [];
    const it = generateStream(model, ckpt.tokenizer, 'The Zen of Python', { maxTokens: 20, seed: 5, temperature: 0.9, topP: 0.95 });
    let r = await it.next();
    for (; !r.done; r = await it.next()) pieces.push(r.value.text);
    assert.equal(pieces.join(''), r.value.text);
    const again = await generate(model, ckpt.tokenizer, 'The Zen of Python', { maxTokens: 20, seed: 5, temperature: 0.9, topP: 0.95 });
    assert.equal(again.text, r.value.text);
    assert.ok(r.value.timings.prefillMs > 0);
  });

  test('a stop string ends generation and is cut from the text', async () => {
    const r = await generate(model, ckpt.tokenizer, 'A fool and his money', { greedy: true, maxTokens: 24, stopStrings: ['Ambrose'] });
    assert.equal(r.text, '.\n\t\t-- ');
    assert.equal(r.finishReason, 'stop');
  });

  test('streaming never shows the start of a stop string: a token whose text could begin one waits for the next', async () => {
    const o = { greedy: true, maxTokens: 24, stopStrings: ['Bierce'] };
    const chunks: string[] = [];
    const indices: number[] = [];
    const it = generateStream(model, ckpt.tokenizer, 'A fool and his money', o);
    let r = await it.next();
    for (; !r.done; r = await it.next()) { chunks.push(r.value.text); indices.push(r.value.index); }
    assert.equal(r.value.text, '.\n\t\t-- Ambrose ');
    assert.equal(chunks.join(''), r.value.text, 'the stream is the text: "…Ambrose Bier" is never shown');
    assert.deepEqual(indices, r.value.ids.map((_, n) => n), 'every token once, in order');
    // held text that turns out not to be a stop string is released, and the end flushes what is still held
    const partial = await generate(model, ckpt.tokenizer, 'A fool and his money', { greedy: true, maxTokens: 24, stopStrings: ['Ambrose Bierce!'] });
    const streamed: string[] = [];
    for await (const t of generateStream(model, ckpt.tokenizer, 'A fool and his money', { greedy: true, maxTokens: 24, stopStrings: ['Ambrose Bierce!'] })) streamed.push(t.text);
    assert.equal(streamed.join(''), partial.text);
    assert.equal(partial.text, '.\n\t\t-- Ambrose Bierce\n');
  });

  test('maxTokens bounds the output; stop tokens can be turned off', async () => {
    const r = await generate(model, ckpt.tokenizer, 'A fool and his money', { greedy: true, maxTokens: 30, stopTokens: [] });
    assert.equal(r.ids.length, 30);
    assert.equal(r.finishReason, 'length');
  });

  test('a long prompt is prefilled in prefillChunk-token chunks against the cache: the same tokens and log-probabilities', async () => {
    const prompt = Array.from({ length: 300 }, (_, i) => (i * 37 + 11) % 4096);
    const lens: number[] = [];
    const spy = Object.create(model) as CausalLM; // the model, its forward passes counted
    spy.forward = (ids, o) => { lens.push(ids[0].length); return model.forward(ids, o); };
    const run = async (prefillChunk?: number, cache?: KVCache) => {
      const logprobs: number[] = [], progress: string[] = [];
      const r = await generate(spy, null, prompt, { greedy: true, maxTokens: 6, stopTokens: [], logprobs: 2, prefillChunk, cache,
        onToken: (t) => logprobs.push(t.logprob!, ...t.top!.map((x) => x.logprob)),
        onPrefill: (done, total) => progress.push(`${done}/${total} after ${lens.length} passes`) });
      return { ids: r.ids, logprobs, forwards: lens.splice(0), progress };
    };
    const whole = await run(300), chunked = await run(128);
    assert.deepEqual(whole.forwards, [300, 1, 1, 1, 1, 1]);
    assert.deepEqual(chunked.forwards, [128, 128, 44, 1, 1, 1, 1, 1], 'chunks of 128, 128 and 44, then the decode steps');
    assert.deepEqual(whole.progress, ['300/300 after 1 passes']);
    assert.deepEqual(chunked.progress, ['128/300 after 1 passes', '256/300 after 2 passes', '300/300 after 3 passes']);
    assert.deepEqual(chunked.ids, whole.ids);
    assert.equal(chunked.logprobs.length, 18);
    chunked.logprobs.forEach((l, i) => assert.ok(Math.abs(l - whole.logprobs[i]) < 1e-4, `logprob ${i}: ${l} against ${whole.logprobs[i]}`));
    const byDefault = await run();
    assert.deepEqual(byDefault.forwards, [300, 1, 1, 1, 1, 1], 'the default chunk, 512, takes this prompt in one pass');
    // a given paged cache (every token kept as given) and a sliding one (every token a later window reaches: here
    // the second chunk's first query reaches 99 keys back into the first) are prefilled in chunks too, with the one
    // pass's answer over the same cache
    const L = model.info.numLayers;
    for (const make of [() => new PagedKVCache(L), () => new SlidingWindowKVCache(L, 100)]) {
      const [one, chunks] = [await run(300, make()), await run(128, make())];
      assert.deepEqual(chunks.forwards, [128, 128, 44, 1, 1, 1, 1, 1]);
      assert.deepEqual(chunks.ids, one.ids);
      chunks.logprobs.forEach((l, i) => assert.ok(Math.abs(l - one.logprobs[i]) < 1e-4, `${make().kind} logprob ${i}: ${l} against ${one.logprobs[i]}`));
    }
    // an int8 cache too, its chunks reading the earlier ones' keys and values rounded to 8 bits (as generated tokens do)
    const [one8, chunks8] = [await run(300, new Int8KVCache(L)), await run(128, new Int8KVCache(L))];
    assert.deepEqual(chunks8.forwards, [128, 128, 44, 1, 1, 1, 1, 1]);
    assert.deepEqual(chunks8.ids, one8.ids);
    // (measured: 2.2e-4 at most, where the int8 cache's own answer is up to 0.045 from the f32 cache's)
    const gap = Math.max(...chunks8.logprobs.map((l, i) => Math.abs(l - one8.logprobs[i])));
    const int8Own = Math.max(...one8.logprobs.map((l, i) => Math.abs(l - whole.logprobs[i])));
    assert.ok(gap < 1e-3 && gap < int8Own / 20, `int8: chunks ${gap} from one pass, one pass ${int8Own} from f32`);
    // a sink cache in one pass: its positions are assigned inside the cache, eviction within the prompt another model
    assert.deepEqual((await run(128, new SinkKVCache(L, 4, 508))).forwards, [300, 1, 1, 1, 1, 1], 'sinks');
  });

  test('an empty continuation is an answer: maxTokens 0, or a stop token first (streamed or not)', async () => {
    const none = await generate(model, ckpt.tokenizer, 'A fool and his money', { maxTokens: 0 });
    assert.deepEqual([none.ids, none.text, none.finishReason], [[], '', 'length']);
    const first = (await generate(model, ckpt.tokenizer, 'A fool and his money', { greedy: true, maxTokens: 1 })).ids[0];
    const stopped = await generate(model, ckpt.tokenizer, 'A fool and his money', { greedy: true, maxTokens: 8, stopTokens: [first] });
    assert.deepEqual([stopped.ids, stopped.text, stopped.finishReason], [[], '', 'stop']);
    const pieces: string[] = [];
    for await (const t of generateStream(model, ckpt.tokenizer, 'A fool and his money', { greedy: true, stopTokens: [first] })) pieces.push(t.text);
    assert.deepEqual(pieces, []);
    assert.equal(ckpt.tokenizer!.decode([]), '');
  });

  test('bad options and prompts past the context are refused with the reason', async () => {
    await assert.rejects(generate(model, ckpt.tokenizer, 'x', { topP: 0 }), /topP must be in \(0, 1\], got 0/);
    await assert.rejects(generate(model, ckpt.tokenizer, 'x', { temperature: -1 }), /temperature must be a number ≥ 0/);
    await assert.rejects(generate(model, ckpt.tokenizer, 'x', { maxTokens: 5000 }), /exceeds the model's context of 1024/);
    await assert.rejects(generate(model, ckpt.tokenizer, '', {}), /the prompt is empty/);
    await assert.rejects(generate(model, ckpt.tokenizer, 'x', { prefillChunk: 0 }), /prefillChunk must be an integer ≥ 1, got 0/);
  });

  test('generateBatch, seq2seqGenerate and greedy check their options as generate does (a bad maxTokens broke the kernels)', () => {
    // maxTokens {} made the batch's cache capacity "2[object Object]": a NaN size that left the kernels' memory top NaN,
    // and every later call read out of bounds
    assert.throws(() => generateBatch(model, [[1, 2], [3, 4]], { maxTokens: {} as never }),
      /generateBatch: maxTokens must be an integer ≥ 0, got/);
    assert.throws(() => generateBatch(model, [[1, 2]], { stopTokens: [[]] as never }),
      /generateBatch: stopTokens must be a list of integer token ids/);
    assert.throws(() => greedy(model, [[1, 2]], 1.5), /greedy: n must be an integer ≥ 0, got 1.5/);
    assert.throws(() => greedy(model, [[1, 2]], 2, {} as never), /greedy: cache must be a KV cache/);
    assert.throws(() => new ContiguousKVCache(4, NaN), /ContiguousKVCache: initialCapacity must be an integer ≥ 1, got NaN/);
    assert.deepEqual(greedy(model, [[1, 2, 3]], 2).length, 5, 'the kernels still work');
    const t5 = loadCheckpoint(join(GOLDEN_MODELS, 't5'), { tokenizer: false }).model as Seq2SeqLM;
    assert.throws(() => seq2seqGenerate(t5, [1, 2], { stopTokens: (() => 0) as never }), /seq2seqGenerate: stopTokens must be a list/);
    assert.throws(() => seq2seqGenerate(t5, [1, 2], { maxTokens: -1 }), /seq2seqGenerate: maxTokens must be an integer ≥ 0, got -1/);
  });

  test('the tokenizer round-trips text byte for byte (byte-level BPE)', () => {
    for (const text of ['Hello, world!', '  two  spaces\n\ttab', 'ünïcödé ✓ 日本語 🙂', 'def f(x):\n    return x**2']) {
      assert.equal(ckpt.tokenizer!.decode(ckpt.tokenizer!.encode(text)), text);
    }
  });
});

test('a character split over byte-level tokens is streamed whole: every trailing U+FFFD is held back', () => {
  assert.equal(settledText('café \uFFFD\uFFFD'), 'café '); // two bytes of a four-byte 🙂 decode as two U+FFFD
  assert.equal(settledText('naïve 🙂'), 'naïve 🙂');
  assert.equal(settledText('\uFFFD'), '');
});

test('IncrementalDecoder gives decode(ids) for every prefix of a growing list: split characters, stray bytes, specials', () => {
  const tok = loadCheckpoint(TINY).tokenizer!;
  const text = 'naïve café 🙂 — 日本語\n  indented  lines, "quotes" and the end.';
  const rand = new Rng(3);
  const stray = Array.from({ length: 200 }, () => Math.floor(rand.uniform() * tok.vocabSize)); // bytes that are no UTF-8
  for (const ids of [tok.encode(text), [...tok.encode(text), ...stray, ...tok.encode(text)]]) {
    const dec = new IncrementalDecoder(tok);
    for (let n = 1; n <= ids.length; n++) assert.equal(dec.decode(ids.slice(0, n)), tok.decode(ids.slice(0, n)), `after ${n} ids`);
  }
});


// A SentencePiece-style tokenizer as Llama 2 and Mistral ship it: "▁" marks a space, a piece missing from the vocabulary
// falls back to byte tokens, and the decoder strips the one space that Metaspace prepended to the text.
function sentencePieceTokenizer(): Tokenizer {
  const specials = ['<unk>', '<s>', '</s>'];
  const vocab: Record<string, number> = {};
  const add = (piece: string) => { vocab[piece] = Object.keys(vocab).length; };
  specials.forEach(add);
  for (let b = 0; b < 256; b++) add(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  for (const p of ['▁', ...'abcdefghijklmnopqrstuvwxyzTZ,.', '▁t', 'he', '▁the', '▁a', 'in', '▁in']) add(p);
  return Tokenizer.fromJSON({
    version: '1.0', truncation: null, padding: null, normalizer: null, post_processor: null,
    added_tokens: specials.map((content, id) => ({
      id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' },
      { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true,
      byte_fallback: true, ignore_merges: false, vocab, merges: ['▁ t', 'h e', '▁t he', '▁ a', 'i n', '▁ in'] },
  });
}

test('IncrementalDecoder with a SentencePiece decoder: the stripped leading space and byte fallback, every prefix', () => {
  // decoding a window alone would strip each window's first "▁": the step of context before it is what keeps the space
  const tok = sentencePieceTokenizer();
  const text = 'The cat in the hat naïve café 🙂 — 日本語';
  assert.equal(tok.decode(tok.encode(text)), text);
  for (const ids of [tok.encode(text), [1, ...tok.encode(text), 2, ...tok.encode(' leading  spaces ▁ and ▁▁ marks')]]) {
    const dec = new IncrementalDecoder(tok);
    for (let n = 1; n <= ids.length; n++) assert.equal(dec.decode(ids.slice(0, n)), tok.decode(ids.slice(0, n)), `after ${n} ids`);
  }
});

test('generate refuses options of the wrong type with a QkvError naming them (a fuzzer found raw TypeErrors)', async () => {
  const ck = loadCheckpoint(TINY);
  const run = (prompt: unknown, o: Record<string, unknown>) => generate(ck.model as CausalLM, ck.tokenizer, prompt as string, { maxTokens: 2, ...o });
  const cases: [unknown, Record<string, unknown>, RegExp][] = [
    [null, {}, /the prompt must be a string or a list of token ids, got null/],
    [['a'], {}, /the prompt must be a list of integer token ids/],
    ['hi', { logitBias: 1 }, /logitBias must be a Map of token id → bias, got 1/],
    ['hi', { stopTokens: null }, /stopTokens must be a list of integer token ids, got null/],
    ['hi', { stopStrings: 'end' }, /stopStrings must be a list of non-empty strings, got "end"/],
    ['hi', { cache: 5 }, /cache must be a KV cache/],
    ['hi', { onToken: 'x' }, /onToken must be a function, got "x"/],
    ['hi', { seed: 'x' }, /seed must be an integer, got "x"/],
    ['hi', { temperature: Symbol('t') }, /temperature must be a number ≥ 0, got Symbol\(t\)/],
    ['hi', { presencePenalty: 10n }, /presencePenalty must be a number in \[−2, 2\], got 10/],
  ];
  for (const [prompt, o, message] of cases) await assert.rejects(run(prompt, o), message, JSON.stringify(o, (_, v) => typeof v === 'bigint' || typeof v === 'symbol' ? String(v) : v));
});
