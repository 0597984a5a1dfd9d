/**
 * Fuzz test of the receive guard and stream verification (CI-sized): at least
 * 100,000 streams, each randomly chunked, through `receiveGuard` and
 * `streamVerify` (each stage gets the whole case on its own):
 *
 * - recorded kernel streams and the HOSTILE streams, cut into commands and
 *   recombined (windows, duplicated, dropped, swapped and foreign commands,
 *   extra stream headers), then mutated: command numbers, length fields
 *   (0 … 0xffffffff), attribute types and lengths, payload bytes (CRC fixed
 *   most of the time, so the mutation reaches the guard's rules in both
 *   stages), bit flips, byte sets, insertions, deletions, truncation, version;
 * - streams of random commands written with StreamBuilder: random paths (`..`,
 *   `/`, empty, NUL, control characters, over-long names, paths through the
 *   symlinks the stream makes or the parent holds) and UUIDs (half the time
 *   the announced target/parent);
 * - random bytes, bare or behind a stream header.
 *
 * Every failure must be one of the project's own errors (ButtersinkError), no
 * case may take a second, output must be a prefix of the input (all of it when
 * accepted), and memory must stay bounded. Each case is built from its own
 * seed: a failure names the case, which replays alone with
 *   FUZZ_CASE=<n> node --import tsx --test test/unit/stages/stream-fuzz.test.ts
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Attr, Cmd, maxCommand } from '../../../src/btrfs/send-stream/constants.js';
import { commandCrc, createSendCrc } from '../../../src/btrfs/send-stream/crc.js';
import type { SendCrc } from '../../../src/btrfs/send-stream/crc.js';
import { SendStreamParser } from '../../../src/btrfs/send-stream/parser.js';
import { serializeStreamHeader } from '../../../src/btrfs/send-stream/serialize.js';
import type { SendAttribute } from '../../../src/btrfs/send-stream/types.js';
import { uuidFromString, writeU64 } from '../../../src/btrfs/send-stream/values.js';
import { ButtersinkError, StreamCorruptError, StreamRefusedError } from '../../../src/errors.js';
import { receiveGuard } from '../../../src/stages/receive-guard.js';
import type { ReceiveGuardOptions } from '../../../src/stages/receive-guard.js';
import { streamVerify } from '../../../src/stages/stream-verify.js';
import type { TransformStage } from '../../../src/streams/stage.js';
import { HOSTILE, StreamBuilder } from '../../fixtures/hostile-streams.js';
import { FIXTURES, fixture, golden, randomChunks, rng } from '../../fixtures/streams/index.js';

const CASES = 100_000;
const SEED = 0x62757474;
const MAX_CASE_MS = 1000;
const MAX_HEAP_GROWTH = 256 * 2 ** 20;
const MAX_LEAK = 64 * 2 ** 20;
/** A case whose length fields claim more than this must not grow memory by as much. */
const CLAIM_CHECK = 2 * 2 ** 20;
const MAX_FAILURES = 10;
/** Cases run concurrently: amortizes the ticks each stage waits for. */
const BATCH = 16;
const REPLAY = process.env.FUZZ_CASE === undefined ? undefined : Number(process.env.FUZZ_CASE);

const TARGET = '11111111-2222-4333-8444-555555555555';
const PARENT = '66666666-7777-4888-8999-aaaaaaaaaaaa';
const OUTSIDE = 'bbbbbbbb-cccc-4ddd-8eee-ffffffffffff';
const MiB = 2 ** 20;

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const chance = (r: Rand, p: number) => r() < p;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;
const randomBytes = (r: Rand, n: number) => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(r, 256);
  return b;
};
const noop = () => {};

/** A valid stream cut into units: its header, then each command (a later header counts as one). */
interface Base {
  readonly name: string;
  readonly segments: readonly Buffer[];
  readonly target: string;
  readonly parent: string | undefined;
}

/** One generated case. */
interface Case {
  readonly kind: string;
  readonly bytes: Buffer;
  readonly chunks: readonly Buffer[];
  readonly opts: ReceiveGuardOptions;
  /** Largest payload a length field of the case claims (memory check). */
  readonly claim: number;
}

let dir: string;
let parentRoot: string;
let crc: SendCrc;
let kernelBases: Base[];
let hostileBases: Base[];

/** Cuts a stream into header and commands at the parser's event offsets. */
function split(buf: Buffer): Buffer[] {
  try {
    const p = new SendStreamParser({ verify: 'none', collect: () => false });
    const offsets = p.push(buf).map((e) => e.offset);
    p.end();
    return offsets.map((o, i) => buf.subarray(o, offsets[i + 1] ?? buf.length));
  } catch {
    return [buf.subarray(0, 17), buf.subarray(17)];
  }
}

