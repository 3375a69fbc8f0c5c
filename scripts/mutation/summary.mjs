#!/usr/bin/env node
// Prints the table of docs/mutation.md from the raw reports of scripts/mutation.sh:
// results/mutation/<run>/mutation.json (Stryker's report) and run.log (command, machine,
// load). Score = (killed + timed out) / (all − no coverage), Stryker's "covered" score; the total
// score counts no-coverage mutants as survivors.
//   node scripts/mutation/summary.mjs
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';

const print = (line) => process.stdout.write(line + '\n');

const root = 'results/mutation';
const rows = [];
for (const run of readdirSync(root).sort()) {
  const report = join(root, run, 'mutation.json');
  if (!existsSync(report)) continue;
  const log = readFileSync(join(root, run, 'run.log'), 'utf8');
  const field = (name) => (log.match(new RegExp(`^${name}: (.*)$`, 'm')) ?? [])[1] ?? '';
  const count = {};
  for (const file of Object.values(JSON.parse(readFileSync(report, 'utf8')).files))
    for (const m of file.mutants) count[m.status] = (count[m.status] ?? 0) + 1;
  const n = (s) => count[s] ?? 0;
  const all = Object.values(count).reduce((a, b) => a + b, 0);
  const detected = n('Killed') + n('Timeout');
  const covered = all - n('NoCoverage') - n('CompileError') - n('RuntimeError') - n('Ignored');
  const load = (field('load at start').match(/load average: ([\d.]+)/) ?? [])[1] ?? '?';
  rows.push(
    `| ${run} | \`${field('mutate')}\` | ${all} | ${n('Killed')} | ${n('Survived')} | ${n('Timeout')} | ` +
      `${n('NoCoverage')} | ${((100 * detected) / covered).toFixed(1)} | ` +
      `${((100 * detected) / (all - n('Ignored'))).toFixed(1)} | ${field('date').slice(0, 16)} | ${load} |`,
  );
}
print(
  '| run | mutated | mutants | killed | survived | timeout | no coverage | score (covered) % | score (all) % | date (UTC) | load |',
);
print('| --- | --- | --: | --: | --: | --: | --: | --: | --: | --- | --: |');
for (const r of rows) print(r);
