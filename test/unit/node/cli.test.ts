// The qkv command: --version, --help, the demo, and errors on stderr with a non-zero exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scratchDir } from '../../helpers.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const CLI = `${ROOT}dist/src/node/cli/main.js`;
const qkv = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

test('qkv --version prints the package version', () => {
  const { version } = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string };
  const r = qkv('--version');
  assert.equal(r.status, 0);
  assert.equal(r.stdout.trim(), version);
});

test('qkv --help lists the commands', () => {
  const r = qkv('--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /usage: qkv <command>/);
  assert.match(r.stdout, /conformance DIR/);
});

test('qkv demo prints weights and checks flash against reference', () => {
  const r = qkv('demo');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /attention weights/);
  const diff = Number(/max \|Δout\| = (\S+)/.exec(r.stdout)![1]);
  assert.ok(diff < 1e-6, `flash vs reference differ by ${diff}`);
});

test('qkv gpu describes the WebGPU adapter and what runs on it, or says there is none', () => {
  const r = qkv('gpu');
  if (r.status === 1) { assert.match(r.stdout, /no WebGPU/); return; } // no adapter here: said so
  assert.equal(r.status, 0, r.stderr);
  for (const row of ['adapter', 'shader-f16', 'tensor cores', 'attention, f32', 'attention, f16, d=128']) assert.match(r.stdout, new RegExp(`^${row} `, 'm'));
  assert.match(r.stdout, /sdpa-flash\.wgsl, 64 × 32 tiles/);
});

test('qkv conformance takes --device and --dtype; f16 without WebGPU is a usage error', () => {
  const r = qkv('conformance', '/nonexistent', '--dtype', 'f16');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--dtype f16 runs the WebGPU f16 kernels; add --device webgpu/);
  assert.match(qkv('conformance', '/nonexistent').stderr, /directory '\/nonexistent' does not exist/);
  assert.match(qkv('--help').stdout, /conformance DIR \[--kernel K\] \[--device cpu\|webgpu\] \[--dtype f32\|f16\]/);
});

test('qkv serve --device is cpu or webgpu', () => {
  const r = qkv('serve', '--device', 'tpu', '--port', '0');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--device must be cpu or webgpu, got 'tpu'/);
  assert.match(qkv('serve', '--help').stdout, /--device cpu\|webgpu {6}where generations run/);
});

test('qkv serve --kv-dtype is f32, f16 or int8 (the CPU pool\'s storage)', () => {
  const r = qkv('serve', '--kv-dtype', 'int4', '--port', '0');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--kv-dtype must be f32, f16 or int8, got 'int4'/);
  assert.match(qkv('serve', '--help').stdout, /--kv-dtype f32\|f16\|int8 {2}the KV cache's storage on the CPU/);
});

test('an unknown command fails on stderr', () => {
  const r = qkv('frobnicate');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command 'frobnicate'/);
});

test('qkv kv: Llama-2-7B, f16, 4096 tokens, batch 32 needs 64 GiB (2 GiB per sequence)', () => {
  const r = qkv('kv', '--preset', 'llama-2-7b', '--context', '4096', '--batch', '32', '--dtype', 'f16');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /MHA \(32 kv heads\)\s+contiguous f16\s+68719476736\s+64\.0 GiB\s+2\.0 GiB/);
  assert.match(r.stdout, /MQA \(1 kv head\)/);
  assert.match(r.stdout, /int8 \+ scale per token·head/);
  const tiny = qkv('kv', '--model', `${ROOT}models/qkv-tiny`, '--context', '1024');
  assert.match(tiny.stdout, /GQA \(2 kv heads, as trained\)\s+contiguous f16\s+1048576\s+1\.0 MiB/);
  assert.equal(qkv('kv', '--preset', 'nope').status, 2);
});

test('qkv generate --cache works with every cache kind', () => {
  for (const cache of ['contiguous', 'paged', 'int8', 'sliding', 'sinks']) {
    const r = qkv('generate', '--greedy', '--max-tokens', '8', '--cache', cache, '--window', '32', 'A fool and his money');
    assert.equal(r.status, 0, `${cache}: ${r.stderr}`);
    assert.ok(r.stdout.startsWith('A fool and his money.'), `${cache}: ${r.stdout}`);
  }
  const bad = qkv('generate', '--cache', 'ring', 'x');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /cache must be one of contiguous, paged, int8, sliding, sinks; got 'ring'/);
});

