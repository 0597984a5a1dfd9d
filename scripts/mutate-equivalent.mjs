// Surviving mutants that cannot change behaviour, with the reason; read by
// scripts/mutate-all.mjs to mark them in bench/MUTATION.md. They still count
// as survived in the score. Match: file, line, mutator and, when given, the
// start of the replacement text. A line that moves needs its entry moved.

/** @type {{ file: string, line: number, mutator: string, replacement?: string, reason: string }[]} */
export const equivalent = [];
