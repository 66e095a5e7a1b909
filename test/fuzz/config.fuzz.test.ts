// config.json from outside, fuzzed: each of the 17 golden checkpoints (every family qkv loads) gets 40 configs with one
// to three fields — top level or inside rope_parameters / rope_scaling / text_config — set to edge values (0, −1, 1.5,
// 1e6, 1e9, 2^31, 2^53, 3e38, 1e39, ±1e308, strings, null, booleans, lists, objects) or deleted, the weights as they are. Loading
// must succeed or throw a QkvError, never a TypeError, RangeError or an allocation the size of a wrong number; a
// causal LM that loads must then give finite logits for three tokens, or refuse with a QkvError (a NaN is a silent
// wrong answer).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QkvError } from '../../src/index.js';
import { setResidentLimit } from '../../src/kernels/wasm/runtime.js';
import type { CausalLM } from '../../src/models/model.js';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import { GOLDEN, ROOT_DIR, fuzzSeed, rng } from '../helpers.js';

const CONFIGS_PER_MODEL = 40;
const WORK = mkdtempSync(join(tmpdir(), 'qkv-config-fuzz-'));
after(() => rmSync(WORK, { recursive: true, force: true }));

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const EDGE: readonly Json[] = [0, -1, 1, 2, 3, 1.5, 65536, 1e6, 1e9, 2 ** 31, 2 ** 53, 3e38, 1e39, 1e308, -1e308, 1e-30, '', '8', 'silu',
  'gelu', null, true, false,
  [], [1, 2], {}, { rope_type: 'linear' }, { rope_type: 'yarn', factor: 0 }, { rope_type: 'llama3', factor: 8 }];

// the checkpoint directories of the golden sets (config.json beside model.safetensors)
function checkpoints(): string[] {
  return [GOLDEN, join(ROOT_DIR, 'test', 'golden-frontier')].flatMap((root) => {
    const models = join(root, 'models');
    return readdirSync(models).map((d) => join(models, d)).filter((d) => existsSync(join(d, 'config.json')));
  });
}

// one to three of the config's fields (or its nested rope/text fields) set to edge values or deleted
function mutate(config: Record<string, Json>, rand: () => number): { config: Record<string, Json>; what: string } {
  const c = JSON.parse(JSON.stringify(config)) as Record<string, Json>;
  const edits: string[] = [];
  for (let i = 1 + Math.floor(rand() * 3); i > 0; i--) {
    const nests = ['rope_parameters', 'rope_scaling', 'text_config'].filter((k) => c[k] && typeof c[k] === 'object' && !Array.isArray(c[k]));
    const into = nests.length && rand() < 0.3 ? c[nests[Math.floor(rand() * nests.length)]] as Record<string, Json> : c;
    const keys = Object.keys(into);
    const key = keys[Math.floor(rand() * keys.length)];
    if (rand() < 0.15) { delete into[key]; edits.push(`${key} deleted`); continue; }
    into[key] = structuredClone(EDGE[Math.floor(rand() * EDGE.length)]);
    edits.push(`${key} = ${JSON.stringify(into[key])}`);
  }
  return { config: c, what: edits.join(', ') };
}

// what loading and a forward of a mutated checkpoint did: a finding (null when it loaded and gave finite logits, or
// refused with a QkvError), and whether it loaded
function check(dir: string): { finding: string | null; loaded: boolean } {
  let model;
  try {
    model = loadCheckpoint(dir, { tokenizer: false }).model;
  } catch (e) {
    return { finding: e instanceof QkvError ? null : `load threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`, loaded: false };
  }
  if (model.kind !== 'causal-lm') return { finding: null, loaded: true };
  try {
    const logits = (model as CausalLM).forward([[1, 2, 3]]).logits.toFloat32();
    const bad = logits.findIndex((x) => !Number.isFinite(x));
    return { finding: bad < 0 ? null : `forward gave ${logits[bad]} at logit ${bad}`, loaded: true };
  } catch (e) {
    return { finding: e instanceof QkvError ? null : `forward threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`, loaded: true };
  }
}

let edits = 0;
// a golden checkpoint with its config edited (keys under `nest` when given), in a fresh directory
function edited(family: string, edit: Record<string, Json>, nest?: string): string {
  const src = checkpoints().find((d) => d.endsWith(`/${family}`))!;
  const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')) as Record<string, Json>;
  Object.assign(nest ? config[nest] as Record<string, Json> : config, edit);
  const dir = join(WORK, `${family}-${Object.keys(edit).join('-')}-${edits++}`);
  mkdirSync(dir);
  symlinkSync(join(src, 'model.safetensors'), join(dir, 'model.safetensors'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

test('what the fuzzer found: configs whose numbers made NaN logits are refused, naming the field', () => {
  const cases: [string, Record<string, Json>, string | undefined, RegExp][] = [
    ['deepseek_v3', { mscale: 1e308 }, 'rope_parameters', /'rope_parameters\.mscale' must be a number that float32 holds .* got 1e\+308/],
    ['deepseek_v3', { mscale: 1e30 }, 'rope_parameters', /attention factor comes to .* finite square .* mscale/],
    ['deepseek_v3', { routed_scaling_factor: 1e308 }, undefined, /'routed_scaling_factor' must be a number that float32 holds .* got 1e\+308/],
    ['phi3', { original_max_position_embeddings: 1 }, 'rope_parameters', /attention factor comes to Infinity .* original_max_position_embeddings/],
    ['gpt_oss', { rope_theta: 1 }, 'rope_parameters', /frequencies come out non-finite for rope_theta 1 \(YaRN divides by ln rope_theta: it must be > 1\)/],
  ];
  for (const [family, edit, nest, message] of cases) {
    const dir = edited(family, edit, nest);
    assert.throws(() => loadCheckpoint(dir, { tokenizer: false }), (e: unknown) => e instanceof QkvError && message.test(e.message),
      `${family} with ${JSON.stringify(edit)}`);
  }
});

test(`${CONFIGS_PER_MODEL} mutated configs per golden checkpoint: a QkvError or a working model, never a crash or a NaN`, () => {
  // weights in ordinary arrays: a dropped model's blocks in the kernels' memory go back only when the garbage collector
  // finds its views, which a process that loads 680 models and allocates little else may not run for all of them
  const limit = setResidentLimit(0);
  try { fuzz(); } finally { setResidentLimit(limit); }
});

function fuzz(): void {
  const rand = rng(fuzzSeed(1130));
  const findings: string[] = [];
  let loaded = 0, n = 0;
  for (const src of checkpoints()) {
    const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')) as Record<string, Json>;
    for (let i = 0; i < CONFIGS_PER_MODEL; i++) {
      const dir = join(WORK, `c${n++}`);
      mkdirSync(dir);
      symlinkSync(join(src, 'model.safetensors'), join(dir, 'model.safetensors'));
      const { config: c, what } = mutate(config, rand);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
      const r = check(dir);
      if (r.finding) findings.push(`${src.split('/').pop()} with ${what}: ${r.finding}`);
      if (r.loaded) loaded++;
      rmSync(dir, { recursive: true });
    }
  }
  assert.deepEqual(findings, [], `${findings.length} findings`);
  assert.ok(loaded > n / 5 && loaded < n, `some mutations load (a field the family does not read), most do not: ${loaded} of ${n}`);
}
