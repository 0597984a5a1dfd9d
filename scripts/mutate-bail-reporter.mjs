// node:test reporter for the StrykerJS test command (scripts/mutate-tests.mjs):
// exits 1 at the first failing test, so a killed mutant costs only the tests
// up to the one that kills it, and prints that test's name and error on stderr.
// A run in which no test passed also fails (a name pattern that matches
// nothing must not pass as "no mutant killed").
export default async function* bail(source) {
  let passed = 0;
  for await (const event of source) {
    const test = event.data?.details?.type !== 'suite';
    if (event.type === 'test:fail' && test) {
      const err = event.data.details?.error;
      process.stderr.write(`killed by: ${event.data.name}\n${err?.cause ?? err ?? ''}\n`);
      process.exit(1);
    }
    if (event.type === 'test:pass' && test && !event.data.skip && !event.data.todo) passed++;
  }
  if (passed === 0) {
    process.stderr.write('mutate-bail-reporter: no test passed (none ran?)\n');
    process.exit(1);
  }
  yield `${passed} tests passed\n`;
}
