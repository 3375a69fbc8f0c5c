/** Lets timers and signal handlers run: synchronous engine steps would otherwise starve them. */
export function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
