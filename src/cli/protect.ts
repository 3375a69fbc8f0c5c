/** `onepixel protect`: the OPS-protected copy of a dataset. */
import { infinityReplacer } from '../manifest.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DATASETS, type DatasetKind, FORMATS, type OutputFormat } from '../data/formats.js';
import { fail } from '../errors.js';
import { isAborting } from '../output.js';
import { protect, type Phase } from '../protect.js';
import { OBJECTIVES, type Objective } from '../shortcut/search.js';
import { type ProgressBar, progressBar } from './progress.js';

export function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`${flag} must be a positive integer (got '${value}')`);
    return n;
  };
}

/** One progress bar per phase, replaced when the phase changes. */
function phaseProgress() {
  let current: { phase: Phase; bar: ProgressBar } | null = null;
  const labels: Record<Phase, [string, string]> = {
    download: ['download', 'B'],
    search: ['search  ', 'img'],
    write: ['write   ', 'img'],
  };
  return {
    update(phase: Phase, done: number, total: number | null) {
      if (isAborting()) fail('interrupted');
      if (current?.phase !== phase) {
        current?.bar.stop();
        const [label, unit] = labels[phase];
        current = { phase, bar: progressBar(label, total ?? 0, unit) };
      }
      current.bar.update(done);
    },
    stop() {
      current?.bar.stop();
    },
  };
}

interface Flags {
  dataset: DatasetKind;
  dataDir: string;
  out: string;
  format?: OutputFormat;
  objective: Objective;
  pixels: number;
  channels?: 1 | 3;
  force: boolean;
  download: boolean;
  json: boolean;
}

export function protectCommand(): Command {
  return new Command('protect')
    .description('write the One-Pixel-Shortcut-protected copy of a labelled image dataset')
    .addOption(
      new Option('--dataset <kind>', 'input dataset kind').choices(DATASETS).makeOptionMandatory(),
    )
    .requiredOption(
      '--data-dir <dir>',
      'folder holding the dataset (with --download: where to put it)',
    )
    .requiredOption('--out <dir>', 'output folder (must not exist unless --force)')
    .addOption(
      new Option('--format <format>', "output format (default: the input's own)").choices(FORMATS),
    )
    .addOption(
      new Option('--objective <name>', 'search objective').choices(OBJECTIVES).default('official'),
    )
    .option('--pixels <k>', 'pixels per class', positiveInt('--pixels'), 1)
    .addOption(
      new Option('--channels <c>', 'folder datasets: convert images to 1 or 3 channels')
        .choices(['1', '3'])
        .argParser((v) => Number(v) as 1 | 3),
    )
    .option('--force', 'replace --out if it exists', false)
    .option('--download', 'fetch CIFAR-10/100 from the official site into --data-dir first', false)
    .option('--json', 'print the manifest as JSON instead of a table', false)
    .action(async (f: Flags) => {
      const progress = phaseProgress();
      const t0 = performance.now();
      const m = await protect({
        dataset: f.dataset,
        dataDir: f.dataDir,
        out: f.out,
        format: f.format,
        objective: f.objective,
        pixels: f.pixels,
        channels: f.channels,
        force: f.force,
        download: f.download,
        onProgress: (phase, done, total) => progress.update(phase, done, total),
      });
      progress.stop();
      if (f.json) {
        process.stdout.write(JSON.stringify(m, infinityReplacer) + '\n');
        return;
      }
      const seconds = ((performance.now() - t0) / 1000).toFixed(2);
      const lines = [
        `protected ${m.output.train} training images (${m.source.dataset}, objective ${m.objective}, ` +
          `${m.pixelsPerClass} pixel(s) per class) in ${seconds} s → ${f.out} (${m.output.format})`,
      ];
      for (const c of m.classes) {
        const px = c.pixels.map((p) => `(${p.row},${p.col})=[${p.value.join(',')}]`).join(' ');
        lines.push(`  ${String(c.label).padStart(3)} ${c.name.padEnd(14)} ${px}`);
      }
      process.stdout.write(lines.join('\n') + '\n');
    });
}
