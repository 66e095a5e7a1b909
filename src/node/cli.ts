#!/usr/bin/env node
// The `qkv` command. Commands grow with the runtime (generate, info, tokenize, serve); today: help, version,
// conformance and demo. Errors go to stderr with a non-zero exit.
import { formatResult, runConformance, summary } from './conformance.js';
import { runDemo } from './demo.js';
import { version } from './version.js';
import type { KernelName } from '../attention/options.js';

const HELP = `qkv — attention mechanisms for TypeScript

usage: qkv <command> [options]

commands:
  demo                         print a small attention example: weights, output, lse, statistics
  conformance DIR [--kernel K] check qkv against a golden directory (K: reference | flash | decode | auto)

options:
  -h, --help     show this help
  -v, --version  print the version

Model commands (generate, info, tokenize, serve) arrive with the runtime.`;

function main(argv: string[]): number {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help' || cmd === 'help') { console.log(HELP); return 0; }
  if (cmd === '-v' || cmd === '--version') { console.log(version()); return 0; }
  if (cmd === 'demo') { runDemo(); return 0; }
  if (cmd === 'conformance') {
    const dir = rest.find((a, i) => !a.startsWith('--') && rest[i - 1] !== '--kernel');
    const ki = rest.indexOf('--kernel');
    const kernel = (ki >= 0 ? rest[ki + 1] : 'flash') as KernelName;
    if (!dir) { console.error('qkv conformance: missing DIR\nusage: qkv conformance DIR [--kernel reference|flash|decode|auto]'); return 2; }
    const results = runConformance(dir, kernel, (r) => console.log(formatResult(r)));
    console.log(summary(results));
    return results.some((r) => r.status === 'fail') ? 1 : 0;
  }
  console.error(`qkv: unknown command '${cmd}'\n\n${HELP}`);
  return 2;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  console.error(`qkv: ${(e as Error).message}`);
  process.exitCode = 1;
}