/** Builds the parent copy on disk and the streams to mutate. */
async function setup(): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), 'stream-fuzz-'));
  parentRoot = join(dir, 'parent');
  mkdirSync(join(parentRoot, 'sub'), { recursive: true });
  mkdirSync(join(parentRoot, 'd/e'), { recursive: true });
  writeFileSync(join(parentRoot, 'file'), 'x');
  symlinkSync('/tmp', join(parentRoot, 'lnk'));
  symlinkSync('/etc/hostname', join(parentRoot, 'sub/flnk'));
  symlinkSync('..', join(parentRoot, 'd/up'));
  crc = await createSendCrc();
  kernelBases = FIXTURES.map((name) => {
    const first = golden(name).events.find((e) => e.type === 'command') as unknown as {
      attributes: { name: string; value: string }[];
    };
    const attr = (n: string) => first.attributes.find((a) => a.name === n)?.value;
    return {
      name,
      segments: split(fixture(name)),
      target: attr('uuid')!,
      parent: attr('clone_uuid'),
    };
  });
  const ctx = {
    target: TARGET,
    name: 'snap',
    parent: PARENT,
    canary: '/tmp/stream-fuzz-canary',
    outsideUuid: OUTSIDE,
    parentSymlink: 'lnk',
  };
  hostileBases = [];
  for (const c of HOSTILE) {
    const parent = c.incremental ? PARENT : undefined;
    hostileBases.push({
      name: `hostile: ${c.name}`,
      segments: split(await c.build(ctx)),
      target: TARGET,
      parent,
    });
  }
}

// ---------------------------------------------------------------- mutations

/** Sets a command's CRC to match its (possibly mutated) header and payload. */
function fixCrc(c: Buffer): void {
  if (c.length >= 10) c.writeUInt32LE(commandCrc(crc, c.subarray(0, 10), c.subarray(10)), 6);
}

function randomLength(r: Rand, actual: number): number {
  return pick(r, [
    0,
    1,
    Math.max(0, actual - 1),
    actual + 1,
    actual + 1000,
    0xfff6,
    0x10000,
    16 * MiB - 1,
    16 * MiB,
    16 * MiB + 1,
    0x7fffffff,
    0xffffffff,
    int(r, 2 ** 32),
  ]);
}

/** Offsets of a command's attribute headers (TLVs), as far as they frame. */
function tlvOffsets(c: Buffer): number[] {
  const out: number[] = [];
  for (let p = 10; p + 4 <= c.length && out.length < 64; p += 4 + c.readUInt16LE(p + 2)) {
    out.push(p);
  }
  return out;
}

/** Mutates one command (a copy); returns the largest length it now claims. */
function mutateCommand(r: Rand, seg: Buffer): { c: Buffer; claim: number } {
  let c = Buffer.from(seg);
  if (c.length < 10) return { c, claim: 0 };
  let claim = 0;
  switch (int(r, 6)) {
    case 0:
      c.writeUInt16LE(
        pick(r, [0, Cmd.SUBVOL, Cmd.SNAPSHOT, Cmd.END, 22, 25, 26, 27, 0xffff, int(r, 40)]),
        4,
      );
      break;
    case 1:
      claim = randomLength(r, c.length - 10);
      c.writeUInt32LE(claim >>> 0, 0);
      break;
    case 2:
    case 3: {
      const tlvs = tlvOffsets(c);
      if (tlvs.length === 0) break;
      const at = pick(r, tlvs);
      if (r() < 0.5) c.writeUInt16LE(pick(r, [0, 19, 31, 32, 35, 36, 0xffff, int(r, 40)]), at);
      else c.writeUInt16LE(pick(r, [0, 1, 15, 16, 17, 0xffff, int(r, 0x10000)]), at + 2);
      break;
    }
    case 4: {
      // Bytes of the payload: inside paths, UUIDs, numbers.
      for (let n = 1 + int(r, 4); n > 0 && c.length > 10; n--) {
        c[10 + int(r, c.length - 10)] = pick(r, [0x2f, 0x2e, 0x00, 0x0a, 0xff, int(r, 256)]);
      }
      break;
    }
    default: {
      // Grow or shrink the payload, keeping the length field consistent.
      const cut = 10 + int(r, c.length - 9);
      c = r() < 0.5 ? c.subarray(0, cut) : Buffer.concat([c, randomBytes(r, 1 + int(r, 40))]);
      c = Buffer.from(c);
      c.writeUInt32LE(c.length - 10, 0);
    }
  }
  if (r() < 0.75) fixCrc(c);
  return { c, claim };
}

