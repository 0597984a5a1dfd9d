/**
 * The `buttersink --server` protocol, version 1: message shapes, the mode
 * each operation needs, and validation of everything a client sends (the
 * server treats it all as hostile). What a server answers is validated in
 * responses.ts; framing is frame.ts. This module knows no store or server:
 * the SSH store (client) and `src/server/` both build on it.
 *
 * Conversation on one channel (frames: see frame.ts):
 * 1. server → `{type:'hello', protocol:'buttersink', versions:[1], mode}`;
 *    client → `{type:'hello', version}` (a version the server does not speak
 *    is answered with an error and the end of the session);
 * 2. client → `{type:'request', op, …}`; server → `{type:'result', …}` or
 *    `{type:'error', code, message}`; repeat. `{type:'warning', code, message}`
 *    may come from the server at any time;
 * 3. `send`: the server answers with data frames then `{type:'end', bytes}`
 *    (or an error); `receive`: the server answers `{type:'ready'}`, the client
 *    sends data frames then `{type:'end', bytes}` (or `{type:'abort'}`), the
 *    server answers with the result once committed. A stream operation is the
 *    last of its session.
 *
 * Version 2 adds a run's lock and its preflight check:
 * - `lock` takes the served directory's lock for the session's lifetime and
 *   answers `{token, where}`; the client keeps that session open (sending
 *   `ping` while idle) and passes the token as `lock` with the run's
 *   `receive`, `delete` and `deletePartials` on other sessions, which then
 *   work under that lock instead of taking their own. The lock goes when the
 *   lock session ends, however it ends (a killed server leaves a stale lock
 *   the next run takes over).
 * - `preflight` checks planned snapshot names and free space before a run
 *   sends anything; it answers `{problems: [{code, message, warning}]}`.
 *
 * Send stream protocol 2 (compressed data), in either protocol version: a
 * server that knows it adds `streams: {compressedSend, receiveVersion,
 * sendWhy?, receiveWhy?}` ({@link StreamSupport}) to its hello, and then
 * accepts `compressedData: true` in a `send` request. A client asks for it
 * only from a server that reported `compressedSend`, and sends a server
 * protocol 2 streams only when it reported `receiveVersion` ≥ 2; a hello
 * without `streams` (an older server) means protocol 1 both ways. Older
 * clients ignore the field.
 */
import { ButtersinkError, RemoteError, describeError } from '../errors.js';
import type { ButtersinkErrorOptions } from '../errors.js';
import type { StreamSupport } from '../btrfs/send-capabilities.js';

/** Protocol name in the server's hello. */
export const PROTOCOL_NAME = 'buttersink';
/** Protocol versions this build speaks, highest last. */
export const PROTOCOL_VERSIONS: readonly number[] = [1, 2];
/** The first version with `lock`, `ping` and `preflight`. */
export const LOCK_PROTOCOL_VERSION = 2;
/** Largest control message a server accepts from a client. */
export const MAX_REQUEST_JSON = 64 * 1024;
/** Largest control message a client accepts from a server (listings of many snapshots). */
export const MAX_RESPONSE_JSON = 64 * 1024 * 1024;
/** Longest store-relative path accepted, characters. */
export const MAX_PATH_LENGTH = 4096;

/** What a server may do: `r` list/measure/send, `a` also receive, `w` also delete. */
export type ServerMode = 'r' | 'a' | 'w';

/** True for a valid {@link ServerMode}. */
export function isServerMode(value: unknown): value is ServerMode {
  return value === 'r' || value === 'a' || value === 'w';
}

/** A snapshot named by the client: effective UUID and store-relative path. */
export interface VolumeRef {
  readonly uuid: string;
  readonly path: string;
}

/** A planned snapshot in a `preflight` request: where it lands and its size. */
export interface PreflightRef {
  readonly to: VolumeRef;
  readonly size: number;
  readonly estimated: boolean;
}

/** Most planned snapshots one `preflight` request may name. */
export const MAX_PREFLIGHT_TRANSFERS = 10_000;

