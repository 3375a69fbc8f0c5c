#!/usr/bin/env node
/**
 * The `onepixel` command: parses arguments, runs a subcommand, turns errors into exit codes.
 * Only the subcommand being run is imported (the others appear in --help by name and
 * description), so `--help`, `inspect` and OPS `protect` never load the training engine.
 */
import { Command } from 'commander';
import { OnepixelError } from '../errors.js';
import { failureMessage, finalNames, isAborting, removePending } from '../output.js';
import { VERSION } from '../version.js';
import { setVerbose } from '../verbose.js';
import { onStopSignals } from './signals.js';

const COMMANDS: Record<string, [string, () => Promise<Command>]> = {
  protect: [
    'write a protected copy of a labelled image dataset: One-Pixel Shortcut (default), ' +
      'error-minimizing noise, CIFAR-10-S (both), or random noise',
    async () => (await import('./protect.js')).protectCommand(),
  ],
  inspect: [
    'show the pixels of a protected folder and how far it is from its source',
    async () => (await import('./inspect.js')).inspectCommand(),
  ],
  train: [
    'train a model on a dataset folder and report accuracy on its clean test split',
    async () => (await import('./train.js')).trainCommand(),
  ],
  audit: [
    'train every model × strategy on clean and protected data; report clean-test accuracy',
    async () => (await import('./audit.js')).auditCommand(),
  ],
  holdout: [
    'write a CIFAR-10 folder with one training file held out as its exact test set (e.g. 40,000 / 10,000)',
    async () => (await import('./holdout.js')).holdoutCommand(),
  ],
  doctor: [
    'say which training backends work here, and how to install the missing ones',
    async () => (await import('./doctor.js')).doctorCommand(),
  ],
  slurm: [
    'write sbatch scripts running a protect or an audit as shards on a Slurm cluster',
    async () => (await import('./slurm.js')).slurmCommand(),
  ],
};

const program = new Command()
  .name('onepixel')
  .description('Make image datasets unlearnable with the One-Pixel Shortcut, and prove it.')
  .version(VERSION)
  .showHelpAfterError('(run with --help for usage)')
  .option('--verbose', "also print the libraries' own diagnostics (the GPU engine's Dawn)", false)
  .hook('preAction', (cmd) => setVerbose(cmd.opts<{ verbose: boolean }>().verbose));

// The command named on the line (`onepixel help <command>` too) is loaded in full.
const args = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const wanted = args[0] === 'help' ? args[1] : args[0];
for (const [name, [description, load]] of Object.entries(COMMANDS))
  program.addCommand((name === wanted ? await load() : new Command(name)).description(description));

// Ctrl-C or kill: remove the half-written output folder, then exit with the signal's status.
onStopSignals();

/**
 * Every error ends here, whether thrown by the command or by a stream nobody awaited: a user's
 * error (bad input, a flag) or a failure of the machine (a full disk, a read-only file system, a
 * file that vanished) is one line; anything else is a bug and keeps its stack trace. Either way
 * the unfinished temporaries are removed (locks go when the process exits), and the exit status
 * is 1.
 */
let failing = false;
async function failed(e: unknown): Promise<never> {
  // One report: a second error (of work still in flight) waits for the first's exit.
  if (failing) await new Promise(() => undefined);
  failing = true;
  // After a signal, the handler cleans up and sets the exit status; errors of the stopped work
  // (files vanishing under a writer) are expected and not reported.
  if (isAborting()) await new Promise(() => undefined);
  const line = e instanceof OnepixelError ? e.message : failureMessage(e);
  process.stderr.write(
    line !== null
      ? `onepixel: error: ${finalNames(line)}\n`
      : `${(e as Error)?.stack ?? String(e)}\n`,
  );
  await removePending();
  process.exit(1);
}
process.on('uncaughtException', (e) => void failed(e));
process.on('unhandledRejection', (e) => void failed(e));

try {
  await program.parseAsync(process.argv);
} catch (e) {
  await failed(e);
}
