// Chat templates rendered with @huggingface/jinja: real template shapes (ChatML as Qwen ships it, Llama 3's headers),
// the default template for checkpoints without one (qkv-tiny), `qkv generate --chat`, and clear errors for bad
// messages and templates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyChatTemplate, chatTemplateOf, checkMessages, DEFAULT_CHAT_TEMPLATE } from '../../../src/generate/chat.js';
import { loadCheckpoint } from '../../../src/node/checkpoint.js';
import { ROOT_DIR } from '../../helpers.js';

const CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const LLAMA3 = "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + m['content'] | trim + '<|eot_id|>' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

test('ChatML and Llama 3 templates render as transformers renders them', () => {
  const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi!' }];
  assert.equal(applyChatTemplate(CHATML, messages), '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n');
  assert.equal(applyChatTemplate(LLAMA3, messages, { bosToken: '<|begin_of_text|>', addGenerationPrompt: false }),
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>');
  assert.equal(chatTemplateOf({ chat_template: CHATML }), CHATML);
  assert.equal(chatTemplateOf({ chat_template: [{ name: 'tool_use', template: 'x' }, { name: 'default', template: 'y' }] }), 'y');
  assert.equal(chatTemplateOf({}), null);
});

test('qkv-tiny has no template: the default one, and a reply from `qkv generate --chat`', () => {
  const { tokenizer } = loadCheckpoint(join(ROOT_DIR, 'models', 'qkv-tiny'));
  assert.equal(tokenizer!.chatTemplate, null);
  const { text, ids } = tokenizer!.chat([{ role: 'user', content: 'Tell me a fortune.' }]);
  assert.equal(text, 'user: Tell me a fortune.\nassistant:');
  assert.deepEqual(ids, tokenizer!.encode(text, { addSpecialTokens: false }));
  assert.equal(applyChatTemplate(DEFAULT_CHAT_TEMPLATE, [{ role: 'user', content: 'a' }], { addGenerationPrompt: false }), 'user: a\n');
  const cli = join(ROOT_DIR, 'dist', 'src', 'node', 'cli', 'main.js');
  const out = execFileSync(process.execPath, [cli, 'generate', '--chat', '--system', 'You answer in fortunes.', '--greedy', '--max-tokens', '8', 'Hello'],
    { encoding: 'utf8' });
  assert.ok(out.length > 0 && !out.includes('assistant:'), `the reply alone: ${JSON.stringify(out)}`);
});

test('bad messages and templates are clear errors, never a crash', () => {
  assert.throws(() => checkMessages([]), /messages must be a non-empty array/);
  assert.throws(() => checkMessages([{ role: '', content: 'x' }]), /messages\[0\]\.role must be a non-empty string/);
  assert.throws(() => checkMessages([{ role: 'user', content: 5 }]), /messages\[0\]\.content must be a string or an array of text parts, got 5/);
  assert.throws(() => checkMessages([{ role: 'user', content: [{ type: 'image_url' }] }]), /messages\[0\]\.content\[0\] must be a text part/);
  assert.deepEqual(checkMessages([{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }]), [{ role: 'user', content: 'ab' }]);
  assert.throws(() => checkMessages(JSON.parse('[{"__proto__": {"role": "user"}, "content": "x"}]')), /role must be a non-empty string/);
  assert.throws(() => applyChatTemplate('{% for m in messages %}', [{ role: 'user', content: 'x' }]), /chat template: it does not parse/);
  assert.throws(() => applyChatTemplate('{{ messages[0].content.upper( }}', [{ role: 'user', content: 'x' }]), /chat template: it does not/);
  assert.throws(() => applyChatTemplate("{{ raise_exception('no system role') }}", [{ role: 'user', content: 'x' }]), /chat template: it does not render/);
});

test('a template\'s range() is Python\'s, but gives at most 100,000 items over a rendering (jinja2\'s sandbox limit)', () => {
  const m = [{ role: 'user', content: 'x' }];
  const render = (t: string) => applyChatTemplate(t, m);
  assert.equal(render('{% for i in range(3) %}{{ i }}{% endfor %}'), '012');
  assert.equal(render('{% for i in range(1, 10, 3) %}{{ i }}{% endfor %}'), '147');
  assert.equal(render('{% for i in range(10, 0, -4) %}{{ i }},{% endfor %}'), '10,6,2,');
  assert.equal(render('{% for i in range(5, 2) %}{{ i }}{% endfor %}|'), '|');
  assert.equal(render('{% set r = range %}{{ r(4)|length }}'), '4');
  // the name only: an attribute or a keyword called range is the template's own
  assert.equal(render('{% set ns = namespace(range=4) %}{{ ns.range }}'), '4');
  assert.equal(render('{% for i in range(100000) %}{% endfor %}ok'), 'ok');
  // a minute of the server's only thread before; refused before the loop runs now — nested loops too
  assert.throws(() => render('{% for i in range(10000000) %}x{% endfor %}'), /range\(\) may give at most 100000 items over a rendering .* is 10000000 items/);
  assert.throws(() => render('{% for i in range(2) %}{% for j in range(60000) %}{% endfor %}{% endfor %}'), /at most 100000 items/);
  assert.throws(() => render("{{ range('a') }}"), /range\(\) takes 1 to 3 integers, got "a"/);
  assert.throws(() => render('{{ range(1, 5, 0) }}'), /range\(\) step must not be zero/);
});

test('loops and macros take at most 100,000 steps over a rendering: nested loops and doubling recursion are refused', () => {
  const many = Array.from({ length: 2000 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `m${i}` }));
  const refused = /the template took more than 100000 loop iterations and macro calls for these messages/;
  // three loops over a request's 2,000 messages (8·10⁹ steps), a macro calling itself twice per level (2^40): each held
  // the thread for good before
  const nested = '{% for a in messages %}{% for b in messages %}{% for c in messages %}x{% endfor %}{% endfor %}{% endfor %}';
  assert.throws(() => applyChatTemplate(nested, many), refused);
  const doubling = '{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}';
  assert.throws(() => applyChatTemplate(doubling, many), refused);
  // a step per message, a macro per message, loop variables and break: as before
  const perMessage = '{% macro r(m) %}<{{ m.role }}>{{ m.content }}{% endmacro %}{% for m in messages %}{{ r(m) }}{% endfor %}';
  assert.ok(applyChatTemplate(perMessage, many).startsWith('<user>m0<assistant>m1'));
  const loop = '{% for m in messages %}{% if loop.index > 2 %}{% break %}{% endif %}{{ loop.index0 }}{{ m.content }},{% endfor %}';
  assert.equal(applyChatTemplate(loop, many), '0m0,1m1,');
  assert.equal(applyChatTemplate(CHATML, many.slice(0, 1)), '<|im_start|>user\nm0<|im_end|>\n<|im_start|>assistant\n');
});

test('`qkv generate --chat` renders a checkpoint\'s template in a worker: one that outgrows its heap is an error, not a crash', () => {
  // a list doubled in a loop of 30 steps: 1.45 GB in the caller's heap before the engine refused it
  const dir = mkdtempSync(join(tmpdir(), 'qkv-chat-'));
  try {
    const tiny = join(ROOT_DIR, 'models', 'qkv-tiny');
    for (const f of readdirSync(tiny)) if (f !== 'tokenizer_config.json') symlinkSync(join(tiny, f), join(dir, f));
    const boom = '{% set ns = namespace(s=[1]) %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}';
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: boom }));
    const cli = join(ROOT_DIR, 'dist', 'src', 'node', 'cli', 'main.js');
    const r = spawnSync(process.execPath, [cli, 'generate', '--model', dir, '--chat', '--max-tokens', '2', 'Hello'], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /the tokenizer or chat template needed more than \d+ MiB for this text/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
