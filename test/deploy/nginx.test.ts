// Many replicas on existing infrastructure: two `qkv serve` processes behind Debian's nginx with deploy/nginx/qkv.conf
// (the file users deploy, only its ports changed). 64 concurrent streaming clients through nginx all finish with
// [DONE]; requests that share a prompt prefix land on one replica (consistent hashing on the prompt), and the two
// replicas share the load. Skipped with the reason where nginx is not installed (.ci/run installs nginx-light).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT_DIR } from '../helpers.js';

const NGINX = process.env.QKV_NGINX ?? '/usr/sbin/nginx';
const skip = existsSync(NGINX) ? false : `no nginx at ${NGINX} (apt-get install nginx-light, or set QKV_NGINX)`;
const CLI = fileURLToPath(new URL('../../src/node/cli/main.js', import.meta.url));
const procs: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'qkv-nginx-'));
// nginx stops its workers on SIGTERM (a SIGKILL to the master would leave them running), qkv serve its generations
after(async () => {
  await Promise.all(procs.map((p) => new Promise((r) => { if (p.exitCode !== null) r(null); else { p.once('exit', r); p.kill('SIGTERM'); } })));
  rmSync(dir, { recursive: true, force: true });
});

function replica(): Promise<number> {
  const p = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--threads', '1', '--quiet'], { stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(p);
  return new Promise((resolve, reject) => {
    let out = '';
    p.stdout!.on('data', (c: Buffer) => { out += c; const m = /lab\s+http:\/\/[^:]+:(\d+)\//.exec(out); if (m) resolve(Number(m[1])); });
    p.once('exit', (code) => reject(new Error(`qkv serve exited with ${code}: ${out}`)));
  });
}

const freePort = () => new Promise<number>((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => { const a = s.address() as { port: number }; s.close(() => resolve(a.port)); });
});

async function nginx(ports: number[]): Promise<number> {
  const listen = await freePort();
  const site = readFileSync(join(ROOT_DIR, 'deploy', 'nginx', 'qkv.conf'), 'utf8')
    .replace(/^\s*server 127\.0\.0\.1:\d+ .*\n/gm, '')
    .replace('keepalive 64;', `${ports.map((p) => `server 127.0.0.1:${p} max_fails=3 fail_timeout=10s;`).join('\n    ')}\n    keepalive 64;`)
    .replace('listen 8080;', `listen 127.0.0.1:${listen};`);
  writeFileSync(join(dir, 'qkv.conf'), site);
  for (const d of ['body', 'proxy']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'nginx.conf'), `${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/proxy; uwsgi_temp_path ${dir}/proxy; scgi_temp_path ${dir}/proxy;
  include ${dir}/qkv.conf;
}
`);
  const p = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'inherit', 'inherit'] });
  procs.push(p);
  for (let i = 0; i < 100; i++) {
    if (await fetch(`http://127.0.0.1:${listen}/health`).then((r) => r.ok, () => false)) return listen;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nginx did not start: ${existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : ''}`);
}

async function stream(base: string, prompt: string): Promise<boolean> {
  const r = await fetch(`${base}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt, max_tokens: 12, temperature: 0, stream: true }),
  });
  const text = await r.text();
  return r.status === 200 && text.endsWith('data: [DONE]\n\n');
}

const served = async (port: number) => {
  const m = /^qkv_requests_total\{endpoint="\/v1\/completions",status="200"\} (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
  return Number(m?.[1] ?? 0);
};

test('two replicas behind nginx: 64 streaming clients complete, shared prefixes stay on one replica', { skip, timeout: 120_000 }, async () => {
  const ports = [await replica(), await replica()];
  const base = `http://127.0.0.1:${await nginx(ports)}`;
  const prompts = ['A fool and his money', 'The Zen of Python', 'def fib(n):', 'Once upon a time', 'Hello', 'import numpy', 'Dear Sir', 'Chapter 1'];
  for (const p of prompts) {
    const before = await Promise.all(ports.map(served));
    assert.deepEqual(await Promise.all(Array.from({ length: 4 }, () => stream(base, p))), [true, true, true, true]);
    const delta = (await Promise.all(ports.map(served))).map((n, i) => n - before[i]);
    assert.ok(delta.includes(4) && delta.includes(0), `'${p}': all four on one replica, got ${delta}`);
  }
  const before = await Promise.all(ports.map(served));
  const results = await Promise.all(Array.from({ length: 64 }, (_, i) => stream(base, `${prompts[i % 8]} ${i}`)));
  assert.equal(results.filter((ok) => !ok).length, 0, 'every stream ended with [DONE]');
  const delta = (await Promise.all(ports.map(served))).map((n, i) => n - before[i]);
  assert.equal(delta[0] + delta[1], 64);
  assert.ok(delta[0] > 0 && delta[1] > 0, `both replicas served: ${delta}`);
});
