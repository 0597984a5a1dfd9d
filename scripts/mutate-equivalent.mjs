// Surviving mutants that cannot change behaviour, with the reason; read by
// scripts/mutate-all.mjs to mark them in bench/MUTATION.md. They still count
// as survived in the score. Match: file, line, mutator and, when given, the
// start of the replacement text. A line that moves needs its entry moved.

const CRC_EMPTY =
  'the length test only skips a call: feeding 0 bytes leaves the CRC state unchanged in both engines';

/** @type {{ file: string, line: number, mutator: string, replacement?: string, reason: string }[]} */
export const equivalent = [
  {
    file: 'src/btrfs/send-stream/crc.ts',
    line: 47,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason: CRC_EMPTY,
  },
  {
    file: 'src/btrfs/send-stream/crc.ts',
    line: 74,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason: CRC_EMPTY,
  },
];
