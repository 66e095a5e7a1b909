// `npm run bench:gpu`: attention on the GPU, qkv-webgpu (f32, and f16 where the device has shader-f16; Dawn in Node) side by side with PyTorch's
// scaled_dot_product_attention in the same run when `python3` with torch and CUDA is present. TFLOP/s =
// 4·B·H·L·S·D / time, halved for causal; medians of 5 after a warm-up. qkv is timed twice: with q, k, v uploaded
// and the output read back (Tensors), and resident (GpuTensors: the kernel, then a read of lse to wait for it);
// PyTorch's is the kernel alone (CUDA events). Then, qkv only: split-K decode (one query row against S = 4096 and
// 32768 keys, B·H = 32), the tiled matmul (4096³, GFLOP = 2·M·N·K), and the backward pass (B=1, H=8, L=1024,
// D=64; 2.5× the forward's FLOPs), and whole-model generation on the GPU (qkv-tiny and SmolLM-135M's shape with
// random weights: prefill and decode tokens/s, weights and KV cache resident; f16 weights stay f16 with shader-f16,
// and with it a second row each with the KV cache in f16).
// f16 rows: the plain WGSL kernel (f16 storage, f32 arithmetic) and, where the adapter has subgroup matrices, the
// tensor-core kernel (sdpa-flash-matrix.wgsl) — the one PyTorch's FlashAttention-2 row is compared with.
// Options: --json, --quick (tiny shapes, to check the script on any adapter, e.g. llvmpipe), --sweep (the f32 and the
// tensor-core kernels at several tile sizes, to choose their defaults on a new GPU)
import { spawnSync } from 'node:child_process';
import { attentionBackwardWebGPU, attentionWebGPU, toGpu } from '../src/attention/webgpu.js';
import { fileURLToPath } from 'node:url';
import { generate, GpuTensor, linearWebGPU, Tensor, type CausalLM } from '../src/index.js';
import { loadCheckpoint } from '../src/node/checkpoint.js';
import { randomLlama } from './random-llama.js';
import { gpuDevice, hasF16, matrixConfig } from '../src/kernels/webgpu/device.js';
import { flashTiles, tensorCorePlan } from '../src/kernels/webgpu/sdpa-flash.js';
import { setSubmitBatch } from '../src/kernels/webgpu/buffers.js';
import { useDawn } from '../src/node/webgpu.js';

const QUICK = process.argv.includes('--quick');
const SWEEP = process.argv.includes('--sweep'); // time several tile sizes of the f32 and tensor-core kernels
const SHAPES: [number, number, number, number][] = QUICK ? [[1, 2, 64, 32]] : [[1, 32, 4096, 128], [8, 16, 2048, 64]];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const flops = (B: number, H: number, L: number, D: number, causal: boolean) => (4 * B * H * L * L * D) / (causal ? 2 : 1);

const PYTORCH = `
import json, sys, torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend
out = []
for (B, H, L, D) in ${JSON.stringify(SHAPES)}:
  for causal in (False, True):
    for dtype, name, backends in ((torch.float32, 'f32', [SDPBackend.EFFICIENT_ATTENTION]), (torch.float16, 'f16 flash-2', [SDPBackend.FLASH_ATTENTION])):
      q, k, v = (torch.randn(B, H, L, D, device='cuda', dtype=dtype) for _ in range(3))
      with sdpa_kernel(backends):
        for _ in range(3): F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        times = []
        for _ in range(5):
          a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
          a.record(); F.scaled_dot_product_attention(q, k, v, is_causal=causal); b.record(); torch.cuda.synchronize()
          times.append(a.elapsed_time(b))
      times.sort()
      out.append(dict(B=B, H=H, L=L, D=D, causal=causal, impl='pytorch ' + name, ms=times[2]))
print(json.dumps(dict(torch=torch.__version__, gpu=torch.cuda.get_device_name(), rows=out)))
`;

/** Adds a measured row, and prints it on stderr at once: a run cut short (a GPU machine's time limit) still shows it. */
function keep<T>(list: T[], row: T): void {
  list.push(row);
  console.error(`measured ${JSON.stringify(row)}`);
}

