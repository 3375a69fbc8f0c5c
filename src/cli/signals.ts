/**
 * A graceful stop for the long commands (train, audit, EM protect): the first SIGINT or SIGTERM
 * sets a flag that the work checks between steps (its loops yield to the event loop so the
 * handler runs within one step), after which it writes its checkpoint and the command exits with
 * 130 (SIGINT) or 143 (SIGTERM). A second signal exits at once, removing unfinished output, as
 * the default handler in main.ts does.
 */
import { isAborting, removePending } from '../output.js';

const CODES = { SIGINT: 130, SIGTERM: 143 } as const;

export interface GracefulStop {
  /** True once a signal (or an abort) asked the work to stop. */
  requested: () => boolean;
  /** The exit status of the signal received: 130, 143, or null when none came. */
  exitCode: () => number | null;
}

/** Replaces the default signal handlers; `message` is printed when the first signal comes. */
export function stopOnSignals(message: string): GracefulStop {
  let received: keyof typeof CODES | null = null;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.removeAllListeners(signal);
    process.on(signal, () => {
      if (received !== null) {
        process.stderr.write(`\nonepixel: ${signal} again; stopping now\n`);
        void removePending().finally(() => process.exit(CODES[signal]));
        return;
      }
      received = signal;
      process.stderr.write(`\nonepixel: ${signal}: ${message}\n`);
    });
  }
  return {
    requested: () => received !== null || isAborting(),
    exitCode: () => (received === null ? null : CODES[received]),
  };
}
