// What the server checks before any route sees a request, and how it keeps its connections:
//   target   a plain path ('//x' or '/\\x' would name another host; '*' and absolute forms are not paths): else 400.
//   Host     only names of this server: localhost (and *.localhost), IP literals, what --host names and what
//            --allowed-host adds. A page on another site cannot reach a localhost server by DNS rebinding, because
//            its requests carry that site's name in Host.
//   Origin   a browser request from another origin is refused unless --cors allowed that origin; then (and only
//            then) the CORS headers are sent. API posts must be application/json, which a cross-site form or a
//            "simple" fetch cannot send without a preflight.
//   sockets  at most `maxConnections` open; when a new one would exceed it, the oldest connection that is not inside a
//            request (an idle keep-alive socket, or one still dribbling its headers — slowloris) is closed for it.
//            Headers must arrive within 10 s and a whole request within 30 s.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import { HttpError } from './validate.js';

export interface GuardOptions {
  /** The address the server is bound to (--host). */
  host: string;
  /** More Host names to accept (--allowed-host), e.g. the name a reverse proxy forwards. */
  allowedHosts?: readonly string[];
  /** Origins allowed to call the API from a browser (--cors), e.g. 'http://localhost:5173'; '*' allows any. */
  corsOrigins?: readonly string[];
}

/** Timeouts (ms) suited to an API whose requests are small: the headers, and the whole request with its body. */
export const TIMEOUTS = { headersTimeout: 10_000, requestTimeout: 30_000, keepAliveTimeout: 5_000, connectionsCheckingInterval: 1_000 };

/** The host name of a Host header ("[::1]:8080" → "::1", "Example.com." → "example.com"), or null when malformed. */
function hostName(header: string): string | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(header.trim());
  if (!m) return null;
  return m[1].replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
}

/** The request target as a URL; a target that is not a plain path ('//', '//:99999', '/\\', '*') is a 400. */
export function requestUrl(req: IncomingMessage): URL {
  const target = req.url ?? '/';
  // '//x' and '/\\x' would resolve to another host; an absolute or '*' target is not a path at all
  if (target.startsWith('/') && !target.startsWith('//') && !target.includes('\\')) {
    try { return new URL(target, 'http://localhost'); } catch { /* reported below */ }
  }
  const message = `request target ${JSON.stringify(target.slice(0, 100))} is not a path`;
  throw new HttpError(400, message, null, 'invalid_request_error', 'bad_request_target');
}

/** Throws 421/400 unless the Host header names this server. */
export function checkHost(req: IncomingMessage, o: GuardOptions): void {
  const header = req.headers.host;
  if (header === undefined) throw new HttpError(400, 'the request has no Host header', null, 'invalid_request_error');
  const name = hostName(header);
  const bound = hostName(o.host);
  const ok = name !== null && (name === 'localhost' || name.endsWith('.localhost') || isIP(name) !== 0 || name === bound ||
    (o.allowedHosts ?? []).some((h) => hostName(h) === name));
  if (!ok) {
    const names = ['localhost', 'IP addresses', o.host, ...(o.allowedHosts ?? [])].join(', ');
    const message = `Host '${header.slice(0, 100)}' does not name this server (allowed: ${names}; add a name with --allowed-host)`;
    throw new HttpError(421, message, null, 'invalid_request_error', 'host_not_allowed');
  }
}

/**
 * The CORS origin to answer with (null: none), after refusing a browser request from a foreign origin. Same-origin
 * requests (Origin matches Host) pass without CORS headers.
 */
export function checkOrigin(req: IncomingMessage, o: GuardOptions): string | null {
  const origin = req.headers.origin;
  if (origin === undefined) return null; // not from a browser, or a same-origin GET
  const allowed = o.corsOrigins ?? [];
  if (allowed.includes('*')) return '*';
  if (allowed.includes(origin)) return origin;
  let sameOrigin = false;
  try { sameOrigin = new URL(origin).host === req.headers.host; } catch { /* "null" or malformed: not ours */ }
  if (sameOrigin) return null;
  const message = `requests from origin '${origin.slice(0, 100)}' are not allowed (qkv serve --cors ORIGIN allows one)`;
  throw new HttpError(403, message, null, 'invalid_request_error', 'origin_not_allowed');
}

/** Throws 415 unless a post's body is declared as JSON. */
export function checkJsonBody(req: IncomingMessage): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') {
    const message = `POST bodies must be sent as Content-Type: application/json, got '${type.slice(0, 100) || 'none'}'`;
    throw new HttpError(415, message, null, 'invalid_request_error', 'unsupported_media_type');
  }
}

/** Headers that answer CORS for `origin` (a preflight or the response itself). */
export function corsHeaders(origin: string | null): Record<string, string> {
  if (origin === null) return {};
  return {
    'access-control-allow-origin': origin, vary: 'Origin',
    'access-control-allow-methods': 'GET, POST, OPTIONS', 'access-control-allow-headers': 'content-type, authorization',
    'access-control-max-age': '600',
  };
}

/**
 * Caps open connections at `max`. A connection is evictable while it is not inside a request; when a new one
 * would exceed the cap, the oldest evictable one is closed for it, or the new one when every connection is busy.
 */
export function limitConnections(server: Server, max: number): void {
  const evictable = new Set<Socket>(); // insertion order: oldest first
  let open = 0;
  server.on('connection', (socket: Socket) => {
    open++;
    socket.once('close', () => { open--; evictable.delete(socket); });
    if (open > max) {
      const oldest = evictable.values().next().value;
      if (oldest === undefined) { socket.destroy(); return; }
      evictable.delete(oldest);
      oldest.destroy();
    }
    evictable.add(socket);
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    evictable.delete(socket);
    res.once('close', () => { if (!socket.destroyed) evictable.add(socket); }); // idle again (keep-alive): newest
  });
}

/**
 * After an early answer (a body over the limit), stop reading the request: the response goes out with
 * `Connection: close`, then what the client still sends is discarded for at most 2 s or 1 MiB, so that it reads the
 * answer instead of a reset, and the socket is closed.
 */
export function closeAfterResponse(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('connection', 'close');
  res.once('finish', () => {
    const socket = req.socket;
    let discarded = 0;
    const timer = setTimeout(() => socket.destroy(), 2000);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    req.on('data', (c: Buffer) => { discarded += c.length; if (discarded > 2 ** 20) socket.destroy(); });
    req.on('error', () => socket.destroy());
    req.resume();
    socket.end();
  });
}