test('qkv generate --kv-dtype f16: the contiguous cache in f16 on the CPU, the same greedy text; other caches keep their own', () => {
  const args = ['generate', '--greedy', '--max-tokens', '16', 'A fool and his money'];
  const [f32, f16] = [qkv(...args), qkv(...args.slice(0, 1), '--kv-dtype', 'f16', ...args.slice(1))];
  assert.equal(f16.status, 0, f16.stderr);
  assert.equal(f16.stdout, f32.stdout);
  const bad = qkv('generate', '--kv-dtype', 'f16', '--cache', 'int8', 'x');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--kv-dtype f16 is the contiguous cache's storage; --cache int8 keeps its own/);
});

test('qkv info and tokenize on the embedded model', () => {
  const info = qkv('info');
  assert.match(info.stdout, /architecture\s+LlamaForCausalLM/);
  assert.match(info.stdout, /parameters\s+4,065,536/);
  assert.match(info.stdout, /KV cache per token\s+2\.0 KiB in float32/);
  const tok = qkv('tokenize', 'Hello, world');
  assert.match(tok.stdout, /1829\s+"Ġworld"/);
  assert.match(tok.stdout, /4 tokens/);
});

test('qkv generate --max-tokens 0 prints the prompt and exits 0 (an empty continuation is an answer)', () => {
  const r = qkv('generate', '--max-tokens', '0', '--threads', '1', 'A fool');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'A fool');
});

test('qkv generate --stats reports the prefill and the decode on stderr, the text alone on stdout', () => {
  const r = qkv('generate', '--stats', '--greedy', '--max-tokens', '8', '--threads', '1', '--no-prompt', 'A fool and his money');
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stdout.length > 0 && !r.stdout.includes('tokens/s'), r.stdout);
  const m = /qkv: prefill (\d+) tokens in (\d+) ms \(([\d.]+) tokens\/s\) · decode (\d+) tokens in (\d+) ms \(([\d.]+) tokens\/s\) \(1 thread, WebAssembly (\S+)\)/
    .exec(r.stderr);
  assert.ok(m, r.stderr);
  assert.equal(Number(m[1]), 6, 'the prompt\'s tokens (qkv tokenize: A, Ġfo, ol, Ġand, Ġhis, Ġmoney)');
  assert.equal(Number(m[4]), 7, 'eight new tokens: seven decode steps after the prefill\'s');
  assert.ok(Number(m[3]) > 0 && Number(m[6]) > 0);
  // no new tokens: the prefill alone, the decode empty
  const z = qkv('generate', '--stats', '--max-tokens', '0', '--threads', '1', 'A fool');
  assert.equal(z.status, 0, z.stderr);
  assert.match(z.stderr, /prefill 3 tokens in \d+ ms \([\d.]+ tokens\/s\) · decode 0 tokens in \d+ ms \(–\)/);
});

test('usage errors name the flag: kv counts below 1, demo arguments, a port already taken', async () => {
  for (const [flag, v] of [['--batch', '0'], ['--context', '1.5'], ['--block-size', '0'], ['--window', '0']]) {
    const r = qkv('kv', flag, v);
    assert.equal(r.status, 2, `${flag} ${v}`);
    assert.match(r.stderr, new RegExp(`${flag} must be an integer ≥ 1, got '${v.replace('.', '\\.')}'`));
  }
  const demo = qkv('demo', '--x');
  assert.equal(demo.status, 2);
  assert.match(demo.stderr, /qkv demo takes no arguments, got '--x'/);
  const { createServer } = await import('node:net');
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = String((taken.address() as { port: number }).port);
  try {
    const r = spawnSync(process.execPath, [CLI, 'serve', '--port', port, '--threads', '1'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 2, r.error ? `${r.error.message} (did it start serving?)` : r.stderr);
    assert.match(r.stderr, new RegExp(`serve: 127\\.0\\.0\\.1 port ${port} is in use .*; choose another --port \\(EADDRINUSE\\)`));
  } finally {
    taken.close();
  }
});

test('generate and serve check their arguments and find the tokenizer before reading the weights', () => {
  // a checkpoint without tokenizer.json whose weights file is not a safetensors file: reading it would fail otherwise
  const dir = scratchDir('qkv-cli-');
  writeFileSync(join(dir, 'config.json'), readFileSync(`${ROOT}models/qkv-tiny/config.json`));
  writeFileSync(join(dir, 'model.safetensors'), 'not read');
  for (const cmd of ['generate', 'serve']) {
    const r = qkv(cmd, '--model', dir, ...(cmd === 'generate' ? ['hi'] : []));
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`qkv ${cmd}: ${dir} has no tokenizer\\.json`));
  }
  for (const [args, message] of [
    [['generate', '--cache', 'ring', 'hi'], /--cache must be one of contiguous, paged, int8, sliding, sinks; got 'ring'/],
    [['generate', '--system', 'be brief', 'hi'], /--system is a chat message: it needs --chat/],
    [['generate', '--max-tokens', 'x', 'hi'], /--max-tokens/],
    [['serve', '--max-batch', '0'], /--max-batch must be an integer in \[1, 1024\], got 0/],
    [['serve', '--max-stall', '0'], /--max-stall must be a number of milliseconds ≥ 1 or 'none', got '0'/],
    [['serve', '--max-stall', 'soon'], /--max-stall must be a number of milliseconds ≥ 1 or 'none', got 'soon'/],
  ] as const) {
    const r = qkv(...args, '--model', dir);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, message);
  }
});

