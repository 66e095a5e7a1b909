// Registers the WGSL kernels (contract.ts, registry.ts): split-K decode, FlashAttention on the tensor cores, tiled
// FlashAttention, paged decode and the backward pass (attention/dispatch.ts chooses among the attention ones), and the
// layer kernels a model's forward runs on the GPU (matmul.wgsl, ops.wgsl, transpose.wgsl, scatter.wgsl).
import { registerGpuBackwardKernel, registerGpuLayerKernels, registerGpuPagedKernel, registerGpuSdpaKernel } from '../registry.js';
import { matmulGpu } from './matmul.js';
import { addGpu, geluTanhMulGpu, rmsNormGpu, ropeGpu, rowsGpu, scatterGpu, siluMulGpu, softcapGpu, transpose01Gpu } from './ops.js';
import { webgpuBackward } from './sdpa-backward.js';
import { webgpuDecode, webgpuPaged } from './sdpa-decode.js';
import { webgpuFlash, webgpuTensorCores } from './sdpa-flash.js';

registerGpuSdpaKernel(webgpuDecode);
registerGpuSdpaKernel(webgpuTensorCores);
registerGpuSdpaKernel(webgpuFlash);
registerGpuPagedKernel(webgpuPaged);
registerGpuBackwardKernel(webgpuBackward);
registerGpuLayerKernels({
  name: 'webgpu', matmul: matmulGpu, rmsNorm: rmsNormGpu, rope: ropeGpu, add: addGpu, softcap: softcapGpu,
  gated: (act, gate, up) => (act === 'silu' ? siluMulGpu(gate, up) : geluTanhMulGpu(gate, up)),
  transpose01: transpose01Gpu, rows: rowsGpu, scatter: scatterGpu,
});
