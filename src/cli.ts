/**
 * The command-line front end's entry: see src/cli/index.ts. `buttersink`'s
 * parts are src/cli/config.ts (argv to config), list.ts, sync.ts, verify.ts
 * (one per command), render.ts (what is printed) and report-error.ts.
 */
export * from './cli/index.js';
