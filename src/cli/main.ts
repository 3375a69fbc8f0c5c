#!/usr/bin/env node
/** The `onepixel` command: parses arguments, runs a subcommand, turns errors into exit codes. */
import { Command } from 'commander';
import { OnepixelError } from '../errors.js';
import { isAborting, removePending } from '../output.js';
import { VERSION } from '../version.js';
import { protectCommand } from './protect.js';
import { inspectCommand } from './inspect.js';
import { trainCommand } from './train.js';
import { auditCommand } from './audit.js';
import { doctorCommand } from './doctor.js';
import { slurmCommand } from './slurm.js';

const program = new Command()
  .name('onepixel')
  .description('Make image datasets unlearnable with the One-Pixel Shortcut, and prove it.')
  .version(VERSION)
  .showHelpAfterError('(run with --help for usage)');
program.addCommand(protectCommand());
program.addCommand(inspectCommand());
program.addCommand(trainCommand());
program.addCommand(auditCommand());
program.addCommand(doctorCommand());
program.addCommand(slurmCommand());

// Ctrl-C or kill: remove the half-written output folder, then exit with the signal's status.
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.on(signal, () => {
    process.stderr.write(`\nonepixel: interrupted (${signal}); removing unfinished output\n`);
    void removePending().finally(() => process.exit(code));
  });
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // After a signal, the handler cleans up and sets the exit status; errors of the stopped work
  // (files vanishing under a writer) are expected and not reported.
  if (isAborting()) await new Promise(() => undefined);
  if (e instanceof OnepixelError) {
    process.stderr.write(`onepixel: error: ${e.message}\n`);
    await removePending();
    process.exit(1);
  }
  throw e;
}
