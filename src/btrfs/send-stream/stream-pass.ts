/**
 * Send-stream passes: the work a parsing stage does on each stream header and
 * command (verify, guard, rewrite), separated from the parse, so that adjacent
 * parsing stages share one parse. Each pass is a stage of its own
 * ({@link passStage}); `runPipeline` merges adjacent ones into one stream with
 * one parser that feeds every pass in stage order (see streams/mergeable.ts).
 *
 * The shared parser does what the strictest pass asks: it checks every CRC if
 * one pass wants that (else the CRCs of the commands some pass reads), the
 * lowest `maxVersion` and `maxCommandLength`, and hands each command, with its
 * attributes, to the passes that read it. A pass that rewrites a command
 * returns the new command; later passes see the new one, as they would behind
 * it in a chain, and its bytes replace the old ones in the output.
 *
 * Buffering/backpressure: chunks pass through unchanged (same Buffers, never
 * copied) but for rewritten commands; what is held back is the union of what
 * the passes hold: the command in progress when a pass holds it, and the final
 * END until the input ended when a pass verifies completeness. Backpressure is
 * the Transform's own.
 */
import { Transform } from 'node:stream';
import { UsageError } from '../../errors.js';
import { destroyOnAbort, handled, streamDone } from '../../streams/stage.js';
import type { TransformStage } from '../../streams/stage.js';
import type { MergeableStage } from '../../streams/mergeable.js';
import { ByteQueue } from './byte-queue.js';
import { Cmd } from './constants.js';
import { createSendCrc } from './crc.js';
import { SendStreamParser } from './parser.js';
import type { SendStreamParserOptions } from './parser.js';
import type { CommandEvent, StreamHeaderEvent } from './types.js';

/** What the parse saw, once the input ended. */
export interface ParseTotals {
  /** Bytes read. */
  readonly bytes: number;
  /** Commands read, END included. */
  readonly commands: number;
  /** Version of the last stream header. */
  readonly version: number;
  /** Stream headers read (more than one for streams sent back to back). */
  readonly streams: number;
}

/** A command a pass rewrote: the new command, and its bytes (header and CRC included). */
export interface RewrittenCommand {
  readonly event: CommandEvent;
  readonly bytes: Buffer;
}

/** One stage's work on a parsed send stream. */
export interface SendStreamPass<R> {
  /** CRCs it needs checked: every command's, those of the commands it reads, or none. */
  readonly verify: 'all' | 'collected' | 'none';
  /** The commands it reads: `command` gets them, with their attributes. */
  reads(cmd: number): boolean;
  /**
   * Whether the command in progress must wait until it is complete and checked
   * (`cmd` undefined: its header is not complete yet). Must be true for every
   * command `command` may rewrite.
   */
  holds(cmd: number | undefined): boolean;
  /** Hold a final END back until the input ended with nothing after it. */
  readonly holdsEnd?: boolean;
  /** Highest stream version accepted (default: the parser's, 3). */
  readonly maxVersion?: number;
  /** Largest command payload accepted in v2+ streams (default: the parser's). */
  readonly maxCommandLength?: number;
  /** Loads what the pass needs asynchronously, before the first byte. */
  setup?(): Promise<void>;
  /** A stream header; `streams` counts the headers so far, this one included. */
  header?(ev: StreamHeaderEvent, streams: number): void;
  /** A command it reads (throw to fail the stream); returns its rewrite, if it changes. */
  command?(ev: CommandEvent): RewrittenCommand | undefined;
  /** The pass's result, once the input ended and parsed completely. */
  end(totals: ParseTotals): R;
}

/** A pass, where its result goes, and what may abort it. */
interface PassPart {
  readonly pass: SendStreamPass<unknown>;
  readonly signal: AbortSignal | undefined;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
  /** The stream running it, once built (its own, or the merged one). */
  stream: Transform | undefined;
  /** Removes the abort listener that builds (and so destroys) a stage never built. */
  detach: () => void;
}

const PART = Symbol('send-stream pass');

interface PassStage<R> extends MergeableStage<R> {
  readonly [PART]: PassPart;
}

/**
 * Makes `pass` a stage named `name`: alone, it runs on its own parse; next to
 * other pass stages in `runPipeline`, all of them share one. Destroyed when
 * `signal` aborts; its `result` is the pass's result once the output was read to
 * its end.
 */
export function passStage<R>(
  name: string,
  pass: SendStreamPass<R>,
  signal: AbortSignal | undefined,
): MergeableStage<R> {
  let resolve!: (value: unknown) => void;
  let reject!: (err: unknown) => void;
  const result = handled(
    new Promise<R>((res, rej) => {
      resolve = res as (value: unknown) => void;
      reject = rej;
    }),
  );
  const part: PassPart = { pass, signal, resolve, reject, stream: undefined, detach: noop };
  const stage: PassStage<R> = {
    kind: 'transform',
    name,
    result,
    get stream() {
      return part.stream ?? run([part]).stream;
    },
    merging: {
      merge: mergePasses,
      get built() {
        return part.stream !== undefined;
      },
    },
    [PART]: part,
  };
  // An abort settles the result also of a stage never built: building it destroys it.
  if (signal?.aborted) run([part]);
  else if (signal) {
    const build = () => part.stream ?? run([part]).stream;
    signal.addEventListener('abort', build, { once: true });
    part.detach = () => signal.removeEventListener('abort', build);
  }
  return stage;
}

