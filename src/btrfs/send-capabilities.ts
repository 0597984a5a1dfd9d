/**
 * What this machine's btrfs-progs and kernel can do with send stream protocol
 * 2 (`btrfs send --proto 2 --compressed-data`: compressed extents sent as they
 * are, as ENCODED_WRITE commands, and stored compressed by the receiver).
 *
 * - Sending needs a kernel that sends protocol 2 (`/sys/fs/btrfs/features/
 *   send_stream_version` ≥ 2, Linux 6.0) and a `btrfs send` that has
 *   `--compressed-data` (btrfs-progs 6.0; its `--help` lists it).
 * - Receiving needs a `btrfs receive` that reads protocol 2 streams
 *   (btrfs-progs 6.0). It is asked, not guessed from the version number: a
 *   tiny protocol 2 stream with an ENCODED_WRITE goes through `btrfs receive
 *   --dump`, which reads streams with the same code as a real receive (an older
 *   one answers "stream version 2 not supported"). Where the kernel lacks the
 *   encoded-write ioctl, `btrfs receive` decompresses and writes itself.
 *
 * Detected once per process ({@link localStreamSupport}); the decision from
 * the facts is pure ({@link streamSupportFrom}).
 */
import { readFile } from 'node:fs/promises';
import { describeError } from '../errors.js';
import { debug } from '../log.js';
import { runBtrfs, spawnBtrfs } from './exec.js';
import { Attr, Cmd } from './send-stream/constants.js';
import { createSendCrc } from './send-stream/crc.js';
import { serializeCommand, serializeStreamHeader } from './send-stream/serialize.js';
import { writeU64 } from './send-stream/values.js';

/** What one host can do with send stream protocol 2. */
export interface StreamSupport {
  /** Its `btrfs send` and kernel can send compressed data (protocol 2). */
  readonly compressedSend: boolean;
  /** Why not, one line, when `compressedSend` is false. */
  readonly sendWhy?: string;
  /** Highest send stream version its `btrfs receive` takes: 1 or 2. */
  readonly receiveVersion: number;
  /** Why not 2, one line, when `receiveVersion` is 1. */
  readonly receiveWhy?: string;
}

/** The facts {@link streamSupportFrom} decides on. */
export interface LocalStreamFacts {
  /** `btrfs --version` output, e.g. `btrfs-progs v6.2`; undefined when it failed. */
  readonly progsVersion?: string | undefined;
  /** Content of `/sys/fs/btrfs/features/send_stream_version`; undefined when absent. */
  readonly kernelSendVersion?: string | undefined;
  /** What `btrfs send --help` printed (stdout and stderr). */
  readonly sendHelp: string;
  /** True when `btrfs receive --dump` read the protocol 2 probe stream. */
  readonly receivesV2: boolean;
  /** Why the probe failed, when it did. */
  readonly receiveProbeError?: string | undefined;
}

/** Where the kernel says which send stream version it speaks. */
export const KERNEL_SEND_VERSION_FILE = '/sys/fs/btrfs/features/send_stream_version';

/** `6.2` from `btrfs-progs v6.2`, or undefined. */
export function progsVersionOf(text: string | undefined): string | undefined {
  return /btrfs-progs v?(\d+(?:\.\d+)*)/.exec(text ?? '')?.[1];
}

/** Decides what the facts allow; pure. */
export function streamSupportFrom(facts: LocalStreamFacts): StreamSupport {
  const version = progsVersionOf(facts.progsVersion);
  const progs = `btrfs-progs ${version ?? '(unknown version)'}`;
  const kernel = Number.parseInt(facts.kernelSendVersion?.trim() ?? '', 10);
  let sendWhy: string | undefined;
  if (!(kernel >= 2)) {
    sendWhy = Number.isNaN(kernel)
      ? `the kernel does not say which send stream version it speaks (no ${KERNEL_SEND_VERSION_FILE}; protocol 2 needs Linux 6.0 or later)`
      : `the kernel sends protocol ${kernel} only (protocol 2 needs Linux 6.0 or later)`;
  } else if (!facts.sendHelp.includes('--compressed-data')) {
    sendWhy = `${progs} has no 'btrfs send --compressed-data' (needs btrfs-progs 6.0 or later)`;
  }
  const receiveWhy = facts.receivesV2
    ? undefined
    : `btrfs receive (${progs}) does not read protocol 2 streams (needs btrfs-progs 6.0 or later)` +
      (facts.receiveProbeError ? `: ${facts.receiveProbeError}` : '');
  return {
    compressedSend: sendWhy === undefined,
    ...(sendWhy !== undefined ? { sendWhy } : {}),
    receiveVersion: facts.receivesV2 ? 2 : 1,
    ...(receiveWhy !== undefined ? { receiveWhy } : {}),
  };
}

