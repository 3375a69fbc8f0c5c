/**
 * Whether the libraries underneath (Dawn, the GPU engine) may print their own diagnostics into
 * the user's terminal: off unless the CLI's global `--verbose` (or a library caller) turns it on.
 */
let verbose = false;

export function setVerbose(on: boolean): void {
  verbose = on;
}

export function isVerbose(): boolean {
  return verbose;
}