/** Requests, one per store operation. `lock`: the token of the run's lock (version 2). */
export type Request =
  | { readonly op: 'list'; readonly role: 'source' | 'dest' }
  | { readonly op: 'measure'; readonly to: VolumeRef; readonly from: VolumeRef | null }
  | {
      readonly op: 'send';
      readonly to: VolumeRef;
      readonly from: VolumeRef | null;
      /** Send compressed data (protocol 2); only to a server whose hello reported `compressedSend`. */
      readonly compressedData?: boolean;
    }
  | {
      readonly op: 'receive';
      readonly to: VolumeRef;
      readonly from: VolumeRef | null;
      readonly lock?: string;
    }
  | { readonly op: 'delete'; readonly volume: VolumeRef; readonly lock?: string }
  | { readonly op: 'listPartials' }
  | { readonly op: 'deletePartials'; readonly paths: readonly string[]; readonly lock?: string }
  | { readonly op: 'lock'; readonly command: string }
  | { readonly op: 'ping' }
  | {
      readonly op: 'preflight';
      readonly transfers: readonly PreflightRef[];
      readonly spaceCheck: boolean;
    };

/** Operation names. */
export type Op = Request['op'];

/** The least mode each operation needs. */
export const OP_MODE: Readonly<Record<Op, ServerMode>> = {
  list: 'r',
  measure: 'r',
  send: 'r',
  listPartials: 'r',
  ping: 'r',
  receive: 'a',
  lock: 'a',
  preflight: 'a',
  delete: 'w',
  deletePartials: 'w',
};

const RANK: Readonly<Record<ServerMode, number>> = { r: 0, a: 1, w: 2 };

/** True when a server in `mode` may run `op`. */
export function modeAllows(mode: ServerMode, op: Op): boolean {
  return RANK[mode] >= RANK[OP_MODE[op]];
}

/**
 * A refusal or failure the server reports on the wire: `wireCode` is the
 * stable code the client sees (`MODE`, `PATH`, `BAD_REQUEST`, `NOT_FOUND`,
 * `VERSION`, `PROTOCOL`, …), the message one line.
 */
export class ServerRefusal extends ButtersinkError {
  override readonly code = 'REFUSED';
  readonly wireCode: string;
  constructor(wireCode: string, message: string, options: ButtersinkErrorOptions = {}) {
    super(message, options);
    this.wireCode = wireCode;
  }
}

/**
 * What the client throws for an error the server reported: `remoteCode` is the
 * server's code, the message names the host and the server's one-line reason.
 */
export class RemoteOperationError extends RemoteError {
  readonly remoteCode: string;
  constructor(remoteCode: string, message: string, options: ButtersinkErrorOptions = {}) {
    super(message, options);
    this.remoteCode = remoteCode;
  }
}

/** The error message a server sends for `err`: a code and one line, never a stack. */
export function wireError(err: unknown): { type: 'error'; code: string; message: string } {
  let code = 'FAILED';
  if (err instanceof ServerRefusal) code = err.wireCode;
  else if (err instanceof ButtersinkError) code = err.code;
  const message = describeError(err).slice(0, 2000);
  return { type: 'error', code, message };
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True for a lower-case `8-4-4-4-12` hex UUID. */
export function isWireUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_RE.test(value);
}

function bad(message: string): ServerRefusal {
  return new ServerRefusal('BAD_REQUEST', message);
}

/**
 * Checks a store-relative path syntactically: `/`-separated components, none
 * empty, `.` or `..`, no leading `/`, no NUL, each ≤ 255 bytes, the whole ≤
 * {@link MAX_PATH_LENGTH}. Returns its components. Throws a ServerRefusal
 * (`PATH`) otherwise. Symlinks are checked separately, on the filesystem.
 */
