/**
 * Numbers for people: byte counts in binary (IEC) units and durations in
 * seconds, the one formatter of each that plans, listings, progress lines and
 * error messages use.
 */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/**
 * Formats a byte count with one decimal in binary units: `512 B`, `12.3 MiB`,
 * `1.0 GiB`. Negative and non-finite inputs are formatted as given (`-1 B`, `NaN B`).
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || Math.abs(bytes) < 1024) return `${Math.round(bytes)} B`;
  let value = Math.abs(bytes);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  // 1023.95 KiB rounds to "1024.0 KiB": step up to the next unit instead.
  if (Number(value.toFixed(1)) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${bytes < 0 ? '-' : ''}${value.toFixed(1)} ${UNITS[unit]}`;
}

/** Milliseconds as seconds for a message, to the millisecond: `600 s`, `0.2 s`, `1.5 s`. */
export function formatSeconds(ms: number): string {
  return `${Math.round(ms) / 1000} s`;
}
