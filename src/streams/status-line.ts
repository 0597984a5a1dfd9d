/**
 * The one line of progress a command redraws in place on a terminal (the
 * sync's transfer line, checksumdir's scan line). On anything that is not a
 * TTY it writes nothing at all, so logs and pipes stay clean.
 */

/** Where a status line draws: a stream that may be a terminal. */
export interface StatusOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

/** A line redrawn in place. */
export interface StatusLine {
  /** True when `out` is a TTY: otherwise {@link draw} and {@link clear} do nothing. */
  readonly enabled: boolean;
  /** Replaces the line's text (carriage return, erase to end of line, `text`). */
  draw(text: string): void;
  /** Erases the line if anything was drawn. Idempotent; a later `draw` draws again. */
  clear(): void;
}

/** A status line on `out`, enabled only when `out` is a TTY. */
export function statusLine(out: StatusOutput | undefined): StatusLine {
  const enabled = out?.isTTY === true;
  let drawn = false;
  return {
    enabled,
    draw(text) {
      if (!enabled) return;
      out!.write(`\r\x1b[K${text}`);
      drawn = true;
    },
    clear() {
      if (!enabled || !drawn) return;
      out!.write('\r\x1b[K');
      drawn = false;
    },
  };
}
