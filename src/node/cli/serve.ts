// `qkv serve [--model DIR] [--port N] [--host H] [--threads N] [--weights F] [--max-batch N] [--kv-memory BYTES]
// [--kv-dtype f32|f16|int8] [--max-stall MS] [--api-key KEY] [--device cpu|webgpu]`: the Attention Lab and the API, generations batched;
// SIGTERM/SIGINT shut down gracefully.
import { parseArgs } from 'node:util';
import { QkvError } from '../../errors.js';
import { gpuDevice } from '../../kernels/webgpu/device.js';
import { loadCheckpoint } from '../checkpoint.js';
import { useDawn } from '../webgpu.js';
import { createQkvServer, listen } from '../server/server.js';
import { applyRuntimeOptions, DEFAULT_MODEL_DIR, numberArg, requireTokenizer, RUNTIME_HELP, RUNTIME_OPTIONS, whereText } from './shared.js';

export const SERVE_HELP = `usage: qkv serve [--model DIR] [--port 8080] [--host 127.0.0.1] [--threads N] [--weights FORMAT]
                 [--max-batch 16] [--kv-memory 256M] [--kv-dtype f32] [--max-stall 500] [--api-key KEY]
                 [--device cpu|webgpu] [--quiet] [--cors ORIGIN]... [--allowed-host NAME]...

  --host H                 address to listen on (default 127.0.0.1, this machine only)
  --cors ORIGIN            let pages from ORIGIN (e.g. http://localhost:5173, or *) call the API (repeatable)
  --allowed-host NAME      accept requests whose Host header is NAME, e.g. behind a proxy (repeatable); localhost,
                           IP addresses and --host are always accepted — other names are refused (DNS rebinding)
  --max-batch N            generations decoded together (default 16; 1: one at a time)
  --kv-memory BYTES        the KV cache all generations share, e.g. 512M or 2G (default 256M); requests wait for room
  --kv-dtype f32|f16|int8  the KV cache's storage on the CPU (default f32, exact); f16 holds 2× the tokens in the
                           same memory, int8 ~4× (a scale per token and head; greedy tokens agree ≥ 99% on qkv-tiny)
  --max-stall MS           while generations stream, a new prompt is prefilled in pieces of about MS each (default
                           500; at least 16 tokens): a stream's next token is held back that long at most, not for a
                           whole 256-token chunk (seconds for a large model on one core); 'none': whole chunks (a long
                           prompt's first token sooner, the streams pause meanwhile)
  --api-key KEY            require Authorization: Bearer KEY on /v1 and /api (also from $QKV_API_KEY)
  --device cpu|webgpu      where generations run (default cpu); webgpu keeps the weights and the KV pool on the GPU
                           (Llama-family models; the CPU is used, with a warning, when there is no adapter)
  --quiet                  no log line per request (they go to stdout as JSON otherwise)
${RUNTIME_HELP}`;

/** A byte count such as 536870912, 512M, 512MiB or 2G (K, M, G are powers of 1024). */
export function bytesArg(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(v.trim());
  const bytes = m ? Number(m[1]) * 1024 ** ' kmg'.indexOf(m[2].toLowerCase() || ' ') : NaN;
  if (!m || !(bytes >= 1)) throw new QkvError(`--${name} must be a byte count such as 536870912, 512M or 2G, got '${v}'`);
  return Math.floor(bytes);
}

// --device: the GPU device for `webgpu` (undefined: the CPU, also when no adapter is found — said on the way)
async function deviceArg(v: string | undefined, out: (s: string) => void): Promise<GPUDevice | undefined> {
  if (v === undefined || v === 'cpu') return undefined;
  if (v !== 'webgpu') throw new QkvError(`--device must be cpu or webgpu, got '${v}'`);
  if (!(await useDawn())) throw new QkvError("--device webgpu needs the optional 'webgpu' package (npm install webgpu)");
  const device = await gpuDevice();
  if (!device) out('qkv: no WebGPU adapter found; serving on the CPU\n');
  return device ?? undefined;
}

