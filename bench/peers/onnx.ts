// A minimal ONNX ModelProto writer (protobuf wire format by hand — a few fields of onnx.proto), so the CPU benchmark
// can hand onnxruntime-node the same attention graphs the anchors measured, without a Python toolchain.
// Field numbers are those of onnx/onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, ValueInfoProto).

const enc = new TextEncoder();

function varint(n: number | bigint): number[] {
  let x = BigInt(n);
  if (x < 0n) x += 1n << 64n; // two's complement, as protobuf encodes negative int64
  const out: number[] = [];
  do {
    let byte = Number(x & 0x7fn);
    x >>= 7n;
    if (x > 0n) byte |= 0x80;
    out.push(byte);
  } while (x > 0n);
  return out;
}

const key = (field: number, wire: number) => varint((field << 3) | wire);
const bytesField = (field: number, data: Uint8Array | number[]) => [...key(field, 2), ...varint(data.length), ...data];
const strField = (field: number, s: string) => bytesField(field, [...enc.encode(s)]);
const intField = (field: number, n: number) => [...key(field, 0), ...varint(n)];
const floatField = (field: number, x: number) => [...key(field, 5), ...new Uint8Array(new Float32Array([x]).buffer)];

export type Attr = { name: string; i?: number; f?: number; ints?: number[] };

/** NodeProto: inputs, outputs, op type, domain, attributes. */
export function node(op: string, inputs: string[], outputs: string[], attrs: Attr[] = [], domain = ''): number[] {
  const a = attrs.flatMap((x) => bytesField(5, [
    ...strField(1, x.name),
    ...(x.f !== undefined ? [...floatField(2, x.f), ...intField(20, 1)] : []),
    ...(x.i !== undefined ? [...intField(3, x.i), ...intField(20, 2)] : []),
    ...(x.ints ? [...x.ints.flatMap((v) => intField(8, v)), ...intField(20, 7)] : []),
  ]));
  return [...inputs.flatMap((s) => strField(1, s)), ...outputs.flatMap((s) => strField(2, s)), ...strField(3, `${op}_${outputs[0]}`),
    ...strField(4, op), ...a, ...(domain ? strField(7, domain) : [])];
}

/** ValueInfoProto of a float32 tensor with a fixed shape. */
export function valueInfo(name: string, shape: number[]): number[] {
  const dims = shape.flatMap((d) => bytesField(1, intField(1, d)));
  const tensorType = [...intField(1, 1), ...bytesField(2, dims)]; // elem_type FLOAT = 1
  return [...strField(1, name), ...bytesField(2, bytesField(1, tensorType))];
}

/** TensorProto initializer of float32 data. */
export function initializer(name: string, shape: number[], data: Float32Array): number[] {
  return [...shape.flatMap((d) => intField(1, d)), ...intField(2, 1), ...strField(8, name), ...bytesField(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength))];
}

/** ModelProto bytes: one graph, opsets (domain → version). */
export function model(nodes: number[][], inputs: number[][], outputs: number[][], inits: number[][], opsets: Record<string, number>): Uint8Array {
  const graph = [...nodes.flatMap((n) => bytesField(1, n)), ...strField(2, 'qkv_bench'), ...inits.flatMap((t) => bytesField(5, t)),
    ...inputs.flatMap((v) => bytesField(11, v)), ...outputs.flatMap((v) => bytesField(12, v))];
  const ops = Object.entries(opsets).flatMap(([domain, version]) => bytesField(8, [...(domain ? strField(1, domain) : []), ...intField(2, version)]));
  return Uint8Array.from([...intField(1, 10), ...ops, ...strField(2, 'qkv'), ...bytesField(7, graph)]);
}

/** The attention graphs the benchmarks hand onnxruntime (node and web), fp32, q/k/v of one shape each. */
export type AttentionGraph = 'ort-graph' | 'ort-mha' | 'ort-attention';

/**
 * One attention graph for B, H, L = S, D, causal or not, the shape of its q, k, v and output, and the inputs it needs
 * besides them (the unfused graph's causal mask, fed as an input: as an initializer its L² floats went through this
 * encoder's number arrays, 8 bytes a byte, and the child's peak memory counted that instead of onnxruntime's):
 *   ort-graph       Transpose(k) → MatMul(q, kᵀ) → Mul(scale) → [Add(causal mask)] → Softmax → MatMul(·, v)   [B, H, L, D]
 *   ort-mha         com.microsoft.MultiHeadAttention (onnxruntime's fused operator)                          [B, L, H·D]
 *   ort-attention   ONNX-23 Attention                                                                        [B, H, L, D]
 */
export function attentionGraph(kind: AttentionGraph, B: number, H: number, L: number, D: number, causal: boolean):
  { bytes: Uint8Array; shape: number[]; extra: { name: string; data: Float32Array; shape: number[] }[] } {
  const shape4 = [B, H, L, D];
  const io = (shape: number[]) => [['q', 'k', 'v'].map((n) => valueInfo(n, shape)), [valueInfo('o', shape)]];
  if (kind === 'ort-graph') {
    const nodes = [node('Transpose', ['k'], ['kt'], [{ name: 'perm', ints: [0, 1, 3, 2] }]), node('MatMul', ['q', 'kt'], ['s']),
      node('Mul', ['s', 'scale'], ['ss']), ...(causal ? [node('Add', ['ss', 'mask'], ['sm'])] : []),
      node('Softmax', [causal ? 'sm' : 'ss'], ['p'], [{ name: 'axis', i: -1 }]), node('MatMul', ['p', 'v'], ['o'])];
    const inits = [initializer('scale', [], new Float32Array([1 / Math.sqrt(D)]))];
    const [inputs, outputs] = io(shape4);
    if (causal) inputs.push(valueInfo('mask', [L, L]));
    const mask = new Float32Array(causal ? L * L : 0); // −∞ above the diagonal
    for (let i = 0; causal && i < L; i++) mask.fill(-Infinity, i * L + i + 1, (i + 1) * L);
    const extra = causal ? [{ name: 'mask', data: mask, shape: [L, L] }] : [];
    return { bytes: model(nodes, inputs, outputs, inits, { '': 17 }), shape: shape4, extra };
  }
  if (kind === 'ort-mha') {
    const shape3 = [B, L, H * D];
    const [inputs, outputs] = io(shape3);
    const mha = node('MultiHeadAttention', ['q', 'k', 'v'], ['o'], [{ name: 'num_heads', i: H }, { name: 'unidirectional', i: causal ? 1 : 0 }],
      'com.microsoft');
    return { bytes: model([mha], inputs, outputs, [], { '': 17, 'com.microsoft': 1 }), shape: shape3, extra: [] };
  }
  const [inputs, outputs] = io(shape4);
  return { bytes: model([node('Attention', ['q', 'k', 'v'], ['o'], [{ name: 'is_causal', i: causal ? 1 : 0 }])], inputs, outputs, [], { '': 23 }),
    shape: shape4, extra: [] };
}