/** Recombines whole units: duplicate, drop, swap, foreign commands, extra headers. */
function mutateSegments(r: Rand, segs: Buffer[]): void {
  const at = () => int(r, segs.length + 1);
  const any = () => int(r, segs.length);
  if (segs.length === 0) return;
  switch (int(r, 6)) {
    case 0:
      segs.splice(at(), 0, segs[any()]!);
      break;
    case 1:
      segs.splice(any(), 1);
      break;
    case 2: {
      const i = any();
      const j = any();
      [segs[i], segs[j]] = [segs[j]!, segs[i]!];
      break;
    }
    case 3:
      segs.splice(at(), 0, pick(r, pick(r, kernelBases).segments));
      break;
    case 4:
      segs.splice(at(), 0, serializeStreamHeader(1 + int(r, 3)));
      break;
    default:
      // Move END (or whatever is last) somewhere else.
      segs.splice(any(), 0, segs.pop()!);
  }
}

/** Byte-level damage to the whole stream (a new buffer or a view; never the input). */
function mutateBytes(r: Rand, buf: Buffer): Buffer {
  const n = buf.length;
  const pos = int(r, n + 1);
  switch (int(r, 7)) {
    case 0: {
      const c = Buffer.from(buf);
      if (n > 0) c[int(r, n)]! ^= 1 << int(r, 8);
      return c;
    }
    case 1: {
      const c = Buffer.from(buf);
      if (n > 0) c[int(r, n)] = pick(r, [0, 0xff, 0x2f, 0x2e, int(r, 256)]);
      return c;
    }
    case 2:
      return Buffer.concat([
        buf.subarray(0, pos),
        randomBytes(r, 1 + int(r, 32)),
        buf.subarray(pos),
      ]);
    case 3:
      return Buffer.concat([buf.subarray(0, pos), buf.subarray(pos + 1 + int(r, 64))]);
    case 4:
      return buf.subarray(0, pos);
    case 5: {
      const from = int(r, pos + 1);
      return Buffer.concat([buf.subarray(0, pos), buf.subarray(from, pos), buf.subarray(pos)]);
    }
    default: {
      // The version field (or the magic).
      const c = Buffer.from(buf);
      if (n >= 17) {
        if (r() < 0.8) {
          c.writeUInt32LE(pick(r, [0, 1, 2, 3, 4, 0xff, 0x100, 0xffffffff, int(r, 2 ** 32)]), 13);
        } else c[int(r, 13)]! ^= 1 << int(r, 8);
      }
      return c;
    }
  }
}

// ---------------------------------------------------------------- random streams

const NAMES = ['a', 'b', 'c', 'd', 'e', 'up', 'dir', 'sub', 'file', 'lnk', 'flnk', 'o257-5-0'];
const WEIRD: readonly Buffer[] = [
  '',
  '.',
  '..',
  '...',
  '\0',
  'a\0b',
  '\n',
  'x\x7f',
  'ü',
  ' ',
  'x'.repeat(255),
  'y'.repeat(256),
  'z'.repeat(1000),
].map((s) => Buffer.from(s, 'utf8'));
const LATIN1 = Buffer.from([0xff, 0xfe, 0x80]);
const SLASH = Buffer.from('/');

/**
 * A random path. `weird` (0–1), how hostile the stream being built is, scales the chances
 * of bad ones, so that some streams get deep into the guard's rules before one breaks.
 */
function randomPath(r: Rand, weird: number): Buffer {
  const roll = r();
  if (roll < 0.005) return Buffer.from('a/'.repeat(1 + int(r, 3000)) + 'f');
  if (roll < 0.005 + 0.02 * weird) return Buffer.alloc(0);
  if (roll < 0.005 + 0.025 * weird) return Buffer.from('/'.repeat(1 + int(r, 3)));
  const parts: Buffer[] = [];
  for (let n = 1 + int(r, 4); n > 0; n--) {
    if (parts.length > 0) parts.push(SLASH);
    const w = r();
    parts.push(w < 0.04 * weird ? pick(r, WEIRD) : w > 0.99 ? LATIN1 : Buffer.from(pick(r, NAMES)));
  }
  if (chance(r, 0.02 * weird)) parts.unshift(SLASH);
  if (chance(r, 0.01 * weird)) parts.push(SLASH);
  return Buffer.concat(parts);
}

/** With probability `p` the announced UUID, else another (possibly not 16 bytes long). */
function randomUuid(r: Rand, announced: string, p = 0.5): Buffer {
  if (r() < p) return uuidFromString(announced);
  return pick(r, [
    () => uuidFromString(pick(r, [TARGET, PARENT, OUTSIDE])),
    () => randomBytes(r, 16),
    () => randomBytes(r, int(r, 21)),
  ])();
}

