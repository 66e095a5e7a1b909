// qkv serve as an attacker and a careless client meet it: odd request targets, prototype keys, foreign Host and
// Origin headers, form posts, deeply nested JSON, a first token that is EOS, an unknown model, bodies over the limit
// (declared and chunked) and 2,000 slowloris connections. The server runs in its own process, as `qkv serve` does,
// and must answer each with an HTTP status and stay alive.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT_DIR } from '../../helpers.js';

const CLI = join(ROOT_DIR, 'dist', 'src', 'node', 'cli', 'main.js');

/** Starts `qkv serve` on a free port with the common limit of 1,024 file descriptors; resolves with its process and port. */
function serve(args: string[] = []): Promise<{ proc: ChildProcess; port: number }> {
  const argv = [process.execPath, CLI, 'serve', '--port', '0', '--threads', '1', ...args].map((a) => `'${a}'`).join(' ');
  const proc = spawn('sh', ['-c', `ulimit -n 1024 && exec ${argv}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /lab\s+http:\/\/[^:]+:(\d+)\//.exec(out);
      if (m) resolve({ proc, port: Number(m[1]) });
    });
    proc.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
    proc.once('exit', (code) => reject(new Error(`qkv serve exited with ${code}: ${out}`)));
  });
}

/** Sends raw bytes and collects everything until the server closes or `ms` pass: status line and body. */
function raw(port: number, text: string, ms = 3000): Promise<{ status: number; head: string; body: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    let closed = false;
    const done = () => {
      const [head, ...rest] = got.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0), head, body: rest.join('\r\n\r\n'), closed });
    };
    const timer = setTimeout(() => { s.destroy(); done(); }, ms);
    s.on('data', (c: Buffer) => { got += c.toString(); });
    s.on('error', () => {});
    s.on('close', () => { closed = true; clearTimeout(timer); done(); });
    s.write(text);
  });
}

const get = (path: string, host = '127.0.0.1') => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
const postText = (path: string, body: string, headers: Record<string, string> = {}) => {
  const h = { host: '127.0.0.1', 'content-type': 'application/json', connection: 'close', 'content-length': String(Buffer.byteLength(body)), ...headers };
  return `POST ${path} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${body}`;
};

let server: { proc: ChildProcess; port: number };
before(async () => { server = await serve(['--cors', 'http://allowed.example']); });
after(() => { server.proc.kill(); });

async function alive(): Promise<void> {
  const r = await raw(server.port, get('/v1/models'));
  assert.equal(r.status, 200, 'the server still answers');
  assert.equal(server.proc.exitCode, null, 'the process is alive');
}

describe('qkv serve answers every request with a status and stays alive', () => {
  test('request targets that are not paths: //, ///, //:99999, /\\, *', async () => {
    for (const target of ['//', '///', '//:99999', '/\\', '/\\evil.example', '*', 'http://x/']) {
      const r = await raw(server.port, get(target));
      assert.ok(r.status >= 400 && r.status < 500, `${target}: HTTP ${r.status}`);
      await alive();
    }
  });

  test('experiment ids are own keys only: prototype names are unknown ids', async () => {
    for (const id of ['constructor', '__proto__', 'hasOwnProperty', 'toString', 'valueOf']) {
      const r = await raw(server.port, postText('/api/experiment', JSON.stringify({ id, prompt: 'x' })));
      assert.equal(r.status, 400, id);
      assert.ok(r.body.length < 2000, `${id}: ${r.body.length} bytes`);
      assert.match(r.body, /'id' must be one of/);
    }
    await alive();
  });

  test('a Host that does not name this server is refused (DNS rebinding); its own names pass', async () => {
    for (const host of ['evil.example', 'evil.example:8080', 'localhost.evil.example', '']) {
      const r = await raw(server.port, get('/v1/models', host));
      assert.ok(r.status === 421 || r.status === 400, `Host '${host}': HTTP ${r.status}`);
    }
    for (const host of ['localhost', `localhost:${server.port}`, '127.0.0.1', '[::1]:8080', 'lab.localhost']) {
      assert.equal((await raw(server.port, get('/v1/models', host))).status, 200, host);
    }
    await alive();
  });

  test('cross-site requests: text/plain posts, foreign origins; CORS only for --cors origins', async () => {
    const body = JSON.stringify({ prompt: 'x', max_tokens: 1 });
    assert.equal((await raw(server.port, postText('/v1/completions', body, { 'content-type': 'text/plain' }))).status, 415);
    assert.equal((await raw(server.port, postText('/v1/completions', body, { 'content-type': 'application/x-www-form-urlencoded' }))).status, 415);
    const foreign = await raw(server.port, postText('/v1/completions', body, { origin: 'http://evil.example' }));
    assert.equal(foreign.status, 403);
    assert.doesNotMatch(foreign.head, /access-control-allow-origin/i);
    // same origin (the lab) and the allowed origin pass; only the latter gets CORS headers
    assert.equal((await raw(server.port, postText('/v1/completions', body, { origin: `http://127.0.0.1:${server.port}`, host: `127.0.0.1:${server.port}` }))).status, 200);
    const allowed = await raw(server.port, postText('/v1/completions', body, { origin: 'http://allowed.example' }));
    assert.equal(allowed.status, 200);
    assert.match(allowed.head, /access-control-allow-origin: http:\/\/allowed\.example/i);
    const preflight = await raw(server.port, 'OPTIONS /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://allowed.example\r\nConnection: close\r\n\r\n');
    assert.equal(preflight.status, 204);
    assert.match(preflight.head, /access-control-allow-headers: content-type/i);
    await alive();
  });

  test('deeply nested JSON in any field is described, not recursed into', async () => {
    const deep = `${'['.repeat(20000)}1${']'.repeat(20000)}`;
    for (const field of ['max_tokens', 'temperature', 'seed', 'stop', 'prompt', 'stream', 'model']) {
      const r = await raw(server.port, postText('/v1/completions', `{"prompt": "x", "${field}": ${deep}}`));
      assert.equal(r.status, 400, `${field}: HTTP ${r.status} ${r.body.slice(0, 200)}`);
      assert.match(r.body, /an array|must be/);
    }
    await alive();
  });

  test('an unknown model is 404 model_not_found in OpenAI\'s shape', async () => {
    const r = await raw(server.port, postText('/v1/completions', JSON.stringify({ model: 'gpt-4o', prompt: 'x', max_tokens: 1 })));
    assert.equal(r.status, 404);
    const e = (JSON.parse(r.body) as { error: { code: string; param: string; type: string } }).error;
    assert.deepEqual([e.code, e.param, e.type], ['model_not_found', 'model', 'invalid_request_error']);
    assert.equal((await raw(server.port, postText('/v1/completions', JSON.stringify({ model: 'qkv-tiny', prompt: 'x', max_tokens: 1 })))).status, 200);
  });

  test('a completion whose first token is EOS is an empty answer, streamed or not', async () => {
    let empty = 0;
    for (let seed = 0; seed < 24 && empty < 2; seed++) {
      const req = { prompt: 'A fool and his money are soon parted.\n', max_tokens: 8, temperature: 1, seed };
      const plain = await raw(server.port, postText('/v1/completions', JSON.stringify(req)), 20000);
      assert.equal(plain.status, 200, plain.body);
      const choice = (JSON.parse(plain.body) as { choices: { text: string; finish_reason: string }[] }).choices[0];
      if (choice.text !== '' || choice.finish_reason !== 'stop') continue;
      empty++;
      const stream = await raw(server.port, postText('/v1/completions', JSON.stringify({ ...req, stream: true })), 20000);
      assert.equal(stream.status, 200);
      const events = [...stream.body.matchAll(/^data: (.*)$/gm)].map((m) => m[1]); // the body is chunked: read the events
      assert.equal(events.at(-1), '[DONE]', stream.body);
      assert.equal((JSON.parse(events.at(-2)!) as { choices: { finish_reason: string }[] }).choices[0].finish_reason, 'stop');
    }
    assert.ok(empty >= 1, 'no seed gave EOS first: the case was not exercised');
    await alive();
  });

  test('bodies over the limit get their 413 and the connection closes: declared (1 GB) and chunked', async () => {
    const declared = await raw(server.port, `POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{"prompt": "`);
    assert.equal(declared.status, 413);
    assert.ok(declared.closed, 'closed after the 413');
    const chunk = `10000\r\n${'x'.repeat(0x10000)}\r\n`;
    const chunked = await raw(server.port, `POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.repeat(3)}`);
    assert.equal(chunked.status, 413, chunked.head);
    assert.match(chunked.body, /limit is 65536 bytes/);
    assert.ok(chunked.closed, 'closed after the 413');
    await alive();
  });

  test('2,000 slowloris connections: a normal client still gets answers', async () => {
    const sockets: Socket[] = [];
    for (let i = 0; i < 2000; i++) {
      const s = connect(server.port, '127.0.0.1');
      s.on('error', () => {});
      s.write('GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: '); // never finished
      sockets.push(s);
      if (i % 200 === 199) await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 300));
    try {
      for (let n = 0; n < 3; n++) {
        const t0 = Date.now();
        const r = await raw(server.port, get('/v1/models'), 5000);
        assert.equal(r.status, 200, `normal client ${n} during the flood`);
        assert.ok(Date.now() - t0 < 5000);
      }
    } finally {
      for (const s of sockets) s.destroy();
    }
    await alive();
  });
});

