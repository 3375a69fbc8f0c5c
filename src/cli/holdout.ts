/** `onepixel holdout`: a CIFAR-10 folder with one training file held out as the test set. */
import { Command } from 'commander';
import { HOLDOUT_MARKER, writeHoldout } from '../data/holdout.js';
import { checkOutput } from '../output.js';

interface Flags {
  data: string;
  test: string;
  out: string;
  force: boolean;
}

export function holdoutCommand(): Command {
  return new Command('holdout')
    .description(
      'write a CIFAR-10 folder whose test set is one of the training files (exact images) and whose training set is the others',
    )
    .requiredOption(
      '--data <dir>',
      'a CIFAR-10 binary folder (data_batch_1.bin … data_batch_5.bin)',
    )
    .option('--test <file>', 'the training file to hold out as the test set', 'data_batch_5.bin')
    .requiredOption('--out <dir>', 'the folder to write (a CIFAR-10 folder plus holdout.json)')
    .option('--force', 'replace an existing split onepixel wrote', false)
    .action(async (f: Flags) => {
      const rules = { flag: '--out', force: f.force, marker: HOLDOUT_MARKER, inputs: [f.data] };
      await checkOutput(f.out, rules);
      const info = await writeHoldout(f.data, f.test, f.out);
      const n = info.train.reduce((a, t) => a + t.records, 0);
      process.stdout.write(
        `${f.out}: ${n} training images (${info.train.map((t) => t.file).join(', ')}), ` +
          `${info.test.records} test images (${info.test.file})\n`,
      );
    });
}