const attr = (type: number, value: Buffer): SendAttribute => ({ type, value });
const u64 = (n: number) => writeU64(n);
const timespec = (r: Rand) => Buffer.concat([u64(int(r, 2 ** 31)), randomBytes(r, 4)]);

/** The attributes the kernel sends with `cmd` (random values), DATA last. */
function attributesFor(r: Rand, cmd: number, version: number, weird: number): SendAttribute[] {
  const path = attr(Attr.PATH, randomPath(r, weird));
  const ino = attr(Attr.INO, u64(256 + int(r, 1000)));
  const data = () => attr(Attr.DATA, randomBytes(r, int(r, 64)));
  const off = () => attr(Attr.FILE_OFFSET, u64(int(r, 2 ** 20)));
  switch (cmd) {
    case Cmd.SUBVOL:
    case Cmd.SNAPSHOT:
      return [
        attr(Attr.PATH, r() < 0.8 ? Buffer.from('snap') : randomPath(r, weird)),
        attr(Attr.UUID, randomUuid(r, TARGET, 0.8)),
        attr(Attr.CTRANSID, u64(20)),
        ...(cmd === Cmd.SNAPSHOT
          ? [attr(Attr.CLONE_UUID, randomUuid(r, PARENT, 0.8)), attr(Attr.CLONE_CTRANSID, u64(10))]
          : []),
      ];
    case Cmd.MKFILE:
    case Cmd.MKDIR:
    case Cmd.MKFIFO:
    case Cmd.MKSOCK:
      return [path, ino];
    case Cmd.MKNOD:
      return [path, ino, attr(Attr.MODE, u64(0o20644)), attr(Attr.RDEV, u64(int(r, 65536)))];
    case Cmd.SYMLINK:
      return [
        path,
        ino,
        attr(Attr.PATH_LINK, pick(r, [randomPath(r, weird), Buffer.from('/tmp')])),
      ];
    case Cmd.RENAME:
      return [path, attr(Attr.PATH_TO, randomPath(r, weird))];
    case Cmd.LINK:
      return [path, attr(Attr.PATH_LINK, randomPath(r, weird))];
    case Cmd.SET_XATTR:
      return [
        path,
        attr(Attr.XATTR_NAME, Buffer.from('user.x')),
        attr(Attr.XATTR_DATA, randomBytes(r, 8)),
      ];
    case Cmd.REMOVE_XATTR:
      return [path, attr(Attr.XATTR_NAME, Buffer.from('user.x'))];
    case Cmd.WRITE:
      return [path, off(), data()];
    case Cmd.CLONE:
      return [
        path,
        off(),
        attr(Attr.CLONE_LEN, u64(4096)),
        attr(Attr.CLONE_UUID, randomUuid(r, pick(r, [TARGET, PARENT]))),
        attr(Attr.CLONE_CTRANSID, u64(10)),
        attr(Attr.CLONE_PATH, randomPath(r, weird)),
        attr(Attr.CLONE_OFFSET, u64(0)),
      ];
    case Cmd.TRUNCATE:
    case Cmd.UPDATE_EXTENT:
      return [
        path,
        ...(cmd === Cmd.UPDATE_EXTENT ? [off()] : []),
        attr(Attr.SIZE, u64(int(r, 2 ** 20))),
      ];
    case Cmd.CHMOD:
      return [path, attr(Attr.MODE, u64(0o644))];
    case Cmd.CHOWN:
      return [path, attr(Attr.UID, u64(0)), attr(Attr.GID, u64(0))];
    case Cmd.UTIMES:
      return [
        path,
        attr(Attr.ATIME, timespec(r)),
        attr(Attr.MTIME, timespec(r)),
        attr(Attr.CTIME, timespec(r)),
      ];
    case Cmd.FALLOCATE:
      return [path, attr(Attr.FALLOCATE_MODE, u64(1)), off(), attr(Attr.SIZE, u64(4096))];
    case Cmd.FILEATTR:
      return [path, attr(Attr.FILEATTR, u64(int(r, 2 ** 20)))];
    case Cmd.ENCODED_WRITE:
      return [
        path,
        off(),
        attr(Attr.UNENCODED_FILE_LEN, u64(4096)),
        attr(Attr.UNENCODED_LEN, u64(4096)),
        attr(Attr.UNENCODED_OFFSET, u64(0)),
        attr(Attr.COMPRESSION, u64(int(r, 4))),
        data(),
      ];
    case Cmd.END:
      return [];
    default: {
      // Any command number, random attributes (types up to past the highest).
      const out: SendAttribute[] = [];
      for (let n = int(r, 5); n > 0; n--) {
        const type = int(r, 40);
        if (type !== Attr.DATA || version < 2) out.push(attr(type, randomBytes(r, int(r, 24))));
      }
      if (version >= 2 && chance(r, 0.3)) out.push(data());
      return out;
    }
  }
}

