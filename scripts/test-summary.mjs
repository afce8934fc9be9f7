// Reads vitest's JSON report and prints how long each test file took (slowest first) and,
// last, one line "N passed, M failed" (", K skipped" when some were). Exits 1 when a test
// failed, a file failed to load, or the report holds no test at all.
import { readFileSync } from 'node:fs';
import path from 'node:path';

const file = process.argv[2];
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.log(`no test report (${err.message})`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const files = report.testResults.map((r) => ({
  name: path.relative(process.cwd(), r.name),
  seconds: (r.endTime - r.startTime) / 1000,
  failedToLoad: r.status === 'failed' && r.assertionResults.length === 0,
}));
console.log('\nseconds per test file:');
for (const f of [...files].sort((a, b) => b.seconds - a.seconds)) {
  console.log(`${f.seconds.toFixed(1).padStart(8)}  ${f.name}${f.failedToLoad ? '  (failed to load)' : ''}`);
}
const loadFailures = files.filter((f) => f.failedToLoad).length;
const passed = report.numPassedTests;
const failed = report.numFailedTests + loadFailures;
const skipped = report.numPendingTests + report.numTodoTests;
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
