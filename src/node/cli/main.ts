#!/usr/bin/env node
// The `qkv` command: serve, generate, score, info, kv, tokenize, conformance, gpu, demo. Errors go to stderr with a non-zero exit.
import { version } from '../version.js';
import { QkvError } from '../../errors.js';
import { conformanceCommand } from './conformance.js';
import { runDemo } from './demo.js';
import { gpuCommand } from './gpu.js';
import { GENERATE_HELP, generateCommand } from './generate.js';
import { infoCommand } from './info.js';
import { KV_HELP, kvCommand } from './kv.js';
import { scoreCommand } from './score.js';
import { serveCommand } from './serve.js';
import { tokenizeCommand } from './tokenize.js';
import { useWasmFeatures } from '../wasm-features.js';

const HELP = `qkv — attention mechanisms for TypeScript, from the math to a running model

usage: qkv <command> [options]

commands:
  serve [--model DIR] [--port N]  the Attention Lab and an OpenAI-compatible API on 127.0.0.1
  generate [options] "prompt"  stream a continuation (default model: the embedded qkv-tiny)
  score [--model DIR] [--top N] "text"
                               each token's log-probability given those before it; the loss and perplexity
  info [DIR]                   architecture, parameters, dtype, context length, KV-cache bytes per token
  kv [--preset NAME | --model DIR] [--context N] [--batch B] [--dtype D]
                               KV-cache memory: MHA/GQA/MQA layouts and cache strategies
  tokenize [--model DIR] TEXT  the tokens and ids of TEXT
  conformance DIR [--kernel K] [--device cpu|webgpu] [--dtype f32|f16]
                               check qkv against a golden directory (K: reference | flash | flash-wasm | decode | auto)
  gpu                          the WebGPU adapter here and what qkv runs on it (f16, tensor cores, tiles)
  demo                         print a small attention example

options:
  -h, --help     show this help (qkv generate --help, qkv score --help for theirs)
  -v, --version  print the version

${GENERATE_HELP}

${KV_HELP}`;

const out = (s: string) => { process.stdout.write(s); };
// a closed pipe (`qkv … | head`) ends the command quietly
process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); throw e; });

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  useWasmFeatures(); // relaxed SIMD for the kernels where this V8 has it ($QKV_WASM_SIMD=simd128 to keep SIMD128)
  switch (cmd) {
    case undefined: case '-h': case '--help': case 'help': out(`${HELP}\n`); return 0;
    case '-v': case '--version': out(`${version()}\n`); return 0;
    case 'demo':
      if (rest.length > 0) throw new QkvError(`qkv demo takes no arguments, got '${rest[0]}'`);
      runDemo();
      return 0;
    case 'serve': return serveCommand(rest, out);
    case 'generate': return generateCommand(rest, out);
    case 'score': return scoreCommand(rest, out);
    case 'info': return infoCommand(rest, out);
    case 'kv': return kvCommand(rest, out);
    case 'tokenize': return tokenizeCommand(rest, out);
    case 'conformance': return conformanceCommand(rest, out);
    case 'gpu': return gpuCommand(rest, out);
    default: process.stderr.write(`qkv: unknown command '${cmd}'\n\n${HELP}\n`); return 2;
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: unknown) => {
  const err = e as Error & { code?: string };
  // bad flags from parseArgs and qkv's own errors are usage problems (2); anything else is a failure (1)
  process.stderr.write(`qkv: ${err.message}\n`);
  process.exitCode = e instanceof QkvError || err.code?.startsWith('ERR_PARSE_ARGS') ? 2 : 1;
});
