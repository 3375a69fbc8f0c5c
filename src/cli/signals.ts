/**
 * Ctrl-C and kill. By default a signal stops the run at once, removes its unfinished output and
 * exits 130 (SIGINT) or 143 (SIGTERM). The long commands (train, audit, EM protect) take a
 * graceful stop instead: the first signal sets a flag that the work checks between steps (its
 * loops yield to the event loop, so the handler runs within one step), after which it writes its
 * checkpoint and exits with the same status. A second signal exits at once, as the default does.
 */
import { isAborting, removePending } from '../output.js';

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

export interface GracefulStop {
  /** True once a signal (or an abort) asked the work to stop. */
  requested: () => boolean;
  /** The exit status of the signal received: 130, 143, or null when none came. */
  exitCode: () => number | null;
}

/** Replaces the signal handlers with a graceful stop; `message` is printed at the first signal. */
export function stopOnSignals(message: string): GracefulStop {
  let received: StopSignal | null = null;
  onStopSignals((signal) => {
    if (received !== null) {
      process.stderr.write(`\nonepixel: ${signal} again; stopping now\n`);
      void removePending().finally(() => process.exit(EXIT_CODES[signal]));
      return;
    }
    received = signal;
    process.stderr.write(`\nonepixel: ${signal}: ${message}\n`);
  });
  return {
    requested: () => received !== null || isAborting(),
    exitCode: () => (received === null ? null : EXIT_CODES[received]),
  };
}
