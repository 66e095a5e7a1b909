// safetensors: round trips of every dtype, and hand-crafted bad files that must fail with a SafetensorsError
// naming the tensor and the problem — never an out-of-bounds read (a RangeError from a typed array).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSafetensors, SafetensorsError, serializeSafetensors, Tensor } from '../../../src/index.js';

/** A file from a header object and a data buffer, exactly as given (no validation). */
function craft(header: unknown, data: Uint8Array | number = 0, headerLength?: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

function rejects(bytes: Uint8Array, pattern: RegExp) {
  assert.throws(() => parseSafetensors(bytes), (e: unknown) => {
    assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('safetensors round trip', () => {
  test('every dtype, metadata, odd sizes', () => {
    const tensors = {
      f32: Tensor.from([1.5, -2, 3], [3]),
      f16: Tensor.from([0.5, 1, -65504], [3], 'float16'),
      bf16: Tensor.from([1, 2, 3, 4], [2, 2], 'bfloat16'),
      i8: Tensor.from([-128, 127, 0], [3], 'int8'),
      u8: Tensor.from([255, 0, 7], [3], 'uint8'),
      i32: Tensor.from([-5, 6], [2], 'int32'),
      i64: Tensor.from([-(2 ** 40), 12], [2], 'int64'),
      flag: Tensor.from([1, 0, 1], [3], 'bool'),
      scalar: Tensor.from([42], []),
      empty: Tensor.zeros([0, 4]),
    };
    const bytes = serializeSafetensors(tensors, { format: 'pt', note: 'qkv' });
    const back = parseSafetensors(bytes);
    assert.deepEqual(back.metadata, { format: 'pt', note: 'qkv' });
    for (const [name, t] of Object.entries(tensors)) {
      const got = back.tensors.get(name)!;
      assert.equal(got.dtype, t.dtype, name);
      assert.deepEqual(got.shape, t.shape, name);
      assert.deepEqual(got.toArray(), t.toArray(), name);
    }
  });

  test('aligned tensors are views into the file bytes (zero copy)', () => {
    const bytes = serializeSafetensors({ a: Tensor.from([1, 2, 3, 4], [4]) });
    const t = parseSafetensors(bytes).tensors.get('a')!;
    assert.equal(t.data.buffer, bytes.buffer);
  });

  test('a transposed view is written in logical order', () => {
    const t = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]).transpose(0, 1);
    const back = parseSafetensors(serializeSafetensors({ t })).tensors.get('t')!;
    assert.deepEqual(back.toArray(), [1, 4, 2, 5, 3, 6]);
  });
});

describe('safetensors rejects bad files', () => {
  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  test('shorter than the length prefix', () => rejects(new Uint8Array(5), /5 bytes, shorter than the 8-byte header length/));
  test('header length past the end of the file', () => rejects(craft(ok, 8, 10_000), /header length 10000 runs past the end of the file/));
  test('header length beyond the limit', () => rejects(craft(ok, 8, 2 ** 40), /exceeds the limit/));
  test('header length of 2^64 − 1', () => {
    const b = craft(ok, 8);
    new DataView(b.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
    rejects(b, /exceeds the limit/);
  });
  test('bad JSON', () => rejects(craft('{"a": {"dtype": '), /header is not valid UTF-8 JSON/));
  test('JSON that is not an object', () => rejects(craft('[1, 2]'), /header must be a JSON object/));
  test('truncated data', () => rejects(craft(ok, 4), /tensor 'a': data_offsets \[0, 8\] run past the data buffer \(4 bytes\)/));
  test('size does not match dtype × shape', () => rejects(craft({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), /tensor 'a': .* span 8 bytes, but F32 \[3\] needs 12/));
  test('unknown dtype', () => rejects(craft({ a: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, 2), /tensor 'a': unknown dtype "F8_E4M3"/));
  test('negative or fractional shape', () => rejects(craft({ a: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } }), /tensor 'a': shape \[-1\] must be an array of at most 32 non-negative integers/));
  test('reversed offsets', () => rejects(craft({ a: { dtype: 'U8', shape: [0], data_offsets: [4, 0] } }, 4), /reversed/));
  test('overlapping tensors', () => rejects(craft({
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
  }, 12), /tensor 'b': data_offsets \[4, 12\] overlap another tensor/));
  test('a hole between tensors', () => rejects(craft({
    a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] },
    b: { dtype: 'U8', shape: [2], data_offsets: [4, 6] },
  }, 6), /tensor 'b': bytes 2..4 before it belong to no tensor/));
  test('trailing bytes', () => rejects(craft(ok, 12), /4 trailing bytes that belong to no tensor/));
  test('huge shape overflowing the byte count', () => rejects(craft({ a: { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 8] } }, 8), /tensor 'a': shape .* is too large/));
  test('metadata values must be strings', () => rejects(craft({ __metadata__: { n: 1 }, ...ok }, 8), /__metadata__.n must be a string/));
  test('BOOL bytes other than 0/1', () => rejects(craft({ a: { dtype: 'BOOL', shape: [2], data_offsets: [0, 2] } }, new Uint8Array([1, 7])), /BOOL data holds a byte other than 0 or 1/));
  test('JSON nested deeper than 128 levels (in any field), without overflowing the stack', () => {
    for (const field of ['dtype', 'shape', 'data_offsets']) {
      const deep = `${'['.repeat(100_000)}1${']'.repeat(100_000)}`;
      rejects(craft(`{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1], "${field}": ${deep}}}`, 1), /header JSON nests deeper than 128 levels/);
    }
    rejects(craft(`{"__metadata__": {"x": ${'{"a":'.repeat(200)}1${'}'.repeat(200)}}}`), /nests deeper than 128 levels/);
    const nested = `${'['.repeat(126)}${']'.repeat(126)}`; // 128 levels with the header and entry objects: parsed, then refused as a shape
    rejects(craft(`{"a": {"dtype": "U8", "shape": ${nested}, "data_offsets": [0, 0]}}`), /shape an array of 1 items must be/);
    assert.equal(parseSafetensors(craft('{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1], "x": "[[[[[[[[[[[[["}}', 1)).tensors.size, 1); // brackets in strings
  });
  test('a UTF-8 byte order mark before the JSON', () => rejects(craft(`\uFEFF${JSON.stringify(ok)}`, 8), /byte order mark/));
  test('__metadata__: null is accepted (the reference writer emits it)', () => {
    assert.deepEqual(parseSafetensors(craft({ __metadata__: null, ...ok }, 8)).metadata, {});
  });
  test('prototype names are not dtypes; prototype names as tensor and metadata keys are plain names', () => {
    for (const dtype of ['toString', '__proto__', 'constructor', 'hasOwnProperty']) rejects(craft({ a: { dtype, shape: [2], data_offsets: [0, 2] } }, 2), /unknown dtype/);
    const f = parseSafetensors(craft('{"__metadata__": {"__proto__": "x"}, "__proto__": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}', 1));
    assert.equal(f.tensors.get('__proto__')!.size, 1);
    assert.equal(Object.getOwnPropertyDescriptor(f.metadata, '__proto__')?.value, 'x');
    assert.equal(Object.getPrototypeOf(f.metadata), Object.prototype);
  });
  test('the shape product is checked whatever the order of the dims', () => {
    for (const shape of [[0, 2 ** 30, 2 ** 30, 2 ** 30], [2 ** 30, 2 ** 30, 2 ** 30, 0], [2 ** 30, 0, 2 ** 30, 2 ** 30]]) {
      rejects(craft({ a: { dtype: 'F32', shape, data_offsets: [0, 0] } }), /tensor 'a': shape .* is too large/);
    }
    assert.equal(parseSafetensors(craft({ a: { dtype: 'F32', shape: [0, 5], data_offsets: [0, 0] } })).tensors.get('a')!.size, 0);
  });
  test('rank above 32 and more than 2^18 tensors are refused', () => {
    rejects(craft({ a: { dtype: 'U8', shape: Array(33).fill(1), data_offsets: [0, 1] } }, 1), /at most 32 non-negative integers/);
    const many = Array.from({ length: 2 ** 18 + 1 }, (_, i) => `"t${i}":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}`).join(',');
    rejects(craft(`{${many}}`), /more than 262144 tensors/);
  });
  test('misaligned data is copied, not misread', () => {
    // header of odd length puts the F32 data at an unaligned offset
    const header = JSON.stringify({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }) + ' ';
    const b = craft(header.length % 4 === 0 ? header + ' ' : header, new Uint8Array(new Float32Array([2.5]).buffer));
    assert.equal(parseSafetensors(b).tensors.get('a')!.get(0), 2.5);
  });
});