test('qkv serve refuses a KV cache the kernels\' 4 GiB of WebAssembly memory cannot hold beside the weights, at start', () => {
  const r = qkv('serve', '--threads', '1', '--port', '0', '--kv-memory', '100G');
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /kvMemoryBytes \(--kv-memory\) is 100\.00 GiB; on the CPU the KV cache shares the kernels' 4 GiB of WebAssembly memory with the weights \(7\.8 MiB read\): at most 3\.99 GiB/);
});

test('qkv score: every token with its log-probability and probability, the expected ones, the loss and perplexity', async () => {
  const { scoreTokens } = await import('../../../src/generate/score.js');
  const { loadCheckpoint } = await import('../../../src/node/checkpoint.js');
  const text = 'A fool and his money are soon parted.';
  const r = qkv('score', '--threads', '1', '--top', '2', text);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  const { model, tokenizer } = loadCheckpoint(join(ROOT, 'models', 'qkv-tiny'));
  const want = await scoreTokens(model as never, tokenizer!.encode(text), { top: 2 });
  assert.equal(lines.length, want.length + 1, r.stdout);
  assert.match(lines[0], /^"A"\s+—$/, 'the first token: nothing predicts it');
  want.slice(1).forEach((s, t) => {
    const [, piece, logprob, pct] = /^(".*?")\s+(-?\d+\.\d{3})\s+(\d+\.\d+)%\s+expected /.exec(lines[t + 1]) ?? [];
    assert.equal(piece, JSON.stringify(tokenizer!.pieces(tokenizer!.encode(text))[t + 1]), lines[t + 1]);
    assert.ok(Math.abs(Number(logprob) - s.logprob!) <= 5e-4, `${lines[t + 1]}: ${s.logprob}`);
    assert.ok(Math.abs(Number(pct) - 100 * Math.exp(s.logprob!)) <= 0.05 + 1e-3 * 100 * Math.exp(s.logprob!), lines[t + 1]);
  });
  const loss = -want.slice(1).reduce((sum, s) => sum + s.logprob!, 0) / (want.length - 1);
  assert.equal(lines.at(-1), `${want.length - 1} tokens scored: loss ${loss.toFixed(4)} nats/token, perplexity ${Math.exp(loss).toFixed(2)}`);
  // a character split over byte-level tokens shows whole, once (not one U+FFFD a byte)
  const accents = qkv('score', '--threads', '1', 'naïve café');
  assert.equal(accents.status, 0, accents.stderr);
  assert.ok(!accents.stdout.includes('\uFFFD') && accents.stdout.includes('"ï"') && accents.stdout.includes('"é"'), accents.stdout);
  // arguments checked before the model is read
  assert.match(qkv('score').stderr, /qkv score: expected one text argument, got 0/);
  assert.match(qkv('score', '--top', '21', 'x').stderr, /--top must be an integer ≤ 20, got '21'/);
  assert.match(qkv('score', '--top=-1', 'x').stderr, /--top must be an integer ≥ 0, got '-1'/);
  assert.equal(qkv('score', '--top', '21', 'x').status, 2);
});
