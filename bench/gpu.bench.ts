// `npm run bench:gpu`: attention on the GPU, qkv-webgpu (f32; Dawn in Node) side by side with PyTorch's
// scaled_dot_product_attention in the same run when `python3` with torch and CUDA is present. TFLOP/s =
// 4·B·H·L·S·D / time, halved for causal; medians of 5 after a warm-up. qkv's time includes uploading q, k, v and
// reading the output back (its results do not stay on the GPU between calls yet); PyTorch's is the kernel alone
// (CUDA events). The f16 and tensor-core paths of qkv do not exist yet. Options: --json
import { spawnSync } from 'node:child_process';
import { attentionWebGPU } from '../src/attention/webgpu.js';
import { Tensor } from '../src/index.js';
import { gpuDevice } from '../src/kernels/webgpu/device.js';
import { useDawn } from '../src/node/webgpu.js';

const SHAPES: [number, number, number, number][] = [[1, 32, 4096, 128], [8, 16, 2048, 64]];
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

async function main() {
  if (!(await useDawn()) || !(await gpuDevice())) { console.error('bench:gpu: no WebGPU adapter (run it on a GPU machine)'); process.exit(2); }
  const rows: { impl: string; B: number; H: number; L: number; D: number; causal: boolean; ms: number }[] = [];
  for (const [B, H, L, D] of SHAPES) {
    const x = Tensor.from(Float32Array.from({ length: B * H * L * D }, (_, i) => Math.sin(i) * 0.5), [B, H, L, D]);
    for (const causal of [false, true]) {
      await attentionWebGPU(x, x, x, { causal });
      const ms: number[] = [];
      for (let r = 0; r < 5; r++) { const t0 = performance.now(); await attentionWebGPU(x, x, x, { causal }); ms.push(performance.now() - t0); }
      rows.push({ impl: 'qkv-webgpu f32 (with transfers)', B, H, L, D, causal, ms: median(ms) });
    }
  }
  const py = spawnSync('python3', ['-c', PYTORCH], { encoding: 'utf8', timeout: 300_000 });
  let torchInfo = 'PyTorch: not available here';
  if (py.status === 0) {
    const j = JSON.parse(py.stdout.trim().split('\n').pop()!) as { torch: string; gpu: string; rows: typeof rows };
    rows.push(...j.rows);
    torchInfo = `PyTorch ${j.torch} on ${j.gpu}`;
  }
  if (process.argv.includes('--json')) { console.log(JSON.stringify({ date: new Date().toISOString(), torchInfo, rows }, null, 2)); return; }
  console.log(`GPU attention — ${torchInfo}; TFLOP/s = 4·B·H·L·S·D / time (halved for causal), median of 5\n`);
  console.log('shape (B, H, L, D) | causal | implementation                     |    ms | TFLOP/s | qkv / this');
  console.log('-------------------|--------|------------------------------------|-------|---------|-----------');
  for (const r of rows) {
    const tf = flops(r.B, r.H, r.L, r.D, r.causal) / r.ms / 1e9;
    const q = rows.find((x) => x.impl.startsWith('qkv') && x.B === r.B && x.L === r.L && x.causal === r.causal)!;
    const ratio = r === q ? '' : `${(flops(r.B, r.H, r.L, r.D, r.causal) / q.ms / 1e9 / tf).toFixed(3)}×`;
    console.log(`${`${r.B}, ${r.H}, ${r.L}, ${r.D}`.padEnd(18)} | ${String(r.causal).padEnd(6)} | ${r.impl.padEnd(34)} | ${r.ms.toFixed(1).padStart(5)} | ${tf.toFixed(2).padStart(7)} | ${ratio.padStart(9)}`);
  }
}

await main();
process.exit(0);
