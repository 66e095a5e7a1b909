// Registers the WGSL kernels (contract.ts, registry.ts): split-K decode, FlashAttention on the tensor cores, tiled
// FlashAttention, paged decode and the backward pass. attention/dispatch.ts chooses among the attention ones.
import { registerGpuBackwardKernel, registerGpuPagedKernel, registerGpuSdpaKernel } from '../registry.js';
import { webgpuBackward } from './sdpa-backward.js';
import { webgpuDecode, webgpuPaged } from './sdpa-decode.js';
import { webgpuFlash, webgpuTensorCores } from './sdpa-flash.js';

registerGpuSdpaKernel(webgpuDecode);
registerGpuSdpaKernel(webgpuTensorCores);
registerGpuSdpaKernel(webgpuFlash);
registerGpuPagedKernel(webgpuPaged);
registerGpuBackwardKernel(webgpuBackward);
