/**
 * A one-line progress display (`NAME: 1,234 files, 1.2 GiB, 850 MiB/s`) that is
 * redrawn in place a few times a second, and only on a terminal: on anything
 * that is not a TTY it writes nothing at all.
 */
import type { Writable } from 'node:stream';
import { formatBytes } from '../format.js';
import { statusLine } from '../streams/status-line.js';

/** Counts fed by the scan; cheap to call on every file and chunk. */
export interface ProgressLine {
  /** One more file or entry finished. */
  addFile(): void;
  /** Bytes hashed. */
  addBytes(bytes: number): void;
  /** Stops redrawing and clears the line. Idempotent. */
  stop(): void;
}

/**
 * Returns a progress line drawing on `out` every `intervalMs` (default 250)
 * when `out` is a TTY, else one that only counts.
 */
export function progressLine(
  out: Writable | undefined,
  label: string,
  intervalMs = 250,
): ProgressLine {
  let files = 0;
  let bytes = 0;
  const line = statusLine(out);
  if (!line.enabled) {
    return {
      addFile: () => void files++,
      addBytes: (n) => void (bytes += n),
      stop: () => undefined,
    };
  }
  const started = performance.now();
  const draw = () => {
    const seconds = (performance.now() - started) / 1000;
    const rate = seconds > 0 ? bytes / seconds : 0;
    line.draw(
      `${label}: ${files.toLocaleString('en-US')} files, ${formatBytes(bytes)}, ${formatBytes(rate)}/s`,
    );
  };
  const timer = setInterval(draw, intervalMs);
  timer.unref();
  let stopped = false;
  return {
    addFile: () => void files++,
    addBytes: (n) => void (bytes += n),
    stop: () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      line.clear();
    },
  };
}
