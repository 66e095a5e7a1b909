// Crafted checkpoint directories, built here from qkv-tiny: each bad config field, special files where files should
// be, broken shards and NaN weights. loadCheckpoint throws a QkvError naming the field or file; `qkv info` and
// `qkv generate` exit 2 with that message and never hang.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QkvError, Tensor } from '../../../src/index.js';
import type { CausalLM } from '../../../src/models/model.js';
import { loadCheckpoint } from '../../../src/node/checkpoint.js';
import { readSafetensors, writeSafetensors } from '../../../src/node/files.js';
import { ROOT_DIR } from '../../helpers.js';
import { TINY } from '../../models/helpers.js';

const CLI = join(ROOT_DIR, 'dist', 'src', 'node', 'cli', 'main.js');
const WORK = mkdtempSync(join(tmpdir(), 'qkv-crafted-'));
after(() => rmSync(WORK, { recursive: true, force: true }));
const CONFIG = JSON.parse(readFileSync(join(TINY, 'config.json'), 'utf8')) as Record<string, unknown>;
let n = 0;

/** A checkpoint directory: qkv-tiny's files linked in, config.json with `edit` applied (a key set to undefined goes). */
function craft(edit: Record<string, unknown> = {}, files: Record<string, 'link' | 'skip'> = {}): string {
  const dir = join(WORK, `case-${n++}`);
  mkdirSync(dir);
  const config = { ...CONFIG, ...edit };
  for (const [k, v] of Object.entries(edit)) if (v === undefined) delete config[k];
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  for (const f of ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) if (files[f] !== 'skip') symlinkSync(join(TINY, f), join(dir, f));
  return dir;
}

