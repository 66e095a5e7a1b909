// `qkv serve [--model DIR] [--port N] [--host H] [--threads N] [--weights F]`: the Attention Lab and the API on localhost.
import { parseArgs } from 'node:util';
import { QkvError } from '../../errors.js';
import { loadCheckpoint } from '../checkpoint.js';
import { createQkvServer, listen } from '../server/server.js';
import { applyRuntimeOptions, DEFAULT_MODEL_DIR, numberArg, RUNTIME_HELP, RUNTIME_OPTIONS } from './shared.js';

export const SERVE_HELP = `usage: qkv serve [--model DIR] [--port 8080] [--host 127.0.0.1] [--threads N] [--weights FORMAT]
                 [--cors ORIGIN]... [--allowed-host NAME]...

  --host H                 address to listen on (default 127.0.0.1, this machine only)
  --cors ORIGIN            let pages from ORIGIN (e.g. http://localhost:5173, or *) call the API (repeatable)
  --allowed-host NAME      accept requests whose Host header is NAME, e.g. behind a proxy (repeatable); localhost,
                           IP addresses and --host are always accepted — other names are refused (DNS rebinding)
${RUNTIME_HELP}`;

export async function serveCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values } = parseArgs({ args: argv, strict: true, options: {
    model: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    cors: { type: 'string', multiple: true }, 'allowed-host': { type: 'string', multiple: true }, ...RUNTIME_OPTIONS,
  } });
  if (values.help) { out(`${SERVE_HELP}\n`); return 0; }
  const port = numberArg(values.port, 'port') ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new QkvError(`--port must be an integer in [0, 65535], got ${port}`);
  const { threads, weights } = await applyRuntimeOptions(values);
  const ckpt = loadCheckpoint(values.model ?? DEFAULT_MODEL_DIR, { weights });
  const server = createQkvServer(ckpt, { host: values.host, corsOrigins: values.cors, allowedHosts: values['allowed-host'] });
  const url = await listen(server, { port, host: values.host });
  const size = ckpt.bytes >= 1e9 ? `${(ckpt.bytes / 1e9).toFixed(2)} GB` : `${(ckpt.bytes / 1e6).toFixed(1)} MB`;
  const loaded = `${size} loaded in ${(ckpt.loadMs / 1000).toFixed(1)} s`;
  const how = `${threads} thread${threads > 1 ? 's' : ''}, weights ${weights}, ${loaded}`;
  out(`qkv: serving ${ckpt.config.architectures?.[0]} from ${ckpt.dir} (${how})\n  lab  ${url}\n` +
    `  api  ${url}v1/completions  ${url}v1/models  ${url}api/attention\n(Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => { process.once('SIGINT', () => { server.close(); resolve(); }); process.once('SIGTERM', () => { server.close(); resolve(); }); });
  return 0;
}
