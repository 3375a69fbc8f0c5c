/**
 * Long transforms (a pass over 50,000 images, a linear fit) give the event loop a turn now and
 * then, so that a signal's handler runs, and stop when their caller asks them to.
 */

/** Thrown by a transform whose `shouldStop` said yes; the caller ends its work. */
export class Stopped extends Error {
  constructor() {
    super('stopped');
  }
}

/** Lets timers and signal handlers run, then throws Stopped if a stop was asked for. */
export async function breathe(shouldStop?: () => boolean): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  if (shouldStop?.()) throw new Stopped();
}

/** The result of `work`, or null when it ended with Stopped (its caller was asked to stop). */
export async function unlessStopped<T>(work: Promise<T>): Promise<T | null> {
  try {
    return await work;
  } catch (e) {
    if (e instanceof Stopped) return null;
    throw e;
  }
}