/** Median ms of `run` on resident tensors: the call, then a small read (lse) that waits for the GPU to finish. */
async function timeResident(run: () => Promise<{ out: GpuTensor; lse: GpuTensor }>): Promise<number> {
  const once = async () => { const r = await run(); await r.lse.read(); r.out.release(); r.lse.release(); };
  await once();
  const ms: number[] = [];
  for (let r = 0; r < 5; r++) { const t0 = performance.now(); await once(); ms.push(performance.now() - t0); }
  return median(ms);
}

/** qkv-only rows: decode, matmul, backward — what, ms and the achieved rate. */
async function kernelRows(): Promise<{ what: string; ms: number; rate: string }[]> {
  const out: { what: string; ms: number; rate: string }[] = [];
  const randn = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 0.5);
  const device = (await gpuDevice())!;
  for (const S of QUICK ? [128] : [4096, 32768]) {
    const [B, H, D] = [1, 32, 128];
    const q = GpuTensor.upload(device, randn(B * H * D), [B, H, 1, D]);
    const kv = GpuTensor.upload(device, randn(B * H * S * D), [B, H, S, D]);
    const ms = await timeResident(() => attentionWebGPU(q, kv, kv));
    keep(out, { what: `decode: 1 row × ${S} keys, B·H = ${B * H}, D = ${D}`, ms, rate: `${((2 * B * H * S * D * 4) / ms / 1e6).toFixed(0)} GB/s of K+V` });
    q.release(); kv.release();
  }
  const N = QUICK ? 128 : 4096;
  const w = randn(N * N);
  const x = GpuTensor.upload(device, randn(N * N), [N, N]);
  await (await linearWebGPU(x, Tensor.from(w, [N, N]))).read();
  const mm: number[] = [];
  for (let r = 0; r < 5; r++) { const t0 = performance.now(); const y = await linearWebGPU(x, Tensor.from(w, [N, N])); await y.read(); mm.push(performance.now() - t0); y.release(); }
  keep(out, { what: `matmul ${N}×${N}×${N} (incl. reading C back)`, ms: median(mm), rate: `${(2 * N ** 3 / median(mm) / 1e9).toFixed(2)} TFLOP/s` });
  if (hasF16(device)) { // the same product with the weight kept f16 on the GPU
    const w16 = Tensor.from(w, [N, N]).to('float16');
    await (await linearWebGPU(x, w16)).read();
    const m16: number[] = [];
    for (let r = 0; r < 5; r++) { const t0 = performance.now(); const y = await linearWebGPU(x, w16); await y.read(); m16.push(performance.now() - t0); y.release(); }
    keep(out, { what: `matmul ${N}×${N}×${N}, f16 weight (incl. reading C back)`, ms: median(m16), rate: `${(2 * N ** 3 / median(m16) / 1e9).toFixed(2)} TFLOP/s` });
  }
  x.release();
  const [B, H, L, D] = QUICK ? [1, 2, 64, 32] : [1, 8, 1024, 64];
  const t = Tensor.from(randn(B * H * L * D), [B, H, L, D]);
  await attentionBackwardWebGPU(t, t, t, t);
  const bw: number[] = [];
  for (let r = 0; r < 3; r++) { const t0 = performance.now(); await attentionBackwardWebGPU(t, t, t, t); bw.push(performance.now() - t0); }
  keep(out, { what: `backward B=${B} H=${H} L=${L} D=${D} (with transfers and the forward)`, ms: median(bw), rate: `${(2.5 * flops(B, H, L, D, false) / median(bw) / 1e9).toFixed(3)} TFLOP/s` });
  // whole models: greedy generation with device 'webgpu' (ms = per decode token)
  const tiny = loadCheckpoint(fileURLToPath(new URL('../../models/qkv-tiny', import.meta.url)), { tokenizer: false }).model as CausalLM;
  type Run = [string, CausalLM, number, number, 'float32' | 'float16'];
  const models: Run[] = [['qkv-tiny (4.1M)', tiny, QUICK ? 16 : 128, QUICK ? 4 : 64, 'float32']];
  if (hasF16(device)) models.push(['qkv-tiny (4.1M), f16 KV cache', tiny, QUICK ? 16 : 128, QUICK ? 4 : 64, 'float16']);
  if (!QUICK) {
    const smol = randomLlama({ E: 576, layers: 30, heads: 9, kvHeads: 3, F: 1536, V: 49152, dtype: 'float16' }).model;
    models.push([`SmolLM-135M shape, f16 weights (${hasF16(device) ? 'kept f16' : 'widened to f32'})`, smol, 64, 32, 'float32']);
    if (hasF16(device)) models.push(['SmolLM-135M shape, f16 weights, f16 KV cache', smol, 64, 32, 'float16']);
  }
  // and with --sweep, qkv-tiny with other numbers of command buffers per queue.submit (16 is the default)
  type RunPerSubmit = [...Run, number];
  const runs: RunPerSubmit[] = models.map((m) => [...m, 16]);
  if (SWEEP) runs.push(...[1, 4, 64].map((n): RunPerSubmit => [`qkv-tiny (4.1M), ${n} command buffers per submit`, tiny, QUICK ? 16 : 128, QUICK ? 4 : 64, 'float32', n]));
  for (const [name, model, promptLen, newTokens, kvDtype, perSubmit] of runs) {
    setSubmitBatch(perSubmit);
    const prompt = Array.from({ length: promptLen }, (_, i) => (i * 31 + 7) % model.info.vocabSize);
    const run = () => generate(model, null, prompt, { greedy: true, maxTokens: newTokens, stopTokens: [], device: 'webgpu', kvDtype });
    await run();
    const rs = [await run(), await run(), await run()];
    const decode = median(rs.map((r) => r.timings.decodeMs / (newTokens - 1)));
    const prefill = median(rs.map((r) => r.timings.prefillMs));
    keep(out, { what: `generate ${name}: ${promptLen}-token prompt, ${newTokens} new`, ms: decode,
      rate: `decode ${(1000 / decode).toFixed(1)} tok/s, prefill ${(promptLen / prefill * 1000).toFixed(0)} tok/s` });
  }
  setSubmitBatch(16);
  return out;
}

