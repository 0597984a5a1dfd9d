/**
 * Lines in the format of GNU `sha256sum` (coreutils 9.1), with its escaping: a
 * name holding a backslash, newline or carriage return is written with `\\`,
 * `\n`, `\r` and the whole line starts with a backslash.
 */

const BACKSLASH = 0x5c;
const NEWLINE = 0x0a;
const CR = 0x0d;

function needsEscape(name: Uint8Array): boolean {
  for (const byte of name) if (byte === BACKSLASH || byte === NEWLINE || byte === CR) return true;
  return false;
}

/** The name as sha256sum prints it (escaped only when it has to be). */
export function escapeName(name: Buffer): { escaped: boolean; text: Buffer } {
  if (!needsEscape(name)) return { escaped: false, text: name };
  const out: number[] = [];
  for (const byte of name) {
    if (byte === BACKSLASH) out.push(BACKSLASH, BACKSLASH);
    else if (byte === NEWLINE) out.push(BACKSLASH, 0x6e);
    else if (byte === CR) out.push(BACKSLASH, 0x72);
    else out.push(byte);
  }
  return { escaped: true, text: Buffer.from(out) };
}

/**
 * One sha256sum output line, `[\]<hex>  <name>\n`, for a file whose name (as
 * given to sha256sum, e.g. `./dir/file`) is `name`.
 */
export function formatSha256sumLine(hex: string, name: Buffer): Buffer {
  const { escaped, text } = escapeName(name);
  const head = `${escaped ? '\\' : ''}${hex}  `;
  return Buffer.concat([Buffer.from(head, 'latin1'), text, Buffer.from([NEWLINE])]);
}

/**
 * Reads one sha256sum output line (without its newline) back into digest and
 * name bytes, undoing the escaping. Returns undefined for a line that is not in
 * that format.
 */
export function parseSha256sumLine(line: Buffer): { hex: string; name: Buffer } | undefined {
  const escaped = line[0] === BACKSLASH;
  const start = escaped ? 1 : 0;
  const sep = line.indexOf('  ', start, 'latin1');
  if (sep < 0) return undefined;
  const hex = line.toString('latin1', start, sep);
  if (!/^[0-9a-f]{64}$/.test(hex)) return undefined;
  const raw = line.subarray(sep + 2);
  if (!escaped) return { hex, name: raw };
  const out: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const byte = raw[i]!;
    if (byte !== BACKSLASH) {
      out.push(byte);
      continue;
    }
    const next = raw[++i];
    if (next === BACKSLASH) out.push(BACKSLASH);
    else if (next === 0x6e) out.push(NEWLINE);
    else if (next === 0x72) out.push(CR);
    else return undefined;
  }
  return { hex, name: Buffer.from(out) };
}