const BODY = [
  Cmd.MKFILE,
  Cmd.MKFILE,
  Cmd.MKDIR,
  Cmd.MKDIR,
  Cmd.MKNOD,
  Cmd.MKFIFO,
  Cmd.MKSOCK,
  Cmd.SYMLINK,
  Cmd.SYMLINK,
  Cmd.SYMLINK,
  Cmd.RENAME,
  Cmd.RENAME,
  Cmd.LINK,
  Cmd.UNLINK,
  Cmd.RMDIR,
  Cmd.SET_XATTR,
  Cmd.REMOVE_XATTR,
  Cmd.WRITE,
  Cmd.WRITE,
  Cmd.CLONE,
  Cmd.CLONE,
  Cmd.TRUNCATE,
  Cmd.CHMOD,
  Cmd.CHOWN,
  Cmd.UTIMES,
  Cmd.UPDATE_EXTENT,
  Cmd.FALLOCATE,
  Cmd.FILEATTR,
  Cmd.ENCODED_WRITE,
  Cmd.ENABLE_VERITY,
];
/** Commands that break a stream wherever they come after the first. */
const INTRUDERS = [Cmd.SUBVOL, Cmd.SNAPSHOT, Cmd.END];

/** A stream of random commands (valid CRCs), written with StreamBuilder. */
async function builderStream(r: Rand, incremental: boolean): Promise<Buffer> {
  const version = pick(r, [1, 1, 2, 2, 3]);
  const weird = pick(r, [0, 0.3, 1]); // see randomPath
  const b = await StreamBuilder.create(version);
  const random = (cmd: number) => {
    let attrs = attributesFor(r, cmd, version, weird);
    const odd = r() / weird;
    if (odd < 0.04) attrs = attrs.filter((_, i) => i !== int(r, attrs.length));
    else if (odd < 0.06) attrs = [attr(int(r, 36), randomBytes(r, int(r, 20))), ...attrs];
    else if (odd < 0.08) attrs = [...attrs].reverse();
    if (version >= 2)
      attrs = [
        ...attrs.filter((a) => a.type !== Attr.DATA),
        ...attrs.filter((a) => a.type === Attr.DATA).slice(-1),
      ];
    b.cmd(cmd, attrs);
  };
  const roll = r() / weird;
  if (roll > 0.1) random(incremental ? Cmd.SNAPSHOT : Cmd.SUBVOL);
  else if (roll > 0.05) random(incremental ? Cmd.SUBVOL : Cmd.SNAPSHOT);
  else random(int(r, 30));
  const body = BODY.filter((c) => c <= maxCommand(version));
  for (let n = int(r, 14); n > 0; n--) {
    const k = r() / weird;
    if (k > 0.2) random(pick(r, body));
    else if (k > 0.15) random(pick(r, k > 0.17 ? BODY : INTRUDERS));
    else if (k > 0.07) random(int(r, 0x20));
    else if (k > 0.04) b.raw(serializeStreamHeader(1 + int(r, 3)));
    else b.raw(randomBytes(r, 1 + int(r, 24)));
  }
  if (r() / weird > 0.07) b.end();
  return b.bytes();
}

