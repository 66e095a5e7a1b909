// Registers the CPU kernels: reference (materialising), flash (tiled), decode (split-K), and flash-wasm (SIMD).
import { registerSdpaKernel } from '../registry.js';
import { sdpaDecode } from './sdpa-decode.js';
import { sdpaFlash } from './sdpa-flash.js';
import { sdpaNaive } from './sdpa-naive.js';
import { sdpaFlashWasm } from '../wasm/sdpa-flash-wasm.js';

registerSdpaKernel(sdpaNaive);
registerSdpaKernel(sdpaFlash);
registerSdpaKernel(sdpaDecode);
registerSdpaKernel(sdpaFlashWasm);