export function checkRelativePath(path: unknown): string[] {
  if (typeof path !== 'string') throw bad('path must be a string');
  const shown = JSON.stringify(path.slice(0, 200));
  if (path === '' || path.length > MAX_PATH_LENGTH) {
    throw new ServerRefusal('PATH', `bad path ${shown}: empty or too long`);
  }
  if (path.startsWith('/')) {
    throw new ServerRefusal(
      'PATH',
      `refusing absolute path ${shown}: paths are relative to the served directory`,
    );
  }
  if (path.includes('\0')) throw new ServerRefusal('PATH', `bad path ${shown}: contains NUL`);
  const parts = path.split('/');
  for (const p of parts) {
    if (p === '' || p === '.' || p === '..') {
      throw new ServerRefusal(
        'PATH',
        `refusing path ${shown}: it would leave the served directory or is not normalized`,
      );
    }
    if (Buffer.byteLength(p) > 255)
      throw new ServerRefusal('PATH', `bad path ${shown}: component too long`);
  }
  return parts;
}

/** True for a JSON object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyKeys(obj: Record<string, unknown>, keys: readonly string[], what: string): void {
  for (const k of Object.keys(obj)) {
    if (!keys.includes(k)) throw bad(`${what}: unexpected field ${JSON.stringify(k.slice(0, 50))}`);
  }
}

function volumeRef(v: unknown, what: string): VolumeRef {
  if (!isObject(v)) throw bad(`${what} must be an object`);
  onlyKeys(v, ['uuid', 'path'], what);
  if (!isWireUuid(v.uuid)) throw bad(`${what}.uuid is not a UUID`);
  checkRelativePath(v.path);
  return { uuid: v.uuid, path: v.path as string };
}

function optionalVolumeRef(v: unknown, what: string): VolumeRef | null {
  return v === null ? null : volumeRef(v, what);
}

const TOKEN_RE = /^[0-9a-f]{8,64}$/;

/** The optional `lock` token of a request: absent, or hex. */
function lockToken(message: Record<string, unknown>): { lock?: string } {
  if (message.lock === undefined) return {};
  if (typeof message.lock !== 'string' || !TOKEN_RE.test(message.lock)) {
    throw bad('lock: not a lock token');
  }
  return { lock: message.lock };
}

function preflightRefs(v: unknown): PreflightRef[] {
  if (!Array.isArray(v) || v.length > MAX_PREFLIGHT_TRANSFERS) {
    throw bad('preflight: bad transfers');
  }
  return v.map((t: unknown, i) => {
    if (!isObject(t)) throw bad(`preflight: transfers[${i}] must be an object`);
    onlyKeys(t, ['to', 'size', 'estimated'], `transfers[${i}]`);
    if (typeof t.size !== 'number' || !Number.isSafeInteger(t.size) || t.size < 0) {
      throw bad(`preflight: transfers[${i}].size is not a byte count`);
    }
    if (typeof t.estimated !== 'boolean') throw bad(`preflight: transfers[${i}].estimated`);
    return { to: volumeRef(t.to, `transfers[${i}].to`), size: t.size, estimated: t.estimated };
  });
}

/**
 * Validates a client's request message. Contract: returns a {@link Request}
 * with exactly the documented fields, every UUID in canonical form and every
 * path syntactically safe ({@link checkRelativePath}); throws a ServerRefusal
 * (`BAD_REQUEST` or `PATH`) for anything else, unknown fields included.
 */
