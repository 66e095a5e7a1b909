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
export { gatedLinear, linear, Linear } from './nn/linear.js';
export { linearWebGPU } from './nn/webgpu.js';
export { F16Matrix } from './tensor/f16-matrix.js';
export { Int4Matrix, Int8Matrix, type LinearWeight } from './tensor/quantize.js';
export { kernelThreads, setKernelThreads, kernelVariant, setKernelVariant, type KernelVariant } from './kernels/wasm/runtime.js';
export { useBrowserThreads } from './kernels/wasm/threads.js';
export { gelu, silu, relu, eluPlusOne, erf, activation, add, mul } from './nn/activations.js';
export { layerNorm, rmsNorm, LayerNorm, RMSNorm } from './nn/norm.js';
export { additiveAttention, luongAttention, cosineAttention, l2Attention, type ScoreAttentionResult } from './nn/score-functions.js';
export { linearAttention, LinearAttentionState } from './nn/linear-attention.js';
export { performerAttention, drawOmega, type PerformerOptions } from './nn/performer.js';
export { GATConv, GATv2Conv, type GatOptions, type GatResult } from './nn/gat.js';
export { MultiheadAttention, type MhaConfig, type MhaForwardOptions, type MhaWeights } from './nn/mha.js';
export { TransformerEncoderLayer, TransformerDecoderLayer, MLP, SwiGLU, randomEncoderLayer } from './nn/transformer.js';
export { sinusoidalEncoding } from './nn/positional/sinusoidal.js';
export { embedding, LearnedPositionalEmbedding } from './nn/positional/learned.js';
export { applyRope, ropeInvFreq, type RopeConfig, type RopeFrequencies, type ApplyRopeOptions } from './nn/positional/rope.js';
export { alibiBias } from './nn/positional/alibi.js';
export { t5RelativeBucket, t5RelativeBias } from './nn/positional/t5-bucket.js';
export { Rng } from './nn/random.js';
export { buildModel, supportedArchitectures, registerArchitecture } from './models/registry.js';
export { modelFromBytes, modelFromStream } from './models/load.js';
export { Weights, WEIGHT_FORMATS, type WeightFormat } from './models/weights.js';
export type {
  Model, CausalLM, EncoderModel, Seq2SeqLM, ModelInfo, CausalForwardOptions, EncoderInputs, LayerQkv, Ablations,
} from './models/model.js';
export type { HfConfig } from './models/config.js';
export type { DenseView, KVCache, KVView, PagedView, StoreRequest } from './cache/kv-cache.js';
export { pagedAttention, type BlockPool, type PagedProblem } from './attention/paged.js';
export { createCache, CACHE_KINDS, ContiguousKVCache, PagedKVCache, Int8KVCache, SlidingWindowKVCache, SinkKVCache, type CacheKind, type CacheOptions } from './cache/index.js';
export { BlockAllocator, OutOfBlocksError } from './cache/block-allocator.js';
export { ContinuousBatcher, type BatchRequest, type BatchResult, type SchedulerOptions } from './generate/scheduler.js';
export { BatchEngine, EngineBusyError, type EngineOptions, type EngineSequence, type EngineStats } from './generate/engine.js';
export { Tokenizer } from './generate/tokenizer.js';
export { sampleNext, type SamplingOptions } from './generate/sampling.js';
export { scoreTokens, type ScoreOptions, type TokenScore } from './generate/score.js';
export { generate, generateStream, generateBatch, greedy, seq2seqGenerate, type GenerateOptions, type GenerateResult, type GeneratedToken } from './generate/generate.js';
export { kvCacheBytes, kvTable, KV_PRESETS, KV_DTYPE_BYTES, humanBytes, type KvShape, type KvRow } from './cache/memory.js';
export { attentionWebGPU, attentionBackwardWebGPU, pagedAttentionWebGPU, toGpu, toCpu, type GpuKernel } from './attention/webgpu.js';
export { GpuTensor } from './kernels/webgpu/gpu-tensor.js';
export { headMetrics, type HeadMetrics, type HeadPattern } from './inspect/metrics.js';
export {
  EXPERIMENTS, nextTokenLoss, patchHead, removeHead, type ExperimentMaps, type ExperimentResult, type MapPanel, type Metric, type Series,
} from './inspect/experiments.js';
