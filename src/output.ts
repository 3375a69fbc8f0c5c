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

/** Removes unfinished temporary folders; the CLI calls it on SIGINT/SIGTERM before exiting. */
export async function removePending(): Promise<void> {
  await Promise.all([...pending].map((p) => rm(p, { recursive: true, force: true })));
}
