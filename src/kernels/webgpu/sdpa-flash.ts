// Host side of the WGSL FlashAttention kernel (sdpa-flash.wgsl): uploads q, k, v, runs a workgroup per 64 query rows,
// reads back out and lse. Covers no mask / causal (both alignments) / sliding and dilated windows / key padding,
// soft-capping, ALiBi, GQA and MQA, with value head_dim ≤ 256 (src/attention/webgpu.ts sends the rest to the CPU).
// Buffers live for one call and are destroyed after it; the pipeline is built once per device.
import type { AttentionOptions } from '../../attention/options.js';
import type { AttnShape } from '../../attention/validate.js';
import { QkvError } from '../../errors.js';
import { WGSL } from './sdpa-flash-wgsl.js';

const SUPPORTED = new Set(['scale', 'causal', 'window', 'dilation', 'keyLengths', 'softcap', 'alibiSlopes', 'kernel']);
const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/**
 * The pipeline for these head dims, built once per device: the shader's register arrays are sized to ⌈D/4⌉ and
 * ⌈Dv/4⌉ vec4s (its two `const …4` lines — the one place the WGSL is specialised, like Triton's constexprs), so a
 * small head dim does not pay for 256-float arrays. A shader that fails to compile is a QkvError with the message.
 */
async function pipeline(device: GPUDevice, D: number, Dv: number): Promise<GPUComputePipeline> {
  const [d4, dv4] = [Math.ceil(D / 4), Math.ceil(Dv / 4)];
  const key = `${d4}x${dv4}`;
  let byDims = pipelines.get(device);
  if (!byDims) pipelines.set(device, (byDims = new Map()));
  let p = byDims.get(key);
  if (!p) {
    const code = WGSL.replace(/const MAX_DV4: u32 = \d+u;/, `const MAX_DV4: u32 = ${dv4}u;`).replace(/const MAX_D4: u32 = \d+u;/, `const MAX_D4: u32 = ${d4}u;`);
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code, label: `qkv sdpa-flash ${key}` });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) {
      await device.popErrorScope();
      throw new QkvError(`WebGPU: sdpa-flash.wgsl does not compile: ${errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('; ')}`);
    }
    p = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: 'qkv sdpa-flash' });
    const err = await device.popErrorScope();
    if (err) throw new QkvError(`WebGPU: the sdpa-flash pipeline is invalid: ${err.message}`);
    byDims.set(key, p);
  }
  return p;
}

/** Why the WGSL kernel cannot take these options, or null when it can. */
export function webgpuUnsupported(o: AttentionOptions, D: number, Dv: number): string | null {
  const extra = Object.keys(o).filter((k) => !SUPPORTED.has(k) && (o as Record<string, unknown>)[k] !== undefined);
  if (extra.length) return `option${extra.length > 1 ? 's' : ''} ${extra.join(', ')} not on WebGPU yet`;
  if (Dv > 256 || D > 256) return `head_dim ${Math.max(D, Dv)} > 256`;
  if (D + Dv > 4000) return `head_dim ${D} + ${Dv} too large for a workgroup tile`;
  if (D < 1) return 'empty head_dim';
  return null;
}

/** Runs the kernel on `device`: dense float32 q, k, v in qkv's layout; resolves to dense out and lse (−∞ restored). */
export async function webgpuFlashForward(device: GPUDevice, dims: AttnShape, q: Float32Array, k: Float32Array, v: Float32Array,
  o: AttentionOptions): Promise<{ out: Float32Array; lse: Float32Array }> {
  const { B, Hq, Hkv, L, S, D, Dv } = dims;
  const keyLengths = o.keyLengths === undefined ? null : Uint32Array.from(Array.isArray(o.keyLengths) ? o.keyLengths : (o.keyLengths as { toArray(): number[] }).toArray());
  const window = o.window ?? [-1, -1];
  // the uniform block: 16 four-byte fields in the order of struct Params
  const params = new DataView(new ArrayBuffer(64));
  [B * Hq, Hq, Hkv, L, S, D, Dv, o.causal ? 1 : 0].forEach((x, n) => params.setUint32(4 * n, x, true));
  params.setFloat32(32, o.scale ?? 1 / Math.sqrt(D), true);
  params.setFloat32(36, o.softcap ?? 0, true);
  params.setInt32(40, o.causal === 'bottom-right' ? S - L : 0, true);
  params.setUint32(44, o.alibiSlopes ? 1 : 0, true);
  params.setInt32(48, Number.isFinite(window[0]) ? window[0] : -1, true);
  params.setInt32(52, Number.isFinite(window[1]) ? window[1] : -1, true);
  params.setInt32(56, o.dilation ?? 1, true);
  params.setUint32(60, keyLengths ? 1 : 0, true);
  // the window is anchored at i + shift even without a causal mask (bottom-right, as on the CPU)
  if (!o.causal && o.window) params.setInt32(40, S - L, true);

  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const upload = (data: ArrayBufferView & { byteLength: number }, u = usage) => {
    const buf = device.createBuffer({ size: Math.max(16, Math.ceil(data.byteLength / 4) * 4), usage: u });
    device.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
    return buf;
  };
  const outBytes = 4 * B * Hq * L * Dv;
  const lseBytes = 4 * B * Hq * L;
  const buffers = [
    upload(q), upload(k), upload(v),
    device.createBuffer({ size: Math.max(16, outBytes), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC }),
    device.createBuffer({ size: Math.max(16, lseBytes), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC }),
    upload(keyLengths ?? new Uint32Array(4)), upload(o.alibiSlopes ? Float32Array.from(o.alibiSlopes) : new Float32Array(4)),
    upload(new Uint8Array(params.buffer), GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST),
  ];
  const readback = device.createBuffer({ size: Math.max(16, outBytes + lseBytes), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    const pipe = await pipeline(device, D, Dv);
    const bind = device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })) });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipe);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(B * Hq * Math.ceil(L / 64)); // one workgroup per (head, tile of 64 query rows)
    pass.end();
    if (outBytes) enc.copyBufferToBuffer(buffers[3], 0, readback, 0, outBytes);
    if (lseBytes) enc.copyBufferToBuffer(buffers[4], 0, readback, outBytes, lseBytes);
    device.queue.submit([enc.finish()]);
    // Node's event loop must stay alive while the GPU works (a pending mapAsync alone does not keep it)
    const keepAlive = setInterval(() => {}, 50);
    try { await readback.mapAsync(GPUMapMode.READ); } finally { clearInterval(keepAlive); }
    const all = new Float32Array(readback.getMappedRange().slice(0));
    readback.unmap();
    return { out: all.slice(0, outBytes / 4), lse: all.slice(outBytes / 4).map((x) => (x <= -3.4e38 ? -Infinity : x)) };
  } finally {
    for (const b of [...buffers, readback]) b.destroy();
  }
}

