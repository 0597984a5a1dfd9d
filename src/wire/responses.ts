/**
 * Validation of what a server says (the client's side of protocol.ts): its
 * hello, and the `result` message of each control request and of a receive. The client
 * trusts a server no more than the server trusts it, so every field is checked
 * here before a store hands it on; a malformed answer is a {@link ProtocolError}
 * naming the peer.
 *
 * Contract of every `parse…Result`: `message` is the `{type:'result', …}`
 * message as read (any value); the return value holds only the documented
 * fields, with the documented types; optional fields that are malformed are
 * dropped, required ones missing or malformed throw.
 */
import type { Diff, Volume } from '../planner/volume.js';
import { ProtocolError } from './frame.js';
import type { StreamSupport } from '../btrfs/send-capabilities.js';
import { PROTOCOL_NAME, isObject, isWireUuid, parseHelloStreams } from './protocol.js';

/** The result of `list`: the served snapshots and, for a source, the diffs the server can size. */
export interface ListResult {
  readonly volumes: Volume[];
  readonly diffs: Diff[];
}

/** `message`'s fields, none when it is not an object. */
function fields(message: unknown): Record<string, unknown> {
  return isObject(message) ? message : {};
}

function finite(x: unknown): number | undefined {
  return typeof x === 'number' && Number.isFinite(x) ? x : undefined;
}

function volume(v: unknown, peer: string): Volume {
  const o = fields(v);
  if (!isWireUuid(o.uuid) || typeof o.path !== 'string') {
    throw new ProtocolError(`${peer}: malformed volume in listing`);
  }
  const gen = finite(o.gen);
  const total = finite(o.totalSize);
  const excl = finite(o.exclusiveSize);
  return {
    uuid: o.uuid,
    path: o.path,
    ...(isWireUuid(o.ownUuid) ? { ownUuid: o.ownUuid } : {}),
    ...(gen !== undefined ? { gen } : {}),
    ...(isWireUuid(o.parentUuid) ? { parentUuid: o.parentUuid } : {}),
    ...(total !== undefined ? { totalSize: total } : {}),
    ...(excl !== undefined ? { exclusiveSize: excl } : {}),
  };
}

/** A listed diff, or undefined when malformed (size hints are optional: a bad one is dropped). */
function diff(d: unknown): Diff | undefined {
  const o = fields(d);
  if (!isWireUuid(o.to) || !(o.from === null || isWireUuid(o.from))) return undefined;
  if (typeof o.size !== 'number' || !(o.size >= 0)) return undefined;
  return { to: o.to, from: o.from, size: o.size, estimated: o.estimated === true };
}

/**
 * Validates a `list` result. `volumes` is required and every entry must have a
 * UUID and a path (else ProtocolError); `diffs` is optional and malformed
 * entries are dropped. `peer` names the server in errors.
 */
export function parseListResult(message: unknown, peer: string): ListResult {
  const m = fields(message);
  if (!Array.isArray(m.volumes)) throw new ProtocolError(`${peer}: listing without volumes`);
  const volumes = m.volumes.map((v: unknown) => volume(v, peer));
  const diffs = Array.isArray(m.diffs)
    ? m.diffs.flatMap((d: unknown) => {
        const parsed = diff(d);
        return parsed ? [parsed] : [];
      })
    : [];
  return { volumes, diffs };
}

/** Validates a `measure` result; returns its byte count. Throws ProtocolError without one. */
export function parseMeasureResult(message: unknown, peer: string): number {
  const bytes = fields(message).bytes;
  if (typeof bytes !== 'number' || !(bytes >= 0)) {
    throw new ProtocolError(`${peer}: measure returned no size`);
  }
  return bytes;
}

/** Validates a `listPartials` result; returns its paths (entries that are not strings dropped). */
export function parseListPartialsResult(message: unknown): string[] {
  const paths = fields(message).paths;
  return Array.isArray(paths) ? paths.filter((p): p is string => typeof p === 'string') : [];
}

/**
 * Validates the result a receive ends with; returns the path the server
 * committed the snapshot under, or `requested` when it names none.
 */
export function parseReceiveResult(message: unknown, requested: string): string {
  const path = fields(message).path;
  return typeof path === 'string' ? path : requested;
}

/**
 * Validates a server's hello; returns the protocol versions it speaks (entries
 * that are not numbers dropped) and, when it reported them, what it can do with
 * send stream protocol 2 ({@link parseHelloStreams}); or undefined when
 * `message` is not the hello of a buttersink server (another program answered
 * the remote command).
 */
export function parseServerHello(
  message: unknown,
): { versions: number[]; streams?: StreamSupport } | undefined {
  const m = fields(message);
  if (m.type !== 'hello' || m.protocol !== PROTOCOL_NAME) return undefined;
  const versions = Array.isArray(m.versions)
    ? m.versions.filter((v): v is number => typeof v === 'number')
    : [];
  const streams = parseHelloStreams(m.streams);
  return { versions, ...(streams ? { streams } : {}) };
}

/** A problem a remote's preflight found (the shape of the store layer's `PreflightProblem`). */
export interface PreflightProblemMessage {
  readonly code: 'NAME_CLASH' | 'NO_SPACE';
  readonly message: string;
  readonly warning?: boolean;
}

/**
 * Checks a `preflight` result: `problems` with known codes; each message made one
 * printable line (control characters replaced, at most 1000 characters) and
 * prefixed with `peer`. Throws ProtocolError for anything else.
 */
export function parsePreflightResult(message: unknown, peer: string): PreflightProblemMessage[] {
  const raw = isObject(message) ? message.problems : undefined;
  if (!Array.isArray(raw)) throw new ProtocolError(`${peer}: preflight answer without problems`);
  return raw.map((p: unknown) => {
    if (
      !isObject(p) ||
      (p.code !== 'NAME_CLASH' && p.code !== 'NO_SPACE') ||
      typeof p.message !== 'string'
    ) {
      throw new ProtocolError(`${peer}: malformed preflight problem`);
    }
    // eslint-disable-next-line no-control-regex
    const line = p.message.replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 1000);
    return {
      code: p.code,
      message: `${peer}: ${line}`,
      ...(p.warning === true ? { warning: true } : {}),
    };
  });
}