async function main() {
  if (!(await useDawn()) || !(await gpuDevice())) { console.error('bench:gpu: no WebGPU adapter (run it on a GPU machine)'); process.exit(2); }
  const rows: { impl: string; B: number; H: number; L: number; D: number; causal: boolean; ms: number }[] = [];
  for (const [B, H, L, D] of SHAPES) {
    const x = Tensor.from(Float32Array.from({ length: B * H * L * D }, (_, i) => Math.sin(i) * 0.5), [B, H, L, D]);
    for (const causal of [false, true]) {
      await attentionWebGPU(x, x, x, { causal });
      const ms: number[] = [];
      for (let r = 0; r < 5; r++) { const t0 = performance.now(); await attentionWebGPU(x, x, x, { causal }); ms.push(performance.now() - t0); }
      keep(rows, { impl: 'qkv-webgpu f32 (with transfers)', B, H, L, D, causal, ms: median(ms) });
      const g = (await toGpu(x))!;
      keep(rows, { impl: 'qkv-webgpu f32 (resident)', B, H, L, D, causal, ms: await timeResident(() => attentionWebGPU(g, g, g, { causal })) });
      if (SWEEP) { // other tiles of the f32 kernel: query rows × keys per tile (64 × 32 is the default)
        for (const [blockM, blockN] of [[32, 32], [128, 32], [64, 64], [32, 64], [128, 16]]) {
          try { flashTiles((await gpuDevice())!, D, { blockM, blockN }); } catch { continue; } // does not fit this device
          keep(rows, { impl: `qkv-webgpu f32 ${blockM}×${blockN} (resident)`, B, H, L, D, causal, ms: await timeResident(() => attentionWebGPU(g, g, g, { causal, blockM, blockN })) });
        }
      }
      g.release();
      const device = (await gpuDevice())!;
      if (hasF16(device)) { // f16 storage, f32 arithmetic; then on the matrix units where the device has them
        const h = (await toGpu(x.to('float16')))!;
        keep(rows, { impl: 'qkv-webgpu f16 (resident)', B, H, L, D, causal, ms: await timeResident(() => attentionWebGPU(h, h, h, { causal, kernel: 'flash' })) });
        const cfg = matrixConfig(device);
        if (cfg) keep(rows, { impl: 'qkv-webgpu f16 tensor cores (resident)', B, H, L, D, causal, ms: await timeResident(() => attentionWebGPU(h, h, h, { causal })) });
        if (cfg && SWEEP) { // other tiles of the tensor-core kernel: query rows (subgroups × SM) × keys per tile
          for (const blockM of [cfg.M, 2 * cfg.M, 4 * cfg.M]) {
            for (const blockN of [16, 32, 64].map((n) => Math.ceil(n / cfg.N) * cfg.N)) {
              try { tensorCorePlan(device, D, D, { blockM, blockN }); } catch { continue; } // does not fit this device
              keep(rows, { impl: `qkv-webgpu f16 tensor cores ${blockM}×${blockN} (resident)`, B, H, L, D, causal, ms: await timeResident(() => attentionWebGPU(h, h, h, { causal, blockM, blockN })) });
            }
          }
        }
        h.release();
      }
    }
  }
  const extra = await kernelRows();
  const py = spawnSync('python3', ['-c', PYTORCH], { encoding: 'utf8', timeout: 300_000 });
  let torchInfo = 'PyTorch: not available here';
  if (py.status === 0) {
    const j = JSON.parse(py.stdout.trim().split('\n').pop()!) as { torch: string; gpu: string; rows: typeof rows };
    rows.push(...j.rows);
    torchInfo = `PyTorch ${j.torch} on ${j.gpu}`;
  }
  if (process.argv.includes('--json')) { console.log(JSON.stringify({ date: new Date().toISOString(), torchInfo, rows, kernels: extra }, null, 2)); return; }
  console.log(`GPU attention — ${torchInfo}; TFLOP/s = 4·B·H·L·S·D / time (halved for causal), median of 5\n`);
  console.log(`shape (B, H, L, D) | causal | ${'implementation'.padEnd(46)} |    ms | TFLOP/s | qkv / this`);
  console.log(`-------------------|--------|-${'-'.repeat(46)}-|-------|---------|-----------`);
  for (const r of rows) {
    const tf = flops(r.B, r.H, r.L, r.D, r.causal) / r.ms / 1e9;
    // PyTorch's f32 and f16 rows beside qkv's resident row of the same precision
    // (f16: the tensor-core row where there is one)
    const precision = r.impl.includes('f16') ? 'f16' : 'f32';
    const same = (x: (typeof rows)[number]) => x.B === r.B && x.L === r.L && x.causal === r.causal;
    const q = r.impl.startsWith('qkv') ? r : rows.find((x) => x.impl === `qkv-webgpu ${precision} tensor cores (resident)` && same(x)) ?? rows.find((x) => x.impl === `qkv-webgpu ${precision} (resident)` && same(x));
    const ratio = !q || r === q ? '' : `${(flops(r.B, r.H, r.L, r.D, r.causal) / q.ms / 1e9 / tf).toFixed(3)}×`;
    console.log(`${`${r.B}, ${r.H}, ${r.L}, ${r.D}`.padEnd(18)} | ${String(r.causal).padEnd(6)} | ${r.impl.padEnd(46)} | ${r.ms.toFixed(1).padStart(5)} | ${tf.toFixed(2).padStart(7)} | ${ratio.padStart(9)}`);
  }
  console.log('\nqkv-webgpu kernels\n');
  for (const e of extra) console.log(`${e.what.padEnd(62)} | ${e.ms.toFixed(2).padStart(8)} ms | ${e.rate}`);
}

await main();
process.exit(0);
