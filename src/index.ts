// qkv's public API, browser-safe (no Node-only imports). Node-only parts (files, CLI) live in 'qkv/node'.
export { QkvError, SafetensorsError } from './errors.js';
export { Tensor } from './tensor/tensor.js';
export type { DType } from './tensor/dtype.js';
export { f16ToF32, f32ToF16, bf16ToF32, f32ToBf16 } from './tensor/f16.js';
export { parseSafetensors, serializeSafetensors, type SafetensorsFile } from './tensor/safetensors.js';
export { attention, attentionBackward, type AttentionBackwardOptions } from './attention/index.js';
export type { AttentionOptions, AttentionResult, AttentionStats, KernelName } from './attention/options.js';
export * as masks from './attention/masks.js';
export { alibiSlopes, type ScoreMod } from './attention/score-mods.js';
export { sdpaKernelNames } from './kernels/registry.js';
