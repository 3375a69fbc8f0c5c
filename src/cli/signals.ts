/** Ctrl-C and kill: stop the run, remove its unfinished output, exit 130 (SIGINT) or 143 (SIGTERM). */
import { removePending } from '../output.js';

export type StopSignal = 'SIGINT' | 'SIGTERM';
/** The exit status after a signal: 128 + its number, as a shell reports it. */
export const EXIT_CODES: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143 };

/** Removes the half-written output folder, then exits with the signal's status. */
export function abort(signal: StopSignal): void {
  process.stderr.write(`\nonepixel: interrupted (${signal}); removing unfinished output\n`);
  void removePending().finally(() => process.exit(EXIT_CODES[signal]));
}

/** Makes `handler` the one reaction to SIGINT and SIGTERM (the default one: `abort`). */
export function onStopSignals(handler: (signal: StopSignal) => void = abort): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.removeAllListeners(signal);
    process.on(signal, () => handler(signal));
  }
}