// A checkpoint's tokenizer and chat template run in a worker thread with a capped heap and a deadline
// (node/text-sandbox.ts): loops are bounded in the template engine (generate/chat.ts) and the known catastrophic
// regular expressions refused at load (generate/tokenizer-check.ts), but a list doubled in a loop of 30 steps grew to
// 1.5 GB in the server's own heap, and a split on `\s*\s*\s*\s*x` took 40 s on 200 spaces.
describe('qkv serve runs a checkpoint\'s tokenizer and chat template away from its own thread and heap', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qkv-template-'));
  const tiny = join(ROOT_DIR, 'models', 'qkv-tiny');
  let own: { proc: ChildProcess; port: number };
  before(async () => {
    for (const f of readdirSync(tiny)) if (!f.startsWith('tokenizer')) symlinkSync(join(tiny, f), join(dir, f));
    const boom = "{% set ns = namespace(s=[1]) %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}";
    const template = `{% if messages[0]['content'] == 'boom' %}${boom}{% else %}{% for m in messages %}{{ m['content'] }}{% endfor %}{% endif %}`;
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ tokenizer_class: 'PreTrainedTokenizerFast', chat_template: template }));
    const tok = JSON.parse(readFileSync(join(tiny, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
    const slow = { type: 'Split', pattern: { Regex: '\\s*\\s*\\s*\\s*x' }, behavior: 'Isolated', invert: false };
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ ...tok, pre_tokenizer: { type: 'Sequence', pretokenizers: [slow, tok.pre_tokenizer] } }));
    own = await serve(['--model', dir]);
  });
  after(() => { own.proc.kill(); rmSync(dir, { recursive: true, force: true }); });

  test('a template that outgrows its memory, a pattern that runs past the deadline: 400s; the server goes on', async () => {
    const post = (path: string, body: object) => raw(own.port, postText(path, JSON.stringify({ ...body, max_tokens: 2 })), 30_000);
    const chat = (content: string) => post('/v1/chat/completions', { messages: [{ role: 'user', content }] });
    for (let round = 0; round < 2; round++) {
      const bad = await chat('boom');
      assert.equal(bad.status, 400, bad.body);
      assert.match(bad.body, /the tokenizer or chat template needed more than \d+ MiB for this text/);
      assert.equal((await chat('hello')).status, 200);
    }
    // the slow prompt fails alone: the one queued behind it goes to the new worker
    const slowly = post('/v1/completions', { prompt: ' '.repeat(300) });
    await new Promise((r) => setTimeout(r, 500)); // the worker is on the slow one now
    const [slow, behind] = await Promise.all([slowly, post('/v1/completions', { prompt: 'hi' })]);
    assert.equal(slow.status, 400, slow.body);
    assert.match(slow.body, /the tokenizer took more than 5 s on this text/);
    assert.equal(behind.status, 200, behind.body);
    assert.equal((await post('/v1/completions', { prompt: 'hello' })).status, 200);
    assert.equal(own.proc.exitCode, null, 'the process is alive');
  });
});
