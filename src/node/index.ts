// 'qkv/node': the Node-only additions to the browser-safe core — files on disk and the conformance runner.
import { useWasmFeatures } from './wasm-features.js';

export * from '../index.js';
export { readSafetensors, writeSafetensors } from './files.js';
export { runConformance, formatResult, summary, compare, type CaseResult, type GoldenCase } from './conformance.js';
export { loadCheckpoint, inspectCheckpoint, streamSafetensors, type Checkpoint, type CheckpointSummary, type LoadProgress } from './checkpoint.js';
export { DEFAULT_MODEL_DIR } from './default-model.js';
export { useDawn } from './webgpu.js';
export { useThreads, stopThreads, kernelThreads, AttentionPool } from './threads.js';
export { useWasmFeatures } from './wasm-features.js';

// in Node, the kernels take relaxed SIMD (fused multiply-add) where this V8 has it behind a flag ($QKV_WASM_SIMD overrides)
useWasmFeatures();