/** Random bytes: bare, behind the magic, or framed as commands (CRC valid or not). */
function randomStream(r: Rand): Buffer {
  const roll = r();
  if (roll < 0.3) return randomBytes(r, int(r, 300));
  const head = serializeStreamHeader(1 + int(r, 3));
  if (roll < 0.5) {
    if (r() < 0.5) head.writeUInt32LE(int(r, 2 ** 32), 13);
    return Buffer.concat([
      head.subarray(0, 17 - int(r, 2) * int(r, 17)),
      randomBytes(r, int(r, 200)),
    ]);
  }
  const parts = [head];
  for (let n = int(r, 10); n > 0; n--) {
    const payload = randomBytes(r, int(r, 48));
    const c = Buffer.concat([Buffer.alloc(10), payload]);
    c.writeUInt32LE(payload.length, 0);
    c.writeUInt16LE(r() < 0.7 ? int(r, 28) : int(r, 0x10000), 4);
    if (r() < 0.7) fixCrc(c);
    parts.push(c);
  }
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------- cases

/** Commands of `base` to start from: all of it, or its first command, a window, its END. */
function window(r: Rand, base: Base): Buffer[] {
  const segs = base.segments;
  const big = segs.reduce((n, s) => n + s.length, 0) > 32 * 1024;
  if (segs.length < 4 || r() < (big ? 0.02 : 0.15)) return [...segs];
  const out = [segs[0]!];
  if (r() < 0.9) out.push(segs[1]!);
  const len = int(r, 12);
  const from = 2 + int(r, Math.max(1, segs.length - 3 - len));
  out.push(...segs.slice(from, Math.min(from + len, segs.length - 1)));
  if (r() < 0.9) out.push(segs.at(-1)!);
  return out;
}

async function makeCase(seed: number): Promise<Case> {
  const r = rng(seed);
  let kind: string;
  let bytes: Buffer;
  let claim = 0;
  let target = TARGET;
  let parent: string | undefined;
  const roll = r();
  if (roll < 0.35) {
    kind = roll < 0.25 ? 'fixture' : 'hostile';
    const base = pick(r, kind === 'fixture' ? kernelBases : hostileBases);
    target = base.target;
    parent = base.parent;
    const segs = window(r, base);
    const mutate = r() > 0.2; // else the commands as recorded
    for (let n = mutate ? int(r, 3) : 0; n > 0; n--) mutateSegments(r, segs);
    for (let n = !mutate || r() < 0.25 ? 0 : 1 + int(r, 2); n > 0; n--) {
      const i = int(r, segs.length);
      if (i === 0 || segs.length === 0) continue;
      const m = mutateCommand(r, segs[i]!);
      segs[i] = m.c;
      claim = Math.max(claim, m.claim);
    }
    bytes = Buffer.concat(segs);
    for (let n = !mutate || r() < 0.6 ? 0 : 1 + int(r, 2); n > 0; n--) {
      bytes = mutateBytes(r, bytes);
    }
  } else if (roll < 0.85) {
    kind = 'builder';
    parent = r() < 0.5 ? PARENT : undefined;
    bytes = await builderStream(r, parent !== undefined);
    if (r() < 0.1) bytes = mutateBytes(r, bytes);
  } else {
    kind = 'random';
    parent = r() < 0.5 ? PARENT : undefined;
    bytes = randomStream(r);
  }
  // Mostly announce what the stream claims; sometimes not.
  if (r() < 0.05) target = pick(r, [TARGET, OUTSIDE, target.toUpperCase()]);
  if (r() < 0.08) parent = parent === undefined ? PARENT : undefined;
  const opts: ReceiveGuardOptions = {
    target,
    ...(parent === undefined ? {} : { parent }),
    ...(parent !== undefined && r() < 0.5 ? { parentRoot } : {}),
  };
  // A few chunks (a write costs more than its bytes), byte-sized ones for small streams.
  const pieces = pick(r, [1, 2, 3, 6, 12, 40]);
  const max =
    bytes.length <= 400 && r() < 0.1
      ? pick(r, [1, 2, 3])
      : Math.max(1, Math.ceil((2 * bytes.length) / pieces));
  const chunks = randomChunks(bytes, r, max);
  if (chunks.length > 0 && r() < 0.03) chunks.splice(int(r, chunks.length), 0, Buffer.alloc(0));
  return { kind, bytes, chunks, opts, claim };
}

/** Feeds `chunks` to the stage's Transform; returns what came out and how it ended. */
async function drive<R>(stage: TransformStage<R>, chunks: readonly Buffer[]) {
  const out: Buffer[] = [];
  const s = stage.stream;
  s.on('data', (c: Buffer) => out.push(c));
  s.on('error', noop); // read from `result`
  for (const c of chunks) s.write(c);
  s.end();
  try {
    return { out, error: undefined as unknown, result: await stage.result };
  } catch (error) {
    return { out, error, result: undefined };
  }
}

/** Runs one case through both stages (each on its own), timing it. */
async function run(c: Case) {
  const start = performance.now();
  const [guard, verify] = await Promise.all([
    drive(receiveGuard(c.opts), c.chunks),
    drive(streamVerify(), c.chunks),
  ]);
  return { guard, verify, ms: performance.now() - start };
}
type Run = Awaited<ReturnType<typeof run>>;

/** The error for a failure report: its stack when stacks are on (a replay), else its message. */
function describeError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  if (Error.stackTraceLimit > 0 && e.stack) return e.stack;
  return `${e.constructor.name}: ${e.message.slice(0, 200)}`;
}