/** Asserts a QkvError matching `pattern` from loading, and from qkv info (when `info`) and qkv generate: exit 2. */
function refuses(dir: string, pattern: RegExp, o: { info?: boolean } = {}): void {
  assert.throws(() => loadCheckpoint(dir), (e: unknown) => e instanceof QkvError && pattern.test(e.message), `loadCheckpoint: ${pattern}`);
  const runs = [spawnSync(process.execPath, [CLI, 'generate', '--threads', '1', '--model', dir, '--max-tokens', '2', 'hi'], { encoding: 'utf8', timeout: 30_000 })];
  if (o.info !== false) runs.push(spawnSync(process.execPath, [CLI, 'info', dir], { encoding: 'utf8', timeout: 30_000 }));
  for (const r of runs) {
    assert.equal(r.error, undefined, `${r.error?.message} (did it hang?)`);
    assert.equal(r.status, 2, `exit ${r.status}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
}

// qkv-tiny's weights as a Mistral (sliding-window) checkpoint
const MISTRAL = { architectures: ['MistralForCausalLM'], model_type: 'mistral' };

describe('config.json is validated field by field, naming the field, the value and what is allowed', () => {
  const rope = (p: Record<string, unknown>) => ({ rope_parameters: { rope_theta: 10000, ...p } });
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['no heads', { num_attention_heads: 0 }, /'num_attention_heads' must be an integer ≥ 1.*got 0/],
    ['negative layers', { num_hidden_layers: -1 }, /'num_hidden_layers' must be an integer ≥ 1.*got -1/],
    ['fractional layers', { num_hidden_layers: 1.5 }, /'num_hidden_layers' must be an integer.*got 1\.5/],
    ['a number as a string', { hidden_size: '256' }, /'hidden_size' must be an integer.*got "256"/],
    ['kv heads that do not divide the heads', { num_key_value_heads: 3 }, /'num_key_value_heads' \(3\) must divide 'num_attention_heads' \(8\)/],
    ['an odd head_dim under RoPE', { head_dim: 31 }, /RoPE rotates pairs .* must be even/],
    ['rope_theta 0', rope({ rope_theta: 0 }), /'rope_parameters\.rope_theta' must be a number > 0, got 0/],
    ['rope_theta negative (transformers 4 key)', { rope_parameters: undefined, rope_theta: -5 }, /'rope_theta' must be a number > 0, got -5/],
    ['rope_theta a string', { rope_parameters: undefined, rope_theta: '1e4' }, /'rope_theta' must be a number > 0, got "1e4"/],
    ['linear factor 0', rope({ rope_type: 'linear', factor: 0 }), /'rope_parameters\.factor' must be a number > 0, got 0/],
    ['linear factor negative', rope({ rope_type: 'linear', factor: -2 }), /factor' must be a number > 0, got -2/],
    ['llama3 with equal frequency factors', rope({ rope_type: 'llama3', factor: 8, low_freq_factor: 2, high_freq_factor: 2 }), /low_freq_factor ≠ high_freq_factor/],
    ['dynamic NTK on 2 rotary dims', { ...rope({ rope_type: 'dynamic', factor: 2 }), head_dim: 2 }, /dynamic NTK RoPE needs more than 2 rotary dims/],
    ['yarn without a factor', rope({ rope_type: 'yarn' }), /rope_type 'yarn' needs 'rope_parameters\.factor'/],
    ['rope_scaling a string', { rope_parameters: undefined, rope_scaling: 'yarn' }, /'rope_scaling' must be an object, got "yarn"/],
    ['an unknown rope_type', rope({ rope_type: 'spiral' }), /rope_type' must be one of default, linear/],
    ['rms_norm_eps negative', { rms_norm_eps: -1e-5 }, /'rms_norm_eps' must be a number ≥ 0/],
    ['max_position_embeddings 1e308', { max_position_embeddings: 1e308 }, /'max_position_embeddings' must be an integer ≥ 1 and ≤ 67108864, got 1e\+308/],
    ['eos_token_id 1e12', { eos_token_id: 1e12 }, /'eos_token_id' must be an integer ≥ 0 and ≤ 2147483647, got 1000000000000/],
    ['eos_token_id a list with junk', { eos_token_id: ['a', null] }, /'eos_token_id'\[0\] must be an integer.*got "a"/],
    ['bos_token_id negative', { bos_token_id: -1 }, /'bos_token_id' must be an integer ≥ 0/],
    ['a Mistral sliding_window of -5', { ...MISTRAL, sliding_window: -5 }, /'sliding_window' must be an integer ≥ 1.*got -5/],
    ['a Mistral sliding_window of 1e300', { ...MISTRAL, sliding_window: 1e300 }, /'sliding_window' must be an integer ≥ 1 and ≤ 67108864, got 1e\+300/],
    ['a Mistral sliding_window of 2.5', { ...MISTRAL, sliding_window: 2.5 }, /'sliding_window' must be an integer.*got 2\.5/],
    ['a deeply nested value', { num_hidden_layers: JSON.parse(`${'['.repeat(100)}1${']'.repeat(100)}`) }, /'num_hidden_layers' must be an integer.*got an array of 1 items/],
  ];
  for (const [name, edit, pattern] of cases) test(name, () => refuses(craft(edit), pattern));

  test('tie_word_embeddings false without lm_head.weight', () => {
    refuses(craft({ tie_word_embeddings: false }), /missing tensor 'lm_head\.weight', which config\.json's tie_word_embeddings: false requires/, { info: false });
  });
});

describe('files: special files, directories, broken shards, NaN weights', () => {
  test('config.json or tokenizer.json a symlink to /dev/zero: refused, never read forever', () => {
    const a = craft();
    rmSync(join(a, 'config.json'));
    symlinkSync('/dev/zero', join(a, 'config.json'));
    refuses(a, /config\.json: not a regular file \(a device, FIFO or socket\)/);
    const b = craft({}, { 'tokenizer.json': 'skip' });
    symlinkSync('/dev/zero', join(b, 'tokenizer.json'));
    refuses(b, /tokenizer\.json: not a regular file/, { info: false });
  });

  test('config.json a directory, and no checkpoint directory at all', () => {
    const a = craft();
    rmSync(join(a, 'config.json'));
    mkdirSync(join(a, 'config.json'));
    refuses(a, /config\.json: not a regular file \(a directory\)/);
    refuses(join(WORK, 'nothing-here'), /no such checkpoint directory/);
  });

  /** qkv-tiny in two shards with an index; `edit` may change the map or the files. */
  function sharded(edit: (dir: string, map: Record<string, string>) => void = () => {}): string {
    const dir = craft({}, { 'model.safetensors': 'skip' });
    const tensors = readSafetensors(join(TINY, 'model.safetensors')).tensors;
    const names = [...tensors.keys()];
    const half = Math.floor(names.length / 2);
    const map: Record<string, string> = {};
    names.forEach((name, i) => { map[name] = i < half ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors'; });
    writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), new Map(names.slice(0, half).map((k) => [k, tensors.get(k)!])));
    writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), new Map(names.slice(half).map((k) => [k, tensors.get(k)!])));
    edit(dir, map);
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: map }));
    return dir;
  }

  test('a sharded checkpoint loads what weight_map names, from the shard it names', () => {
    const ckpt = loadCheckpoint(sharded()).model as CausalLM;
    const whole = loadCheckpoint(TINY).model as CausalLM;
    assert.deepEqual([...ckpt.forward([[5, 6, 7]]).logits.toFloat32()], [...whole.forward([[5, 6, 7]]).logits.toFloat32()]);
  });

  test('broken shards: missing, a directory, a NUL in a name, a tensor in two shards, a tensor in the wrong shard', () => {
    refuses(sharded((dir) => rmSync(join(dir, 'model-00002-of-00002.safetensors'))), /model-00002-of-00002\.safetensors: cannot open \(no such file\)/);
    refuses(sharded((dir) => { rmSync(join(dir, 'model-00002-of-00002.safetensors')); mkdirSync(join(dir, 'model-00002-of-00002.safetensors')); }), /not a regular file \(a directory\)/);
    refuses(sharded((_dir, map) => { map['model.norm.weight'] = 'model\u0000.safetensors'; }), /weight_map\["model\.norm\.weight"\] must be a file name in the checkpoint directory, got "model\\u0000\.safetensors"/);
    refuses(sharded((_dir, map) => { map['model.norm.weight'] = '../model.safetensors'; }), /must be a file name in the checkpoint directory/);
    refuses(sharded((dir) => {
      const first = readSafetensors(join(dir, 'model-00001-of-00002.safetensors')).tensors;
      first.set('model.norm.weight', Tensor.zeros([256]));
      writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), first);
    }), /tensor 'model\.norm\.weight' is in two shards, model-00001-of-00002\.safetensors and model-00002-of-00002\.safetensors/);
    refuses(sharded((_dir, map) => { map['model.norm.weight'] = 'model-00001-of-00002.safetensors'; }),
      /weight_map puts tensor 'model\.norm\.weight' in model-00001-of-00002\.safetensors, but it is in model-00002-of-00002\.safetensors/);
  });

  test('NaN weights: generation says the model produced NaN logits, and where the NaN is', () => {
    const dir = craft({}, { 'model.safetensors': 'skip' });
    const tensors = readSafetensors(join(TINY, 'model.safetensors')).tensors;
    const w = tensors.get('model.layers.2.mlp.up_proj.weight')!.to('float32');
    w.set(NaN, 3, 5);
    tensors.set('model.layers.2.mlp.up_proj.weight', w);
    writeSafetensors(join(dir, 'model.safetensors'), tensors);
    const r = spawnSync(process.execPath, [CLI, 'generate', '--threads', '1', '--model', dir, '--max-tokens', '3', 'hi'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /the model produced NaN logits for the prompt \(\d+ tokens\).*non-finite values in model\.layers\.2\.mlp\.up_proj\.weight/);
  });
});
