// Building a model from files already in memory — the browser path (fetch the files, then call this) and the
// one the Node loader uses after streaming tensors from disk.
import type { HfConfig } from './config.js';
import type { Model } from './model.js';
import { buildModel } from './registry.js';
import { Weights } from './weights.js';
import { parseSafetensors } from '../tensor/safetensors.js';
import type { Tensor } from '../tensor/tensor.js';

/**
 * A model from config.json (parsed) and the bytes of its safetensors file(s).
 * @example const model = modelFromBytes(await (await fetch('config.json')).json(), [new Uint8Array(await (await fetch('model.safetensors')).arrayBuffer())]);
 */
export function modelFromBytes(config: HfConfig, files: readonly Uint8Array[]): Model {
  const tensors = new Map<string, Tensor>();
  for (const bytes of files) for (const [name, t] of parseSafetensors(bytes).tensors) tensors.set(name, t);
  return buildModel(config, new Weights(tensors, 'model.safetensors'));
}
