/**
 * Prints one closing line, `tests: N passed, N failed`, from vitest's JSON report, so CI logs end
 * with a count any reader (or machine) can find. Exits non-zero when nothing ran.
 */
import { readFileSync } from 'node:fs';

const path = process.argv[2];
if (!path) throw new Error('usage: node hack/test-summary.ts <vitest-json-report>');
const report = JSON.parse(readFileSync(path, 'utf8')) as {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  numTotalTests: number;
};
const skipped = report.numPendingTests + report.numTodoTests;
console.log(
  `tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}`,
);
if (report.numTotalTests === 0) process.exit(1);