/** Checks what a stage passed: a prefix of the input, all of it when it accepted. */
function checkOutput(stage: string, input: Buffer, out: Buffer[], error: unknown) {
  const got = Buffer.concat(out);
  if (error === undefined && !got.equals(input)) return `${stage} accepted but changed the stream`;
  if (!input.subarray(0, got.length).equals(got)) return `${stage} passed bytes it was not given`;
  return undefined;
}

/** What a case broke: empty when all is well. */
function problemsOf(c: Case, r: Run): string[] {
  const problems: string[] = [];
  if (r.ms > MAX_CASE_MS) problems.push(`took ${r.ms.toFixed(0)} ms`);
  for (const [stage, e] of [
    ['receive-guard', r.guard.error],
    ['stream-verify', r.verify.error],
  ] as const) {
    if (e !== undefined && !(e instanceof ButtersinkError)) {
      problems.push(`${stage} failed with an error not its own: ${describeError(e)}`);
    }
  }
  for (const p of [
    checkOutput('receive-guard', c.bytes, r.guard.out, r.guard.error),
    checkOutput('stream-verify', c.bytes, r.verify.out, r.verify.error),
  ]) {
    if (p) problems.push(p);
  }
  if (r.guard.error === undefined && r.guard.result?.bytes !== c.bytes.length) {
    problems.push(`receive-guard reports ${r.guard.result?.bytes} bytes of ${c.bytes.length}`);
  }
  return problems;
}

/** Counts of what happened, for the report. */
class Tally {
  cases = 0;
  bytes = 0;
  accepted = 0;
  corrupt = 0;
  verified = 0;
  verifyCorrupt = 0;
  maxMs = 0;
  maxCase = -1;
  readonly refused = new Map<string, number>();
  /** Per kind of case: cases, guard accepted, refused, corrupt. */
  readonly kinds = new Map<string, [number, number, number, number]>();

  add(id: number, c: Case, r: Run): void {
    const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
    this.cases++;
    this.bytes += c.bytes.length;
    const kind = this.kinds.get(c.kind) ?? [0, 0, 0, 0];
    this.kinds.set(c.kind, kind);
    kind[0]++;
    if (r.ms > this.maxMs) {
      this.maxMs = r.ms;
      this.maxCase = id;
    }
    const g = r.guard.error;
    if (g === undefined) {
      this.accepted++;
      kind[1]++;
    } else if (g instanceof StreamCorruptError) {
      this.corrupt++;
      kind[3]++;
    } else {
      const rule =
        g instanceof StreamRefusedError ? g.rule : `(${(g as Error)?.constructor?.name})`;
      bump(this.refused, rule);
      kind[2]++;
    }
    if (r.verify.error === undefined) this.verified++;
    else if (r.verify.error instanceof StreamCorruptError) this.verifyCorrupt++;
  }

  report(elapsedMs: number, growth: number, peak: number, gc: boolean): string {
    const mib = (n: number) => (n / MiB).toFixed(1);
    const refused = [...this.refused.values()].reduce((a, b) => a + b, 0);
    const rules = [...this.refused]
      .sort((a, b) => b[1] - a[1])
      .map(([rule, n]) => `${rule} ${n}`)
      .join(', ');
    const kinds = [...this.kinds]
      .map(([k, [n, a, r, c]]) => `${n} ${k} (${a}/${r}/${c})`)
      .join(', ');
    return (
      `fuzz: ${this.cases} streams (${kinds} accepted/refused/corrupt by the guard; ${mib(this.bytes)} MiB) in ${(elapsedMs / 1000).toFixed(1)} s; ` +
      `guard: ${this.accepted} accepted, ${refused} refused (by rule: ${rules}), ${this.corrupt} corrupt; ` +
      `verify: ${this.verified} verified, ${this.verifyCorrupt} corrupt; ` +
      `max case ${this.maxMs.toFixed(1)} ms (case ${this.maxCase}); ` +
      `heap growth ${mib(growth)} MiB (peak ${mib(peak)} MiB${gc ? '' : ', no gc'})`
    );
  }
}

/** Seed of case `id`: cases are independent, so any one replays alone. */
const seedOf = (id: number) => (Math.imul(id + 1, 0x9e3779b1) ^ SEED) >>> 0;

/** `gc` when it can be had (node --expose-gc, or turned on here), else undefined. */
function getGc(): (() => void) | undefined {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}

const memory = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

/** What the fuzzing found. */
interface Outcome {
  tally: Tally;
  failures: string[];
  notes: string[];
  elapsedMs: number;
  growth: number;
  peak: number;
  gc: boolean;
}

