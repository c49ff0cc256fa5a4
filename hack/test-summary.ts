/**
 * Prints one closing line, `tests: N passed, N failed`, from one or more vitest JSON reports, so
 * CI logs end with a count any reader (or machine) can find. Exits non-zero when nothing ran or a
 * report is missing.
 *
 *   node hack/test-summary.ts .cache/vitest-report.json [.cache/vitest-e2e-report.json …]
 */
import { readFileSync } from 'node:fs';

type Report = {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  numTotalTests: number;
};

const paths = process.argv.slice(2);
if (paths.length === 0) throw new Error('usage: node hack/test-summary.ts <vitest-json-report>…');
const total = { passed: 0, failed: 0, skipped: 0, ran: 0 };
for (const path of paths) {
  const report = JSON.parse(readFileSync(path, 'utf8')) as Report;
  total.passed += report.numPassedTests;
  total.failed += report.numFailedTests;
  total.skipped += report.numPendingTests + report.numTodoTests;
  total.ran += report.numTotalTests;
}
const label = process.env.SUMMARY_LABEL ?? 'tests';
console.log(
  `${label}: ${total.passed} passed, ${total.failed} failed${total.skipped ? `, ${total.skipped} skipped` : ''}`,
);
if (total.ran === 0) process.exit(1);
