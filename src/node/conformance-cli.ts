#!/usr/bin/env node
// `npm run conformance -- DIR [--kernel …] [--device cpu|webgpu] [--dtype f32|f16]`: the same as `qkv conformance`
// (cli/conformance.ts); exits 1 when any case fails, 2 on bad usage.
import { QkvError } from '../errors.js';
import { conformanceCommand } from './cli/conformance.js';
import { useWasmFeatures } from './wasm-features.js';

try {
  useWasmFeatures(); // as the qkv command: relaxed SIMD where this V8 has it ($QKV_WASM_SIMD=simd128 to keep SIMD128)
  const code = await conformanceCommand(process.argv.slice(2), (s) => { process.stdout.write(s); });
  process.exit(code);
} catch (e) {
  console.error((e as Error).message);
  process.exit(e instanceof QkvError ? 2 : 1);
}
