/**
 * Atomic output folders: everything is written under a temporary sibling name and renamed into
 * place at the end, so an interrupted run never leaves a folder that looks complete.
 */
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fail } from './errors.js';

const pending = new Set<string>();

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Refuses an existing output unless `force`; call before any long work. */
export async function checkOutput(out: string, force: boolean): Promise<void> {
  if (!force && (await exists(out))) fail(`${out}: already exists; pass --force to replace it`);
}

/** Runs `fill` on a fresh temporary folder and renames it to `out` when it succeeds. */
export async function writeAtomically(
  out: string,
  force: boolean,
  fill: (dir: string) => Promise<void>,
): Promise<void> {
  await checkOutput(out, force);
  await mkdir(dirname(out), { recursive: true });
  const tmp = join(dirname(out), `.${basename(out)}.tmp-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  pending.add(tmp);
  try {
    await fill(tmp);
    if (await exists(out)) {
      const old = join(dirname(out), `.${basename(out)}.old-${process.pid}`);
      await rename(out, old);
      await rename(tmp, out);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, out);
    }
  } finally {
    pending.delete(tmp);
    await rm(tmp, { recursive: true, force: true });
  }
}

let aborting = false;

/** True once a signal asked the run to stop: work in progress should stop, not report errors. */
export function isAborting(): boolean {
  return aborting;
}

/**
 * Stops and removes unfinished temporary folders; the CLI calls it on SIGINT/SIGTERM before it
 * exits. Writers may still have a few files in flight, so removal is repeated until every
 * folder stays gone.
 */
export async function removePending(): Promise<void> {
  aborting = true;
  const dirs = [...pending];
  for (let attempt = 0, clean = 0; attempt < 200 && clean < 2; attempt++) {
    await Promise.all(
      dirs.map((p) => rm(p, { recursive: true, force: true }).catch(() => undefined)),
    );
    const left = await Promise.all(dirs.map(exists));
    clean = left.some(Boolean) ? 0 : clean + 1;
    await new Promise((r) => setTimeout(r, 25));
  }
}