/** The support of a host where protocol 2 was turned off (`--no-compressed-data`): `why` says how. */
export function protocol1Only(why: string): StreamSupport {
  return { compressedSend: false, sendWhy: why, receiveVersion: 1, receiveWhy: why };
}

/**
 * A tiny protocol 2 stream: SUBVOL, one ENCODED_WRITE (zstd, 4 KiB), END.
 * `btrfs receive --dump` reads it without touching any filesystem.
 */
export async function probeStream(): Promise<Buffer> {
  const crc = await createSendCrc();
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const path = (p: string) => ({ type: Attr.PATH, value: Buffer.from(p) });
  return Buffer.concat([
    serializeStreamHeader(2),
    serializeCommand(
      Cmd.SUBVOL,
      [
        path('probe'),
        { type: Attr.UUID, value: Buffer.alloc(16, 0x11) },
        { type: Attr.CTRANSID, value: writeU64(1) },
      ],
      2,
      crc,
    ),
    serializeCommand(
      Cmd.ENCODED_WRITE,
      [
        path('file'),
        { type: Attr.FILE_OFFSET, value: writeU64(0) },
        { type: Attr.UNENCODED_FILE_LEN, value: writeU64(4096) },
        { type: Attr.UNENCODED_LEN, value: writeU64(4096) },
        { type: Attr.UNENCODED_OFFSET, value: writeU64(0) },
        { type: Attr.COMPRESSION, value: u32(2) },
        { type: Attr.ENCRYPTION, value: u32(0) },
        { type: Attr.DATA, value: Buffer.alloc(16) },
      ],
      2,
      crc,
    ),
    serializeCommand(Cmd.END, [], 2, crc),
  ]);
}

/** Runs the probe stream through `btrfs receive --dump`; undefined when it was read, else why not. */
async function probeReceive(): Promise<string | undefined> {
  try {
    const stream = await probeStream();
    const child = spawnBtrfs(['receive', '--dump'], { stdin: 'pipe' });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(stream);
    await child.done;
    return undefined;
  } catch (err) {
    return describeError(err);
  }
}

async function gatherFacts(): Promise<LocalStreamFacts> {
  const text = async (args: string[]) => {
    try {
      const r = await runBtrfs(args);
      return r.stdout + r.stderr;
    } catch (err) {
      return describeError(err);
    }
  };
  const [progsVersion, sendHelp, kernelSendVersion, probeError] = await Promise.all([
    text(['--version']),
    text(['send', '--help']),
    readFile(KERNEL_SEND_VERSION_FILE, 'utf8').catch(() => undefined),
    probeReceive(),
  ]);
  return {
    progsVersion,
    sendHelp,
    kernelSendVersion,
    receivesV2: probeError === undefined,
    receiveProbeError: probeError,
  };
}

/** What a store's options turn off of this machine's support. */
export interface StreamSupportOptions {
  /** `--proto` of its sends: 1 rules out compressed data. */
  proto?: 1 | 2 | undefined;
  /** False: protocol 1 only, both ways (a server's `--no-compressed-data`). */
  compressedData?: boolean | undefined;
}

/**
 * {@link localStreamSupport}, less what `opts` turned off. Detects nothing
 * when `compressedData` is false.
 */
export async function localStreamSupportWith(opts: StreamSupportOptions): Promise<StreamSupport> {
  if (opts.compressedData === false) {
    return protocol1Only('turned off there (--no-compressed-data)');
  }
  const support = await localStreamSupport();
  if (opts.proto !== 1 || !support.compressedSend) return support;
  return { ...support, compressedSend: false, sendWhy: 'sends are set to --proto 1' };
}

let local: Promise<StreamSupport> | undefined;

/**
 * What this machine can do with protocol 2, detected on the first call
 * (three short `btrfs` runs and a sysfs read) and remembered. Never rejects:
 * what cannot be run counts as not supported.
 */
export function localStreamSupport(): Promise<StreamSupport> {
  local ??= gatherFacts().then((facts) => {
    const support = streamSupportFrom(facts);
    debug('send stream support', { ...support, progs: progsVersionOf(facts.progsVersion) });
    return support;
  });
  return local;
}
