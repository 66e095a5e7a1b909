// Registers the CPU kernels: reference (materialising), flash (tiled), decode (split-K), paged (block tables), and
// flash-wasm and paged-wasm (SIMD); the matrix products of linear layers (matmul, matmul-wasm); RMSNorm and residual
// adds over a layer's arena (rows-wasm); and the WebAssembly kernels' memory as the storage KV caches allocate from and
// checkpoint loaders read weight matrices into.
import { registerKernelStorage, registerMatmulKernel, registerPagedKernel, registerRowKernels, registerSdpaKernel } from '../registry.js';
import { matmulTs } from './matmul.js';
import { matmulWasm } from '../wasm/matmul-wasm.js';
import { rowsWasm } from '../wasm/rows-wasm.js';
import { sdpaDecode } from './sdpa-decode.js';
import { sdpaFlash } from './sdpa-flash.js';
import { sdpaNaive } from './sdpa-naive.js';
import { sdpaPaged } from './sdpa-paged.js';
import { sdpaFlashWasm } from '../wasm/sdpa-flash-wasm.js';
import { sdpaPagedWasm } from '../wasm/sdpa-paged-wasm.js';
import {
  holdsMatrix, kernelArenas, kernelFloats, kernelHalves, kernelMatrix, releaseFloats, releaseMatrix, scaleF16,
} from '../wasm/storage.js';

registerSdpaKernel(sdpaNaive);
registerSdpaKernel(sdpaFlash);
registerSdpaKernel(sdpaDecode);
registerSdpaKernel(sdpaFlashWasm);
registerPagedKernel(sdpaPaged);
registerPagedKernel(sdpaPagedWasm);
registerKernelStorage({
  floats: kernelFloats, halves: kernelHalves, release: releaseFloats, arenas: kernelArenas, matrix: kernelMatrix, releaseMatrix,
  holdsMatrix, scaleF16,
});
registerMatmulKernel(matmulTs);
registerMatmulKernel(matmulWasm);
registerRowKernels(rowsWasm);
