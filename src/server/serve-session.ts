/**
 * The server side of one protocol session (one SSH exec channel): handshake,
 * then requests answered in order, with the mode checked before anything is
 * touched. It serves a {@link BtrfsStore} rooted at the served directory.
 *
 * Buffering/backpressure: control messages are answered one at a time; a
 * `send` streams `btrfs send` into data frames through {@link frameSink}
 * (waits for the output's drain), a `receive` pulls data frames through
 * {@link frameSource} only as fast as verify/receive consume them, so neither
 * direction buffers more than a few hundred KiB whatever the peer does.
 *
 * Cancellation: when the input ends or fails in the middle of a receive, or
 * the client sends `abort`, the receive pipeline is destroyed: `btrfs
 * receive` is killed (never sent EOF) and what it created stays `*.part`. A
 * failing output (EPIPE: the connection dropped) ends a send the same way.
 */
import { realpath, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { AbortedError, ButtersinkError, describeError } from '../errors.js';
import { debug, setLogger } from '../log.js';
import type { Logger } from '../log.js';
import type { Volume } from '../planner/volume.js';
import { streamVerify } from '../stages/stream-verify.js';
import { runPipeline } from '../streams/pipeline.js';
import { BtrfsStore, PARTIAL_SUFFIX, isPartialPath } from '../stores/btrfs/btrfs-store.js';
import { listFilesystemSubvolumes } from '../btrfs/subvolume-list.js';
import { localStreamSupportWith } from '../btrfs/send-capabilities.js';
import { FrameReader, FrameWriter, ProtocolError } from '../wire/frame.js';
import { frameSink, frameSource } from '../wire/frame-stages.js';
import type { TimeoutError } from '../wire/frame.js';
import {
  DEFAULT_IDLE_SECONDS,
  DEFAULT_MAX_SECONDS,
  limitMs,
  sessionTimeLimitError,
} from './session-limits.js';
import { acquireSessionSlot } from './session-slots.js';
import type { SessionSlot, SessionSlotsOptions } from './session-slots.js';
import {
  MAX_REQUEST_JSON,
  PROTOCOL_NAME,
  PROTOCOL_VERSIONS,
  ServerRefusal,
  modeAllows,
  OP_MODE,
  helloStreams,
  parseClientHello,
  parseRequest,
  wireError,
} from '../wire/protocol.js';
import type { Request, ServerMode, VolumeRef } from '../wire/protocol.js';
import type { StoreLock } from '../stores/lock.js';
import { resolveInside } from './safe-path.js';

/** Options of {@link serveSession}. */
export interface ServeSessionOptions {
  /** Bytes from the client (stdin). */
  input: Readable;
  /** Bytes to the client (stdout): nothing else may write to it. */
  output: Writable;
  /** What the client may do. */
  mode: ServerMode;
  /** The served directory (absolute). Nothing outside it is read, sent, received or deleted. */
  root: string;
  /** Aborting it (SIGTERM, SIGHUP) cancels the running operation; the session then ends. */
  signal?: AbortSignal;
  /** Send stream version for sends (`--proto`). Default: btrfs-progs' default. */
  proto?: 1 | 2;
  /**
   * False (`--no-compressed-data`): report and serve send stream protocol 1
   * only, both ways, as a host whose btrfs-progs predates protocol 2. Default
   * true: what this host's btrfs-progs and kernel can (reported in the hello).
   */
  compressedData?: boolean;
  /**
   * Forward warnings logged while the session runs to the client as warning
   * messages (as well as to the logger that was installed). Default false.
   */
  forwardWarnings?: boolean;
  /** End `output` when the session ends. Default true (false for process.stdout). */
  endOutput?: boolean;
  /**
   * Idle limit, seconds: while the server waits for a frame (between requests,
   * during a receive) or for the client to read its output, and nothing
   * arrives or is read for this long, the session ends with a `TIMEOUT` error
   * (a running operation aborted). Default {@link DEFAULT_IDLE_SECONDS}; 0: none.
   */
  idleSeconds?: number;
  /**
   * Overall limit, seconds: the session is aborted with a `TIMEOUT` error once
   * it ran this long. Default {@link DEFAULT_MAX_SECONDS}; 0: none.
   */
  maxSeconds?: number;
  /**
   * Host-wide limit on concurrent sessions: a slot is taken before the
   * handshake and given back when the session ends; when none is free the
   * client's hello is answered with a `BUSY` error. Absent: no limit.
   */
  sessionSlots?: SessionSlotsOptions;
}

/** Exit codes of {@link serveSession}. */
export const SESSION_EXIT = {
  /** The client ended the session at a message boundary. */
  ok: 0,
  /** An operation that ends the session (send, receive) failed, or the session was aborted. */
  failed: 1,
  /** The client broke the protocol (bad framing, version, or message). */
  protocol: 2,
  /** Every session slot was taken: the session was refused (`BUSY`). */
  busy: 3,
} as const;

interface Context {
  readonly reader: FrameReader;
  readonly writer: FrameWriter;
  readonly mode: ServerMode;
  readonly root: string;
  readonly store: BtrfsStore;
  readonly signal: AbortSignal | undefined;
  readonly proto: 1 | 2 | undefined;
  /** The run's lock, when this session took it (`lock`): held until the session ends. */
  runLock: StoreLock | undefined;
}

/**
 * Serves one session. Contract: the first frame written is the hello; every
 * request is answered with exactly one result or error message (a stream
 * operation with its data then one end/result or error); a refused request
 * changes nothing on disk. Never writes anything but frames to `output`, never
 * a stack trace. A time limit that runs out ends the session with one `TIMEOUT`
 * error (the running operation aborted, nothing written after it); with
 * `sessionSlots` and no slot free, the client's hello is answered with one
 * `BUSY` error. Resolves with an exit code ({@link SESSION_EXIT}); never rejects.
 */
export async function serveSession(opts: ServeSessionOptions): Promise<number> {
  const idleMs = limitMs(opts.idleSeconds, DEFAULT_IDLE_SECONDS);
  const maxMs = limitMs(opts.maxSeconds, DEFAULT_MAX_SECONDS);
  // A limit that runs out writes its error as the last frame, then aborts whatever runs.
  const limit = new AbortController();
  const endByLimit = (err: TimeoutError) => {
    if (limit.signal.aborted) return;
    debug('server session limit', { error: describeError(err) });
    writer.last(wireError(err));
    limit.abort(err);
  };
  const signal = opts.signal ? AbortSignal.any([opts.signal, limit.signal]) : limit.signal;
  const reader = new FrameReader(opts.input, {
    maxJson: MAX_REQUEST_JSON,
    peer: 'client',
    idleMs,
    onIdle: endByLimit,
    signal,
  });
  const writer = new FrameWriter(opts.output, { peer: 'client', idleMs, onIdle: endByLimit });
  const timer = maxMs > 0 ? setTimeout(() => endByLimit(sessionTimeLimitError(maxMs)), maxMs) : 0;
  let slot: SessionSlot | null = null;
  // An EPIPE on our output is how a dropped connection shows; the pending write reports it.
  opts.output.on('error', (err) => debug('server output error', { error: describeError(err) }));
  let previous: Logger | undefined;
  if (opts.forwardWarnings) {
    const inner = setLogger({ warn: () => undefined, debug: () => undefined });
    previous = inner;
    setLogger({
      warn: (w) => {
        inner.warn(w);
        writer.json({ type: 'warning', code: w.code, message: w.message }).catch(() => undefined);
      },
      debug: (m, d) => inner.debug(m, d),
    });
  }
  try {
    if (opts.sessionSlots) {
      const max = opts.sessionSlots.max;
      let refusal: unknown;
      try {
        slot = await acquireSessionSlot(opts.sessionSlots);
        if (!slot) {
          refusal = new ServerRefusal(
            'BUSY',
            `${max} buttersink server sessions already running (limit ${max}); try again later`,
          );
        }
      } catch (err) {
        refusal = err;
      }
      if (refusal) {
        // The client expects a hello first; its own hello is then answered with the refusal.
        await writer.json({
          type: 'hello',
          protocol: PROTOCOL_NAME,
          versions: PROTOCOL_VERSIONS,
          mode: opts.mode,
        });
        await reader.next();
        debug('server session refused', { error: describeError(refusal) });
        await writer.json(wireError(refusal));
        return refusal instanceof ServerRefusal ? SESSION_EXIT.busy : SESSION_EXIT.failed;
      }
    }
    return await session({ ...opts, signal }, reader, writer);
  } catch (err) {
    debug('server session failed', { error: describeError(err) });
    await writer.json(wireError(err)).catch(() => undefined);
    if (limit.signal.aborted) return SESSION_EXIT.failed;
    return err instanceof ProtocolError || err instanceof ServerRefusal
      ? SESSION_EXIT.protocol
      : SESSION_EXIT.failed;
  } finally {
    clearTimeout(timer);
    await slot?.release();
    if (previous) setLogger(previous);
    if (opts.endOutput !== false) writer.end();
  }
}

async function session(
  opts: ServeSessionOptions,
  reader: FrameReader,
  writer: FrameWriter,
): Promise<number> {
  const streams = await localStreamSupportWith(opts);
  await writer.json({
    type: 'hello',
    protocol: PROTOCOL_NAME,
    versions: PROTOCOL_VERSIONS,
    mode: opts.mode,
    streams: helloStreams(streams),
  });
  const hello = await reader.next();
  if (hello === null) return SESSION_EXIT.ok;
  if (hello.kind !== 'json') throw new ProtocolError('client sent data before its hello');
  parseClientHello(hello.message);
  const root = await realpath(opts.root).catch((err: NodeJS.ErrnoException) => {
    // The codes a local btrfs store's LocationError has: the client exits 2 for both alike.
    const missing = err.code === 'ENOENT';
    const why = missing ? 'no such directory' : describeError(err);
    throw new ServerRefusal(
      missing ? 'NO_SUCH_DIRECTORY' : 'NOT_FOUND',
      `${opts.root.replace(/(.)\/+$/, '$1')}: ${why}`,
    );
  });
  if (!(await stat(root)).isDirectory()) {
    throw new ServerRefusal('NOT_A_DIRECTORY', `served directory ${opts.root} is not a directory`);
  }
  const ctx: Context = {
    reader,
    writer,
    mode: opts.mode,
    root,
    store: new BtrfsStore(
      { kind: 'btrfs', uri: root, dir: root },
      // A read-only server must not write `.bs` size records.
      {
        ...(opts.proto ? { proto: opts.proto } : {}),
        recordSizes: opts.mode !== 'r',
        ...(opts.compressedData === false ? { compressedData: false } : {}),
      },
    ),
    signal: opts.signal,
    proto: opts.proto,
    runLock: undefined,
  };
  try {
    return await serveRequests(ctx);
  } finally {
    await ctx.runLock?.release();
  }
}

async function serveRequests(ctx: Context): Promise<number> {
  const { reader, writer } = ctx;
  for (;;) {
    const frame = await reader.next();
    if (frame === null) return SESSION_EXIT.ok;
    if (frame.kind !== 'json') throw new ProtocolError('client sent data outside a receive');
    let request: Request;
    try {
      request = parseRequest(frame.message);
    } catch (err) {
      // The framing is intact: answer and go on reading.
      await writer.json(wireError(err));
      continue;
    }
    if (!modeAllows(ctx.mode, request.op)) {
      const refusal = new ServerRefusal(
        'MODE',
        `${request.op} refused: this server runs in mode '${ctx.mode}' (${request.op} needs '${OP_MODE[request.op]}' or higher)`,
      );
      await writer.json(wireError(refusal));
      continue;
    }
    debug('server request', { op: request.op });
    if (request.op === 'send' || request.op === 'receive') {
      try {
        await (request.op === 'send' ? serveSend(ctx, request) : serveReceive(ctx, request));
        return SESSION_EXIT.ok;
      } catch (err) {
        debug('server stream operation failed', { op: request.op, error: describeError(err) });
        await writer.json(wireError(err)).catch(() => undefined);
        return SESSION_EXIT.failed;
      }
    }
    try {
      await writer.json({ type: 'result', ...(await serveControl(ctx, request)) });
    } catch (err) {
      if (err instanceof ProtocolError) throw err;
      await writer.json(wireError(err));
      if (ctx.signal?.aborted) return SESSION_EXIT.failed;
    }
  }
}

function sig(ctx: Context): { signal?: AbortSignal } {
  return ctx.signal ? { signal: ctx.signal } : {};
}

/** The served snapshot `ref` names (same UUID and path), after checking the path on disk. */
async function findVolume(ctx: Context, ref: VolumeRef): Promise<Volume> {
  await resolveInside(ctx.root, ref.path, { mustExist: true });
  const view = await ctx.store.view('dest', sig(ctx));
  const v = view.volumes.find((x) => x.uuid === ref.uuid && x.path === ref.path);
  if (!v) {
    throw new ServerRefusal(
      'NOT_FOUND',
      `no read-only snapshot ${ref.path} with UUID ${ref.uuid} in the served directory`,
    );
  }
  return v;
}

async function serveControl(
  ctx: Context,
  request: Exclude<Request, { op: 'send' | 'receive' }>,
): Promise<Record<string, unknown>> {
  switch (request.op) {
    case 'list': {
      const view = await ctx.store.view(request.role, sig(ctx));
      return { volumes: view.volumes, diffs: view.diffs ?? [] };
    }
    case 'measure': {
      const to = await findVolume(ctx, request.to);
      const from = request.from ? await findVolume(ctx, request.from) : null;
      return { bytes: await ctx.store.measure(to, from, sig(ctx)) };
    }
    case 'delete': {
      const v = await findVolume(ctx, request.volume);
      // Under the served directory's lock, like a receive: not while another run writes it.
      await underLock(ctx, request.lock, () => ctx.store.deleteVolume(v, sig(ctx)));
      return {};
    }
    case 'lock': {
      if (ctx.runLock)
        throw new ServerRefusal('BAD_REQUEST', 'this session already holds the lock');
      ctx.runLock = await ctx.store.lock({
        command: `buttersink --server for: ${request.command}`,
        ...sig(ctx),
      });
      return {
        token: ctx.runLock.holder.token,
        where: ctx.runLock.where,
        holder: ctx.runLock.holder,
      };
    }
    case 'ping':
      return {};
    case 'preflight': {
      for (const t of request.transfers)
        await resolveInside(ctx.root, t.to.path, { mustExist: false });
      const problems = await ctx.store.preflight(request.transfers, {
        spaceCheck: request.spaceCheck,
        ...sig(ctx),
      });
      return { problems };
    }
    case 'listPartials':
      return { paths: await partialPaths(ctx) };
    case 'deletePartials': {
      const known = new Set(await partialPaths(ctx));
      for (const p of request.paths) {
        if (!known.has(p))
          throw new ServerRefusal('NOT_FOUND', `${p}: not a partial transfer here`);
        await resolveInside(ctx.root, p, { mustExist: true });
      }
      await underLock(ctx, request.lock, () =>
        ctx.store.deletePartials(
          request.paths.map((p) => ({ where: join(ctx.root, p) })),
          sig(ctx),
        ),
      );
      return {};
    }
  }
}

async function partialPaths(ctx: Context): Promise<string[]> {
  const partials = await ctx.store.listPartials(sig(ctx));
  return partials.map((p) => relative(ctx.root, p.where));
}

async function serveSend(ctx: Context, request: Extract<Request, { op: 'send' }>): Promise<void> {
  const to = await findVolume(ctx, request.to);
  const from = request.from ? await findVolume(ctx, request.from) : null;
  const sink = frameSink({
    name: 'ssh-write',
    writer: ctx.writer,
    finish: (bytes) => ctx.writer.json({ type: 'end', bytes }),
    abort: async () => undefined,
    ...sig(ctx),
  });
  const compressed = request.compressedData === true ? { compressedData: true } : {};
  await runPipeline([ctx.store.send(to, from, { ...sig(ctx), ...compressed }), sink], sig(ctx));
}

async function serveReceive(
  ctx: Context,
  request: Extract<Request, { op: 'receive' }>,
): Promise<void> {
  const { to, from } = request;
  if (isPartialPath(to.path)) {
    throw new ServerRefusal(
      'PATH',
      `refusing ${to.path}: '${PARTIAL_SUFFIX}' names are reserved for partial transfers`,
    );
  }
  await resolveInside(ctx.root, to.path, { mustExist: false });
  // One writer at a time in the served directory (a local run or another session):
  // held until this receive ends, so no other run removes or resumes its `*.part`.
  await underLock(ctx, request.lock, () => receiveLocked(ctx, to, from));
}

/**
 * Runs `fn` under the served directory's lock: the one this session holds,
 * the client's run lock named by `token` (held by its lock session), or one
 * taken for `fn` alone.
 */
async function underLock<T>(
  ctx: Context,
  token: string | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  if (ctx.runLock) return fn();
  const lock = token ? await ctx.store.joinLock(token, sig(ctx)) : await ctx.store.lock(sig(ctx));
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

async function receiveLocked(ctx: Context, to: VolumeRef, from: VolumeRef | null): Promise<void> {
  const view = await ctx.store.view('dest', sig(ctx));
  if (view.volumes.some((v) => v.uuid === to.uuid)) {
    throw new ServerRefusal('EXISTS', `snapshot ${to.uuid} is already here`);
  }
  // A second subvolume carrying a UUID the filesystem knows would become a decoy
  // for whoever later looks that UUID up (btrfs receive: first match).
  const known = (await listFilesystemSubvolumes(ctx.root, sig(ctx))).find(
    (s) => s.uuid === to.uuid || s.receivedUuid === to.uuid,
  );
  if (known) {
    throw new ServerRefusal(
      'EXISTS',
      `snapshot UUID ${to.uuid} already exists on this filesystem (${JSON.stringify(known.fsPath.slice(0, 200))}); refusing a second subvolume with it`,
    );
  }
  if (from && !view.volumes.some((v) => v.uuid === from.uuid && v.path === from.path)) {
    throw new ServerRefusal(
      'NOT_FOUND',
      `incremental parent ${from.path} (${from.uuid}) is not here`,
    );
  }
  const toVol: Volume = { uuid: to.uuid, path: to.path };
  const fromVol: Volume | null = from ? { uuid: from.uuid, path: from.path } : null;
  // The client is untrusted: the store guards the stream, confines and pins the receive.
  const stages = await ctx.store.receive(toVol, fromVol, { ...sig(ctx), trustedSource: false });
  await ctx.writer.json({ type: 'ready' });
  const source = frameSource({
    name: 'ssh-read',
    open: async () => ctx.reader,
    onControl: (message, bytes) => {
      const m = message as { type?: unknown; bytes?: unknown; message?: unknown };
      if (m?.type === 'end') {
        if (m.bytes !== bytes) {
          throw new ProtocolError(`client announced ${String(m.bytes)} bytes, ${bytes} arrived`);
        }
        return 'end';
      }
      if (m?.type === 'abort') {
        throw new AbortedError(`client aborted: ${String(m.message ?? '').slice(0, 500)}`);
      }
      throw new ProtocolError('unexpected control message during a receive');
    },
    ...sig(ctx),
  });
  try {
    await runPipeline(
      [
        source,
        // The store's guard verifies in its own parse; any other receive is verified here.
        ...(stages.verifies ? [] : [streamVerify(sig(ctx))]),
        ...stages.transforms,
        stages.sink,
      ],
      sig(ctx),
    );
  } catch (err) {
    // Name the snapshot in the one line the client gets (the class, and so the wire code, stay).
    if (err instanceof ButtersinkError && !err.message.startsWith(`${to.path}: `)) {
      err.message = `${to.path}: ${err.message}`;
    }
    throw err;
  }
  await ctx.writer.json({ type: 'result', path: to.path });
}
