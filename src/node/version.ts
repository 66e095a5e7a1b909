// The package version, read from package.json next to the built files (dist/src/node → package root).
import { readFileSync } from 'node:fs';

/** qkv's version string from package.json. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