export async function serveCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values } = parseArgs({ args: argv, strict: true, options: {
    model: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    cors: { type: 'string', multiple: true }, 'allowed-host': { type: 'string', multiple: true }, ...RUNTIME_OPTIONS,
    'max-batch': { type: 'string' }, 'kv-memory': { type: 'string' }, 'api-key': { type: 'string' }, quiet: { type: 'boolean' },
    device: { type: 'string' }, 'kv-dtype': { type: 'string' }, 'max-stall': { type: 'string' },
  } });
  if (values.help) { out(`${SERVE_HELP}\n`); return 0; }
  const port = numberArg(values.port, 'port') ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new QkvError(`--port must be an integer in [0, 65535], got ${port}`);
  const kvArg = values['kv-dtype'] ?? 'f32';
  const kvDtype = kvArg === 'f32' ? 'float32' : kvArg === 'f16' ? 'float16' : kvArg === 'int8' ? 'int8' : null;
  if (kvDtype === null) throw new QkvError(`--kv-dtype must be f32, f16 or int8, got '${kvArg}'`);
  const gpu = await deviceArg(values.device, out);
  if (gpu && kvDtype !== 'float32') throw new QkvError(`--kv-dtype ${kvArg} is the CPU pool's storage: not with --device webgpu`);
  const maxBatch = numberArg(values['max-batch'], 'max-batch') ?? 16;
  if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 1024) throw new QkvError(`--max-batch must be an integer in [1, 1024], got ${maxBatch}`);
  const stall = values['max-stall'];
  // absent: the engine's default (DEFAULT_MAX_STALL_MS)
  const maxStallMs = stall === undefined ? undefined : stall === 'none' ? Infinity : Number(stall);
  if (maxStallMs !== undefined && !(maxStallMs >= 1)) {
    throw new QkvError(`--max-stall must be a number of milliseconds ≥ 1 or 'none', got '${stall}'`);
  }
  const apiKey = values['api-key'] ?? process.env.QKV_API_KEY;
  if (apiKey !== undefined && apiKey.length < 8) throw new QkvError('--api-key must be at least 8 characters');
  const kvMemoryBytes = bytesArg(values['kv-memory'], 'kv-memory');
  // every argument checked, and the tokenizer found, before a checkpoint of hundreds of megabytes is read
  const { threads, weights } = await applyRuntimeOptions(values);
  const dir = values.model ?? DEFAULT_MODEL_DIR;
  requireTokenizer(dir, 'serve');
  const ckpt = loadCheckpoint(dir, { weights });
  const server = createQkvServer(ckpt, {
    host: values.host, corsOrigins: values.cors, allowedHosts: values['allowed-host'], maxBatch, apiKey,
    kvMemoryBytes, log: values.quiet ? undefined : (line) => out(`${line}\n`), gpu,
    kvDtype, maxStallMs,
  });
  const url = await listen(server, { port, host: values.host });
  const size = ckpt.bytes >= 1e9 ? `${(ckpt.bytes / 1e9).toFixed(2)} GB` : `${(ckpt.bytes / 1e6).toFixed(1)} MB`;
  const loaded = `${size} loaded in ${(ckpt.loadMs / 1000).toFixed(1)} s`;
  const kind = kvDtype === 'float32' ? '' : ` (${kvArg})`;
  const kv = `KV cache ${server.engine.o.kvBlocks} blocks of ${server.engine.blockSize} tokens${kind}`;
  const how = `${whereText(gpu !== undefined, threads)}, weights ${weights}, ${loaded}, batch ≤ ${maxBatch}, ${kv}`;
  out(`qkv: serving ${ckpt.config.architectures?.[0]} from ${ckpt.dir} (${how})\n  lab  ${url}\n` +
    `  api  ${url}v1/completions  ${url}v1/models  ${url}api/attention\n(Ctrl-C to stop)\n`);
  // SIGTERM (an orchestrator) or Ctrl-C: /ready turns 503, running generations get 10 s to finish
  await new Promise<void>((resolve) => {
    const stop = () => { out('qkv: shutting down (running generations get 10 s)\n'); void server.shutdown(10_000).then(resolve); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
