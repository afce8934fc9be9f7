// Reads vitest's JSON report and prints how long each test file took (slowest first: wall
// seconds, and CPU seconds when test/cpu-seconds.ts logged them to the file named by the
// second argument), then each failed test with the first line of its failure (so that the
// tail of a long run names what failed) and, last, one line "N passed, M failed" (", K
// skipped" when some were).
// Exits 1 when a test failed, a file failed to load, or the report holds no test at all.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const [file, cpuLog] = process.argv.slice(2);
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.log(`no test report (${err.message})`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
/** CPU seconds by test file path, from test/cpu-seconds.ts's lines. */
const cpu = new Map();
if (cpuLog !== undefined && existsSync(cpuLog)) {
  for (const line of readFileSync(cpuLog, 'utf8').split('\n')) {
    if (line === '') continue;
    const { file: name, cpuSeconds } = JSON.parse(line);
    cpu.set(name, cpuSeconds);
  }
}
const files = report.testResults.map((r) => ({
  name: path.relative(process.cwd(), r.name),
  seconds: (r.endTime - r.startTime) / 1000,
  cpuSeconds: cpu.get(r.name),
  failedToLoad: r.status === 'failed' && r.assertionResults.length === 0,
}));
const column = (s) => (s === undefined ? '-' : s.toFixed(1)).padStart(8);
console.log('\nseconds per test file (wall, then CPU of the file and every process it started):');
for (const f of [...files].sort((a, b) => b.seconds - a.seconds)) {
  console.log(`${column(f.seconds)}${column(f.cpuSeconds)}  ${f.name}${f.failedToLoad ? '  (failed to load)' : ''}`);
}
const sum = (xs) => xs.reduce((a, b) => a + b, 0);
console.log(`${column(sum(files.map((f) => f.seconds)))}${column(cpu.size === 0 ? undefined : sum(files.map((f) => f.cpuSeconds ?? 0)))}  in all (the run's wall time is vitest's Duration above)`);
const firstLine = (text) => String(text ?? '').trim().split('\n')[0].slice(0, 200);
const failures = [];
for (const r of report.testResults) {
  const name = path.relative(process.cwd(), r.name);
  for (const t of r.assertionResults) {
    if (t.status === 'failed') failures.push(`${name} > ${t.fullName}: ${firstLine(t.failureMessages?.[0])}`);
  }
  // an error outside every test: the file failed to load, a hook failed, its worker died
  if (r.status === 'failed' && r.message) failures.push(`${name}: ${firstLine(r.message)}`);
}
if (failures.length > 0) console.log(`failed:\n${failures.map((f) => `  ${f}`).join('\n')}`);
const loadFailures = files.filter((f) => f.failedToLoad).length;
const passed = report.numPassedTests;
const failed = report.numFailedTests + loadFailures;
const skipped = report.numPendingTests + report.numTodoTests;
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