/** Runs the cases (or the one replayed), batch by batch. */
async function fuzz(): Promise<Outcome> {
  await setup();
  const gc = getGc();
  gc?.();
  const baseline = memory();
  let peak = 0;
  const tally = new Tally();
  const failures: string[] = [];
  const notes: string[] = [];
  const ids = REPLAY === undefined ? Array.from({ length: CASES }, (_, i) => i) : [REPLAY];
  // Node reads the stack of every error a stream fails with (Writable's onwrite), and a
  // source-mapped stack costs more to format than most cases take: stacks are off while
  // fuzzing (a replayed case has them).
  const sourceMaps = process.sourceMapsEnabled;
  const stackTraceLimit = Error.stackTraceLimit;
  if (REPLAY === undefined) {
    process.setSourceMapsEnabled(false);
    Error.stackTraceLimit = 0;
  }
  const started = performance.now();
  try {
    for (let b = 0; b < ids.length && failures.length < MAX_FAILURES; b += BATCH) {
      const batch = ids.slice(b, b + BATCH);
      const cases = await Promise.all(batch.map((id) => makeCase(seedOf(id))));
      const claim = Math.max(...cases.map((c) => c.claim));
      const before = claim > CLAIM_CHECK ? process.memoryUsage().arrayBuffers : 0;
      // The cases of a batch run concurrently: a case's time is an upper bound of its own.
      const runs = await Promise.all(cases.map(run));
      if (before > 0) {
        const grew = process.memoryUsage().arrayBuffers - before;
        const input = cases.reduce((n, c) => n + c.bytes.length, 0);
        if (grew > claim / 2 && grew > 4 * input) {
          failures.push(
            `cases ${batch[0]}–${batch.at(-1)}: a length field claims ${claim} bytes and memory grew by ${grew}`,
          );
        }
      }
      cases.forEach((c, k) => {
        const id = batch[k]!;
        const r = runs[k]!;
        tally.add(id, c, r);
        const problems = problemsOf(c, r);
        if (problems.length > 0) {
          failures.push(
            `case ${id} (${c.kind}, ${c.bytes.length} bytes, ${c.chunks.length} chunks, options ${JSON.stringify(c.opts)}): ${problems.join('; ')}`,
          );
        }
        if (REPLAY !== undefined) {
          notes.push(
            `case ${id}: ${c.kind}, ${c.bytes.length} bytes in ${c.chunks.length} chunks, options ${JSON.stringify(c.opts)}`,
            `guard: ${r.guard.error === undefined ? 'accepted' : describeError(r.guard.error)}`,
            `verify: ${r.verify.error === undefined ? 'verified' : describeError(r.verify.error)}`,
          );
        }
      });
      if (b % (64 * BATCH) === 0) peak = Math.max(peak, memory() - baseline);
    }
  } finally {
    process.setSourceMapsEnabled(sourceMaps);
    Error.stackTraceLimit = stackTraceLimit;
    rmSync(dir, { recursive: true, force: true });
  }
  const elapsedMs = performance.now() - started;
  peak = Math.max(peak, memory() - baseline);
  gc?.();
  const growth = memory() - baseline;
  return { tally, failures, notes, elapsedMs, growth, peak, gc: gc !== undefined };
}

// The fuzzing runs as the module loads, before the first test exists: from then on
// node:test's async hooks track every promise and tick, which would make each of the
// 200,000 stage runs a good third dearer. The test below reports and asserts.
const outcome: Outcome | { error: unknown } = await fuzz().catch((error: unknown) => ({ error }));

describe('stream fuzz: receiveGuard and streamVerify', () => {
  const what = REPLAY === undefined ? `${CASES} streams` : `case ${REPLAY}`;
  it(`${what}: only the project's own errors, each < ${MAX_CASE_MS} ms, bounded memory`, (t) => {
    if ('error' in outcome) throw outcome.error;
    const { tally, failures, notes, elapsedMs, growth, peak, gc } = outcome;
    for (const line of notes.flatMap((n) => n.split('\n'))) t.diagnostic(line);
    t.diagnostic(tally.report(elapsedMs, growth, peak, gc));
    assert.deepEqual(
      failures,
      [],
      'replay a case with FUZZ_CASE=<n> node --import tsx --test test/unit/stages/stream-fuzz.test.ts',
    );
    if (REPLAY === undefined) assert.ok(tally.cases >= CASES, `only ${tally.cases} streams ran`);
    assert.ok(tally.maxMs < MAX_CASE_MS, `case ${tally.maxCase} took ${tally.maxMs} ms`);
    assert.ok(peak < MAX_HEAP_GROWTH, `memory grew by ${(peak / MiB).toFixed(1)} MiB`);
    assert.ok(growth < MAX_LEAK, `memory grew by ${(growth / MiB).toFixed(1)} MiB (after gc)`);
  });
});
