/**
 * Store URIs, as the original buttersink wrote them:
 *
 * - `[btrfs://]/path/to/dir/[snapshot]` — a local btrfs directory of snapshots
 * - `ssh://[user@]host[:port]/path/[snapshot]` — the same on a remote host
 * - `s3://bucket/prefix/[snapshot]` — stored send streams in a bucket
 *
 * The trailing `/` is significant: with it the URI names a directory of
 * snapshots; without it the last component names one snapshot in the
 * directory before it.
 */
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';

/** Fields every parsed location has. */
interface LocationBase {
  /** The URI as the user wrote it, for messages. */
  readonly uri: string;
  /** The snapshot named after the last `/`, when the URI did not end with `/`. */
  readonly snapshot?: string;
}

/** A local btrfs directory. */
export interface BtrfsLocation extends LocationBase {
  readonly kind: 'btrfs';
  /** Absolute path of the directory of snapshots, without trailing slash (`/` stays `/`). */
  readonly dir: string;
}

/** A directory on a remote host reached over SSH. */
export interface SshLocation extends LocationBase {
  readonly kind: 'ssh';
  readonly host: string;
  readonly user?: string;
  readonly port?: number;
  /** Absolute remote path of the directory of snapshots, without trailing slash. */
  readonly dir: string;
}

/** A prefix in an S3 bucket. */
export interface S3Location extends LocationBase {
  readonly kind: 's3';
  readonly bucket: string;
  /** Key prefix without leading or trailing slash; empty for the bucket root. */
  readonly prefix: string;
}

/** Where a set of snapshots lives. */
export type Location = BtrfsLocation | SshLocation | S3Location;

function splitSnapshot(path: string): { dir: string; snapshot?: string } {
  if (path.endsWith('/')) return { dir: path.replace(/\/+$/, '') };
  const cut = path.lastIndexOf('/');
  const snapshot = path.slice(cut + 1);
  if (snapshot === '.' || snapshot === '..') return { dir: path };
  return { dir: path.slice(0, cut), snapshot };
}

function withSnapshot<T extends object>(base: T, snapshot: string | undefined): T {
  return snapshot === undefined ? base : { ...base, snapshot };
}

/**
 * Parses a store URI. Throws {@link UsageError} with a one-line reason for
 * anything it cannot read (unknown scheme, missing host or bucket, bad port).
 * Relative local paths are resolved against `cwd`.
 */
export function parseLocation(uri: string, cwd: string = process.cwd()): Location {
  if (uri === '') throw new UsageError('empty location');
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(uri);
  if (!scheme) {
    if (/^[a-zA-Z0-9+.-]+:/.test(uri) && !uri.startsWith('./') && !uri.includes('/')) {
      throw new UsageError(
        `${uri}: not a path or URI (use /path/, ssh://host/path/ or s3://bucket/prefix/)`,
      );
    }
    return local(uri, resolve(cwd, uri) + (uri.endsWith('/') && uri !== '/' ? '/' : ''));
  }
  const kind = scheme[1]!.toLowerCase();
  const rest = uri.slice(scheme[0].length);
  switch (kind) {
    case 'btrfs': {
      if (!rest.startsWith('/')) {
        throw new UsageError(`${uri}: btrfs:// takes an absolute path, as in btrfs:///mnt/pool/`);
      }
      return local(uri, rest);
    }
    case 'ssh':
      return ssh(uri, rest);
    case 's3':
      return s3(uri, rest);
    default:
      throw new UsageError(`${uri}: unknown scheme '${kind}://' (use btrfs://, ssh:// or s3://)`);
  }
}

function local(uri: string, absPath: string): BtrfsLocation {
  const { dir, snapshot } = splitSnapshot(absPath === '/' ? '/' : absPath);
  return withSnapshot({ kind: 'btrfs' as const, uri, dir: dir === '' ? '/' : dir }, snapshot);
}

function ssh(uri: string, rest: string): SshLocation {
  const slash = rest.indexOf('/');
  if (slash <= 0) throw new UsageError(`${uri}: expected ssh://[user@]host[:port]/path/`);
  const authority = rest.slice(0, slash);
  const path = rest.slice(slash);
  const at = authority.lastIndexOf('@');
  const user = at >= 0 ? decodeURIComponent(authority.slice(0, at)) : undefined;
  const hostPort = at >= 0 ? authority.slice(at + 1) : authority;
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d*))?$/.exec(hostPort);
  if (!m || m[1] === undefined || m[1] === '' || (user !== undefined && user === '')) {
    throw new UsageError(`${uri}: expected ssh://[user@]host[:port]/path/`);
  }
  const host = m[1].replace(/^\[(.*)\]$/, '$1');
  let port: number | undefined;
  if (m[2] !== undefined) {
    port = Number(m[2]);
    if (m[2] === '' || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new UsageError(`${uri}: bad port '${m[2]}'`);
    }
  }
  const { dir, snapshot } = splitSnapshot(path);
  const base: SshLocation = { kind: 'ssh', uri, host, dir: dir === '' ? '/' : dir };
  return withSnapshot(
    { ...base, ...(user !== undefined ? { user } : {}), ...(port !== undefined ? { port } : {}) },
    snapshot,
  );
}

function s3(uri: string, rest: string): S3Location {
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new UsageError(`${uri}: '${bucket}' is not a valid S3 bucket name`);
  }
  const path = slash < 0 ? '/' : rest.slice(slash);
  const { dir, snapshot } = splitSnapshot(path);
  return withSnapshot(
    { kind: 's3' as const, uri, bucket, prefix: dir.replace(/^\/+|\/+$/g, '') },
    snapshot,
  );
}

/** Formats a location back as a URI (directory form, trailing slash; plus the snapshot if any). */
export function formatLocation(loc: Location): string {
  const tail = (dir: string) => (dir === '/' ? '/' : `${dir}/`) + (loc.snapshot ?? '');
  switch (loc.kind) {
    case 'btrfs':
      return tail(loc.dir);
    case 'ssh': {
      const user = loc.user !== undefined ? `${loc.user}@` : '';
      const host = loc.host.includes(':') ? `[${loc.host}]` : loc.host;
      const port = loc.port !== undefined ? `:${loc.port}` : '';
      return `ssh://${user}${host}${port}${tail(loc.dir)}`;
    }
    case 's3':
      return `s3://${loc.bucket}/${loc.prefix === '' ? '' : `${loc.prefix}/`}${loc.snapshot ?? ''}`;
  }
}
