/**
 * The lines of progress a command redraws in place on a terminal (the sync's
 * overall and transfer lines, checksumdir's scan line). On anything that is not
 * a TTY it writes nothing at all, so logs and pipes stay clean.
 *
 * The drawing is log-update's (cursor moves, erasing, wrapping to the
 * terminal's width so a long line never scrolls the display, several lines at
 * once), not hand-written escape codes. It runs with `showCursor: true`: hiding
 * the cursor would make log-update install exit and signal hooks (restore-cursor)
 * beside the CLI's own SIGINT/SIGTERM handling. log-update is loaded only when
 * a line is enabled (a run whose output is not a terminal never loads it); what
 * is drawn before it has loaded is drawn once it has.
 */
import type { createLogUpdate } from 'log-update';

/** Where a status line draws: a stream that may be a terminal. */
export interface StatusOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  /** The terminal's size, when known (log-update wraps and clips to it; default 80 × 24). */
  readonly columns?: number;
  readonly rows?: number;
}

/** A block of lines redrawn in place. */
export interface StatusLine {
  /** True when `out` is a TTY: otherwise {@link draw} and {@link clear} do nothing. */
  readonly enabled: boolean;
  /** Replaces what was drawn with `text` (one line, or several separated by `\n`). */
  draw(text: string): void;
  /** Erases what was drawn, if anything. Idempotent; a later `draw` draws again. */
  clear(): void;
  /** Settles once the line can draw (at once when it is disabled). */
  readonly ready: Promise<void>;
}

/** A status line on `out`, enabled only when `out` is a TTY. */
export function statusLine(out: StatusOutput | undefined): StatusLine {
  const enabled = out?.isTTY === true;
  if (!enabled) {
    return { enabled, draw: () => undefined, clear: () => undefined, ready: Promise.resolve() };
  }
  let render: ReturnType<typeof createLogUpdate> | undefined;
  let pending: string | undefined;
  let drawn = false;
  const draw = (text: string): void => {
    if (!render) {
      pending = text;
      return;
    }
    render(text);
    drawn = true;
  };
  const ready = import('log-update').then((m) => {
    render = m.createLogUpdate(sized(out!) as unknown as NodeJS.WritableStream, {
      showCursor: true,
    });
    if (pending !== undefined) draw(pending);
    pending = undefined;
  });
  return {
    enabled,
    draw,
    clear() {
      pending = undefined;
      if (!drawn || !render) return;
      render.clear();
      drawn = false;
    },
    ready,
  };
}

/**
 * `out` as log-update sees it, with a size of 80 × 24 where the terminal says
 * 0 × 0 (a pty nobody sized: `script`, `ssh -t` from a script, serial
 * consoles), where log-update would otherwise draw nothing at all.
 */
function sized(out: StatusOutput): StatusOutput {
  return {
    isTTY: true,
    write: (text) => out.write(text),
    get columns() {
      return out.columns || 80;
    },
    get rows() {
      return out.rows || 24;
    },
  };
}
