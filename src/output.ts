/**
 * Output folders and files, written so that nothing of the user's is lost:
 * - `checkOutput` runs before any work: an output may not be an input nor contain one, an existing
 *   output is replaced only when a marker file proves onepixel wrote it, and a path that cannot be
 *   created fails at once with the reason;
 * - `writeAtomically`, `replaceDir` and `writeFileAtomic` write under a temporary sibling name and
 *   rename into place, so an interrupted run never leaves a folder or file that looks complete.
 */
import { mkdir, readdir, realpath, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
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

/** The real path of `path`, resolving symlinks in its longest existing prefix. */
async function realish(path: string): Promise<string> {
  const abs = resolve(path);
  try {
    return await realpath(abs);
  } catch {
    const parent = dirname(abs);
    return parent === abs ? abs : join(await realish(parent), basename(abs));
  }
}

/** The reason `dir` and its missing parents cannot be created, or null once they exist. */
async function makeDirs(dir: string): Promise<string | null> {
  // Node's recursive mkdir retries forever on some paths (/proc/none/x): one level at a time.
  const missing: string[] = [];
  let at = resolve(dir);
  for (;;) {
    const s = await stat(at).catch((e: NodeJS.ErrnoException) => e);
    if (!(s instanceof Error)) {
      if (!s.isDirectory()) return `${at} is not a folder`;
      break;
    }
    if (s.code !== 'ENOENT') return `${at}: ${s.code ?? s.message}`;
    missing.unshift(at);
    if (dirname(at) === at) break;
    at = dirname(at);
  }
  for (const d of missing) {
    const e = await mkdir(d).catch((err: NodeJS.ErrnoException) => err);
    if (e instanceof Error && e.code !== 'EEXIST') return `cannot create ${d} (${e.code})`;
  }
  return null;
}

/** Fails unless a folder can be made next to `out` (its parent is created if missing). */
async function checkWritable(out: string, flag: string): Promise<void> {
  const parent = dirname(resolve(out));
  const why = await makeDirs(parent);
  if (why !== null) fail(`${flag} ${out}: cannot be created: ${why}`);
  const probe = join(parent, `.${basename(out)}.probe-${process.pid}`);
  const e = await mkdir(probe).catch((err: NodeJS.ErrnoException) => err);
  if (e instanceof Error && e.code !== 'EEXIST')
    fail(`${flag} ${out}: cannot be created: ${parent} is not writable (${e.code})`);
  await rmdir(probe).catch(() => undefined);
}

export interface OutputRules {
  /** The flag naming the output, for messages (`--out`, `--checkpoint`). */
  flag: string;
  /** Replace an existing output (only one onepixel wrote). */
  force: boolean;
  /** An existing output may be kept to continue it (a checkpoint with --resume). */
  resume?: boolean;
  /** The file that proves onepixel wrote a folder: manifest.json, checkpoint.json, em.json. */
  marker: string;
  /** Paths the run reads: the output may be none of them nor a folder containing one. */
  inputs: Array<string | undefined>;
}

/** True when `dir` holds `marker` or nothing at all (nothing there can be lost). */
async function ownedByOnepixel(dir: string, marker: string): Promise<boolean> {
  const s = await stat(dir);
  if (!s.isDirectory()) return false;
  if (await exists(join(dir, marker))) return true;
  return (await readdir(dir)).length === 0;
}

/**
 * Checks, before any long work, that `out` may be written under `rules`; fails in one line naming
 * the flag otherwise. Returns whether `out` exists (with --resume, the output to continue).
 */
export async function checkOutput(out: string, rules: OutputRules): Promise<boolean> {
  const { flag } = rules;
  const real = await realish(out);
  for (const input of rules.inputs) {
    if (input === undefined) continue;
    const inReal = await realish(input);
    if (inReal === real || inReal.startsWith(real === sep ? sep : real + sep))
      fail(
        `${flag} ${out}: ${inReal === real ? 'is' : 'contains'} the input ${input}; onepixel ` +
          'never replaces its input: choose another folder',
      );
  }
  const there = await exists(out);
  if (there) {
    if (!(await ownedByOnepixel(out, rules.marker)))
      fail(
        `${flag} ${out}: exists and was not written by onepixel (no ${rules.marker}); ` +
          'refusing to replace it, even with --force',
      );
    if (!rules.force && !rules.resume)
      fail(
        `${flag} ${out}: already exists; pass --force to replace it` +
          (rules.marker === 'manifest.json' ? '' : ' or --resume to continue it'),
      );
  }
  await checkWritable(out, flag);
  return there;
}

/**
 * Deletes an output that `checkOutput` accepted (with --force), checking the marker again: a
 * folder onepixel did not write is never removed.
 */
export async function removeOutput(out: string, rules: OutputRules): Promise<void> {
  if (!(await exists(out))) return;
  if (!(await ownedByOnepixel(out, rules.marker)))
    fail(`${rules.flag} ${out}: was not written by onepixel (no ${rules.marker}); not removed`);
  await rm(out, { recursive: true, force: true });
}

/** Puts the finished folder `tmp` at `dir`, replacing what was there only once `tmp` is in place. */
export async function replaceDir(tmp: string, dir: string): Promise<void> {
  if (await exists(dir)) {
    const old = join(dirname(dir), `.${basename(dir)}.old-${process.pid}`);
    await rm(old, { recursive: true, force: true });
    await rename(dir, old);
    await rename(tmp, dir);
    await rm(old, { recursive: true, force: true });
  } else {
    await rename(tmp, dir);
  }
}

/** Writes under a temporary name and renames, so a reader never sees half a file. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/**
 * Runs `fill` on a fresh temporary folder next to `out` and renames it to `out` when it
 * succeeds; call `checkOutput` first. On a signal, `removePending` deletes the temporary folder.
 */
export async function writeAtomically(
  out: string,
  fill: (dir: string) => Promise<void>,
): Promise<void> {
  const why = await makeDirs(dirname(resolve(out)));
  if (why !== null) fail(`${out}: cannot be created: ${why}`);
  const tmp = join(dirname(out), `.${basename(out)}.tmp-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  pending.add(tmp);
  try {
    // A signal may have come while the folder was being made: removePending then no longer sees
    // it in time, so stop here (the finally removes it).
    throwIfAborting();
    await fill(tmp);
    throwIfAborting();
    await replaceDir(tmp, out);
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

/** Stops long work after a signal: call between chunks (it also lets the signal be delivered). */
export function throwIfAborting(): void {
  if (aborting) fail('interrupted');
}

/** Lets pending events (a signal's handler) run: long synchronous loops call it every chunk. */
export async function yieldToSignals(): Promise<void> {
  await new Promise<void>((r) => setImmediate(r));
  throwIfAborting();
}

/**
 * Stops and removes unfinished temporary folders; the CLI calls it on SIGINT/SIGTERM before it
 * exits. Writers may still have a few files in flight, so removal is repeated until every
 * folder stays gone.
 */
export async function removePending(): Promise<void> {
  aborting = true;
  // Folders registered after the signal (a write that was about to start) count too.
  const dirs = new Set<string>();
  for (let attempt = 0, clean = 0; attempt < 200 && clean < 2; attempt++) {
    for (const p of pending) dirs.add(p);
    await Promise.all(
      [...dirs].map((p) => rm(p, { recursive: true, force: true }).catch(() => undefined)),
    );
    const left = await Promise.all([...dirs].map(exists));
    clean = left.some(Boolean) ? 0 : clean + 1;
    await new Promise((r) => setTimeout(r, 25));
  }
}