function noop(): void {}

/** The merge function of pass stages: one stream, one parse, for all of them. */
function mergePasses(stages: readonly MergeableStage<unknown>[]): TransformStage<unknown> {
  const { stream, done } = run(stages.map((s) => (s as PassStage<unknown>)[PART]));
  return { kind: 'transform', name: stages.map((s) => s.name).join('+'), stream, result: done };
}

/**
 * Builds the stream running `parts` and settles their results from it; `done`
 * settles when the stream finished (resolves) or failed (rejects).
 */
function run(parts: PassPart[]): { stream: Transform; done: Promise<void> } {
  let results: unknown[] | undefined;
  const stream = passTransform(
    parts.map((p) => p.pass),
    (r) => {
      results = r;
    },
  );
  for (const part of parts) {
    part.stream = stream;
    part.detach();
  }
  // Once per signal: the members of a merge usually share one (a listener each would pile up).
  for (const signal of new Set(parts.map((p) => p.signal))) destroyOnAbort(stream, signal);
  const done = streamDone(stream);
  done.then(
    () => parts.forEach((p, i) => p.resolve(results![i])),
    (err: unknown) => parts.forEach((p) => p.reject(err)),
  );
  return { stream, done };
}

/** The parser options that serve every pass: the strictest of each. */
function parserOptions(
  passes: readonly SendStreamPass<unknown>[],
  readers: (cmd: number) => readonly SendStreamPass<unknown>[],
): SendStreamParserOptions {
  const verify = passes.some((p) => p.verify === 'all')
    ? 'all'
    : passes.some((p) => p.verify === 'collected')
      ? 'collected'
      : 'none';
  const min = (values: (number | undefined)[]) => {
    const set = values.filter((v): v is number => v !== undefined);
    return set.length === 0 ? undefined : Math.min(...set);
  };
  const maxVersion = min(passes.map((p) => p.maxVersion));
  const maxCommandLength = min(passes.map((p) => p.maxCommandLength));
  return {
    verify,
    collect: (cmd) => readers(cmd).length > 0,
    ...(maxVersion === undefined ? {} : { maxVersion }),
    ...(maxCommandLength === undefined ? {} : { maxCommandLength }),
  };
}

/** Per command number, the passes that read it (computed once per number). */
function commandTable(
  passes: readonly SendStreamPass<unknown>[],
): (cmd: number) => readonly SendStreamPass<unknown>[] {
  const table = new Map<number, SendStreamPass<unknown>[]>();
  return (cmd) => {
    let list = table.get(cmd);
    if (!list) {
      list = passes.filter((p) => p.command !== undefined && p.reads(cmd));
      table.set(cmd, list);
    }
    return list;
  };
}

/**
 * The Transform running `passes` in order on one parse; `onResults` gets their
 * results (in order) when the input ended and parsed completely.
 */
function passTransform(
  passes: readonly SendStreamPass<unknown>[],
  onResults: (results: unknown[]) => void,
): Transform {
  if (passes.length === 0) throw new UsageError('a send-stream parse needs at least one pass');
  const readers = commandTable(passes);
  const options = parserOptions(passes, readers);
  const holdsEnd = passes.some((p) => p.holdsEnd === true);
  const queue = new ByteQueue();
  let parser: SendStreamParser | undefined;
  let lastEnd = -1;

  const onChunk = (p: SendStreamParser, chunk: Buffer, push: (b: Buffer) => void) => {
    queue.push(chunk);
    for (const ev of p.push(chunk)) {
      if (ev.type === 'header') {
        for (const pass of passes) pass.header?.(ev, p.streams);
        continue;
      }
      if (ev.cmd === Cmd.END) lastEnd = ev.offset;
      let current = ev;
      let bytes: Buffer | undefined;
      for (const pass of readers(ev.cmd)) {
        const rewritten = pass.command!(current);
        if (rewritten) ({ event: current, bytes } = rewritten);
      }
      if (bytes) {
        for (const slice of queue.take(ev.offset)) push(slice);
        queue.drop(ev.offset + 10 + ev.length);
        push(bytes);
      }
    }
    // Release what no pass holds back: the command in progress, a final END.
    const pending = p.pendingCommand;
    const hold = p.boundary < p.offset && passes.some((pass) => pass.holds(pending));
    const upTo = holdsEnd && p.atEnd ? lastEnd : hold ? p.boundary : p.offset;
    for (const slice of queue.take(upTo)) push(slice);
  };

  return new Transform({
    construct(callback) {
      const crc = options.verify === 'none' ? undefined : createSendCrc();
      Promise.all([crc, ...passes.map((p) => p.setup?.())]).then(([engine]) => {
        parser = new SendStreamParser({ ...options, ...(engine ? { crc: engine } : {}) });
        callback();
      }, callback);
    },
    transform(chunk: Buffer, _encoding, callback) {
      try {
        onChunk(parser!, chunk, (bytes) => this.push(bytes));
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
    flush(callback) {
      try {
        const p = parser!;
        p.end();
        for (const slice of queue.take(queue.end)) this.push(slice);
        const totals = {
          bytes: p.offset,
          commands: p.commands,
          version: p.version,
          streams: p.streams,
        };
        onResults(passes.map((pass) => pass.end(totals)));
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
  });
}
