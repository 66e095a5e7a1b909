// Static files of the lab, served by qkv itself (no CDN, no external request): the page (lab/), qkv's browser-safe
// modules (dist/src, everything but src/node), the tokenizer and Jinja libraries, and the loaded checkpoint's files.
// Paths are matched against fixed patterns — nothing outside these folders can be named.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url)); // dist/src/node/server → package root
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.safetensors': 'application/octet-stream',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon',
};
const MODEL_FILES = new Set(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']);

function tokenizersModule(): string {
  const cjs = createRequire(import.meta.url).resolve('@huggingface/tokenizers');
  return join(dirname(cjs), 'tokenizers.mjs');
}

// @huggingface/jinja's ES module (one file, no imports of its own), next to its CommonJS entry
function jinjaModule(): string {
  return join(dirname(createRequire(import.meta.url).resolve('@huggingface/jinja')), 'index.js');
}

// the browser has no node_modules: each bare specifier of qkv's modules points at the served copy
const VENDOR: [string, string][] = [
  ["'@huggingface/tokenizers'", "'/vendor/tokenizers.mjs'"], ["'@huggingface/jinja'", "'/vendor/jinja.mjs'"],
];

/**
 * A static file for `path`, or null. Module text has its bare imports rewritten to the served copies. `/source/src/….ts`
 * is qkv's own source as a page with numbered lines (the lab links its formulas to the code), the first line that
 * contains `find` marked.
 */
export function staticFile(path: string, modelDir: string, find?: string | null): { body: Buffer | string; type: string } | null {
  let file: string | null = null;
  let m: RegExpExecArray | null;
  if ((m = /^\/source\/(src\/(?:[a-z0-9-]+\/)*[a-z0-9-]+\.(?:ts|wgsl))$/.exec(path))) return sourcePage(m[1], find ?? '');
  if (path === '/' || path === '/index.html') file = join(ROOT, 'lab', 'index.html');
  else if ((m = /^\/lab\/((?:views\/)?[a-z0-9-]+\.js)$/.exec(path))) file = join(ROOT, 'dist', 'lab', m[1]); // the lab's modules, built
  else if ((m = /^\/lab\/([a-z0-9-]+\.(?:css|svg|png))$/.exec(path))) file = join(ROOT, 'lab', m[1]);
  else if ((m = /^\/qkv\/((?:[a-z0-9-]+\/)*[a-z0-9-]+\.js)$/.exec(path)) && !m[1].startsWith('node/')) file = join(ROOT, 'dist', 'src', m[1]);
  else if (path === '/vendor/tokenizers.mjs') file = tokenizersModule();
  else if (path === '/vendor/jinja.mjs') file = jinjaModule();
  else if ((m = /^\/model\/([a-z_.]+)$/.exec(path)) && MODEL_FILES.has(m[1])) file = join(modelDir, m[1]);
  if (!file || !existsSync(file)) return null;
  const type = TYPES[extname(file)] ?? 'application/octet-stream';
  if (path.startsWith('/qkv/')) {
    return { body: VENDOR.reduce((text, [bare, served]) => text.replaceAll(bare, served), readFileSync(file, 'utf8')), type };
  }
  return { body: readFileSync(file), type };
}

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

// a source file as HTML: every line numbered and anchored (#L12), the first containing `find` marked (#match)
function sourcePage(rel: string, find: string): { body: string; type: string } | null {
  const file = join(ROOT, rel);
  if (!existsSync(file)) return null;
  const lines = readFileSync(file, 'utf8').split('\n');
  const hit = find ? lines.findIndex((l) => l.includes(find.slice(0, 200))) : -1;
  const rows = lines.map((l, i) => (i === hit ? `<span id="L${i + 1}" class="match"><a id="match" href="#L${i + 1}">`
    : `<span id="L${i + 1}"><a href="#L${i + 1}">`) + `${i + 1}</a>${escape(l)}</span>`);
  const body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(rel)}</title>` +
    '<link rel="stylesheet" href="/lab/source.css"></head><body>' +
    `<h1>${escape(rel)}${hit >= 0 ? ` · line ${hit + 1}` : ''}</h1><pre>${rows.join('\n')}</pre></body></html>`;
  return { body, type: TYPES['.html'] };
}
