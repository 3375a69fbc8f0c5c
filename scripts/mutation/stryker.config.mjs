// StrykerJS configuration for scripts/mutation.sh (mutation testing, outside CI: it is slow).
// The script picks one module: MUTATION_MUTATE (comma-separated globs of src files to mutate) and
// MUTATION_TESTS (comma-separated globs of compiled test files that cover it), MUTATION_NAME (the
// report's name). Stryker copies the repository into a sandbox, mutates the TypeScript sources
// (all mutants at once, switched on by an environment variable), compiles them once with tsc and
// runs each test file with node (node:test prints TAP when stdout is not a terminal).
import process from 'node:process';

const list = (name) =>
  (process.env[name] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const name = process.env.MUTATION_NAME ?? 'module';
const out = `results/mutation/${name}`;

export default {
  $schema: '../../node_modules/@stryker-mutator/core/schema/stryker-schema.json',
  packageManager: 'npm',
  testRunner: 'tap',
  tap: {
    testFiles: list('MUTATION_TESTS'),
    // one test file per run; --test-concurrency keeps node from spawning its own pool
    nodeArgs: ['--test-concurrency=1'],
    forceBail: true,
  },
  plugins: ['@stryker-mutator/tap-runner'],
  mutate: list('MUTATION_MUTATE'),
  buildCommand: 'bash scripts/mutation/build.sh',
  // per test file: a mutant runs only against the test files that reached it
  coverageAnalysis: process.env.MUTATION_COVERAGE ?? 'perTest',
  concurrency: 1,
  timeoutMS: 20000,
  // the first run of all test files, with coverage counters, on a loaded 2-core machine
  dryRunTimeoutMinutes: 60,
  timeoutFactor: 2,
  disableTypeChecks: 'src/**/*.ts',
  // The sandbox lives two levels below the repository (out/stryker/sandbox-*); scripts/mutation.sh
  // links out/stryker/shared to the shared data so the tests' ../shared paths resolve.
  tempDirName: 'out/stryker',
  ignorePatterns: ['results', 'bench/out', 'dist', 'out', 'docs', '*.log'],
  cleanTempDir: true,
  reporters: ['json', 'html', 'clear-text', 'progress-append-only'],
  jsonReporter: { fileName: `${out}/mutation.json` },
  htmlReporter: { fileName: `${out}/mutation.html` },
  incremental: process.env.MUTATION_INCREMENTAL === '1',
  incrementalFile: `${out}/incremental.json`,
  thresholds: { high: 80, low: 60, break: null },
  logLevel: 'info',
  fileLogLevel: 'off',
};