export function parseRequest(message: unknown): Request {
  if (!isObject(message) || message.type !== 'request') throw bad('expected a request message');
  const op = message.op;
  switch (op) {
    case 'list':
      onlyKeys(message, ['type', 'op', 'role'], op);
      if (message.role !== 'source' && message.role !== 'dest') throw bad('list: bad role');
      return { op, role: message.role };
    case 'measure':
      onlyKeys(message, ['type', 'op', 'to', 'from'], op);
      return { op, to: volumeRef(message.to, 'to'), from: optionalVolumeRef(message.from, 'from') };
    case 'send':
      onlyKeys(message, ['type', 'op', 'to', 'from', 'compressedData'], op);
      if (message.compressedData !== undefined && typeof message.compressedData !== 'boolean') {
        throw bad('send: compressedData must be true or false');
      }
      return {
        op,
        to: volumeRef(message.to, 'to'),
        from: optionalVolumeRef(message.from, 'from'),
        ...(message.compressedData === true ? { compressedData: true } : {}),
      };
    case 'receive':
      onlyKeys(message, ['type', 'op', 'to', 'from', 'lock'], op);
      return {
        op,
        to: volumeRef(message.to, 'to'),
        from: optionalVolumeRef(message.from, 'from'),
        ...lockToken(message),
      };
    case 'delete':
      onlyKeys(message, ['type', 'op', 'volume', 'lock'], op);
      return { op, volume: volumeRef(message.volume, 'volume'), ...lockToken(message) };
    case 'lock':
      onlyKeys(message, ['type', 'op', 'command'], op);
      if (typeof message.command !== 'string' || message.command.length > 1000) {
        throw bad('lock: bad command');
      }
      return { op, command: message.command };
    case 'ping':
      onlyKeys(message, ['type', 'op'], op);
      return { op };
    case 'preflight':
      onlyKeys(message, ['type', 'op', 'transfers', 'spaceCheck'], op);
      if (typeof message.spaceCheck !== 'boolean') throw bad('preflight: bad spaceCheck');
      return {
        op,
        transfers: preflightRefs(message.transfers),
        spaceCheck: message.spaceCheck,
      };
    case 'listPartials':
      onlyKeys(message, ['type', 'op'], op);
      return { op };
    case 'deletePartials': {
      onlyKeys(message, ['type', 'op', 'paths', 'lock'], op);
      const paths = message.paths;
      if (!Array.isArray(paths) || paths.length > 10_000) throw bad('deletePartials: bad paths');
      for (const p of paths) checkRelativePath(p);
      return { op, paths: paths as string[], ...lockToken(message) };
    }
    default:
      throw bad(`unknown operation ${JSON.stringify(String(op).slice(0, 50))}`);
  }
}

/**
 * The `streams` field of a server's hello: what it can do with send stream
 * protocol 2, the reasons cut to one line of at most 300 characters.
 */
export function helloStreams(support: StreamSupport): StreamSupport {
  return {
    compressedSend: support.compressedSend,
    ...(support.sendWhy !== undefined ? { sendWhy: oneLine(support.sendWhy) } : {}),
    receiveVersion: support.receiveVersion,
    ...(support.receiveWhy !== undefined ? { receiveWhy: oneLine(support.receiveWhy) } : {}),
  };
}

/**
 * Reads the `streams` field of a server's hello (hostile input): undefined
 * when absent or malformed (then: protocol 1 both ways); reasons made one
 * printable line of at most 300 characters.
 */
export function parseHelloStreams(value: unknown): StreamSupport | undefined {
  if (!isObject(value) || typeof value.compressedSend !== 'boolean') return undefined;
  const rv = value.receiveVersion;
  if (typeof rv !== 'number' || !Number.isInteger(rv) || rv < 1 || rv > 1000) return undefined;
  const why = (v: unknown) => (typeof v === 'string' ? oneLine(v) : undefined);
  const sendWhy = why(value.sendWhy);
  const receiveWhy = why(value.receiveWhy);
  return {
    compressedSend: value.compressedSend,
    ...(sendWhy !== undefined ? { sendWhy } : {}),
    receiveVersion: rv,
    ...(receiveWhy !== undefined ? { receiveWhy } : {}),
  };
}

function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, 300);
}

/** Validates the client's hello; returns the version it asked for. Throws ServerRefusal (`VERSION`). */
export function parseClientHello(message: unknown): number {
  if (!isObject(message) || message.type !== 'hello' || typeof message.version !== 'number') {
    throw new ServerRefusal('PROTOCOL', 'expected a hello message first');
  }
  if (!PROTOCOL_VERSIONS.includes(message.version)) {
    throw new ServerRefusal(
      'VERSION',
      `protocol version ${message.version} not supported (this server speaks ${PROTOCOL_VERSIONS.join(', ')}); install the same buttersink version on both hosts`,
    );
  }
  return message.version;
}
