/** The commander setup `checksumdir` and `btrfslist` share. */
import { Command, CommanderError } from 'commander';
import { version } from './io.js';
import type { CliIo } from './io.js';

/** A program with `--version`, writing to `io`, throwing instead of exiting. */
export function simpleProgram(name: string, description: string, io: CliIo): Command {
  return new Command(name)
    .description(description)
    .version(version(), '-V, --version', 'display version')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });
}

/** Parses argv; an exit code when commander is done (help, version: 0; usage error: 2), else undefined. */
export function parseOrExit(program: Command, argv: readonly string[]): number | undefined {
  try {
    program.parse(argv, { from: 'user' });
    return undefined;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
}
