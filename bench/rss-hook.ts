/**
 * Preloaded with `node --import` into a child process when /usr/bin/time is absent: at exit,
 * writes the process's peak resident set size (KiB, as getrusage reports it) to the file named by
 * ONEPIXEL_BENCH_RSS_FILE.
 */
import { writeFileSync } from 'node:fs';

const out = process.env.ONEPIXEL_BENCH_RSS_FILE;
if (out) {
  process.on('exit', () => {
    writeFileSync(out, String(process.resourceUsage().maxRSS));
  });
}
