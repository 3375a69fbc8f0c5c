/**
 * Output folders and files, written so that nothing of the user's is lost:
 * - `checkOutput` runs before any work: an output may not be an input nor contain one, an existing
 *   output is replaced only when a marker file proves onepixel wrote it, and a path that cannot be
 *   created fails at once with the reason;
 * - `holdOutput` makes one process at a time the writer of an output (a lock file beside it);
 * - `writeAtomically`, `replaceDir` and `writeFileAtomic` write under a temporary sibling name and
 *   rename into place, so an interrupted or failed run never leaves a folder or file that looks
 *   complete, never leaves its temporaries behind, and never replaces an output that appeared
 *   meanwhile unless asked to;
 * - `failureMessage` says a failure of the file system in one line naming the output.
 */
import { readFileSync, unlinkSync } from 'node:fs';
import {
  link,
  mkdir,
  open,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { fail, ioErrorMessage, isIoError, reasonOf } from './errors.js';

/** Unfinished temporaries (folders and files) of this process, removed on a failure or signal. */
const pending = new Set<string>();
/** Every temporary name used, with the output it becomes: messages name the output. */
const finals = new Map<string, string>();

/** The sibling `.<name>.<what>-<pid>` of `path`: every temporary of onepixel is named so. */
export function siblingName(path: string, what: string, pid = process.pid): string {
  return join(dirname(path), `.${basename(path)}.${what}-${pid}`);
}

function temporary(path: string): string {
  const tmp = siblingName(path, 'tmp');
  finals.set(tmp, path);
  pending.add(tmp);
  return tmp;
}

/** `path` with any temporary folder in it named as the output it becomes. */
function asFinal(path: string): string {
  for (let changed = true; changed;) {
    changed = false;
    for (const [tmp, final] of finals)
      if (path === tmp || path.startsWith(tmp + sep)) {
        path = final + path.slice(tmp.length);
        changed = true;
      }
  }
  return path;
}

/** `text` (a message) with every temporary path in it named as the output it becomes. */
export function finalNames(text: string): string {
  for (const [tmp, final] of [...finals].sort((a, b) => b[0].length - a[0].length))
    text = text.split(tmp).join(final);
  return text;
}

/** The output an error happened while writing, set by the innermost atomic writer. */
const OUTPUT = Symbol('onepixel output');

function tagOutput(e: unknown, out: string): void {
  if (isIoError(e) && !(OUTPUT in e)) Object.assign(e, { [OUTPUT]: out });
}

/**
 * One line for an error the user can act on (a failure of the file system: the path, the
 * operation, the reason, and the output that was being written), or null for a bug.
 */
export function failureMessage(e: unknown): string | null {
  if (!isIoError(e)) return null;
  const out = (e as { [OUTPUT]?: string })[OUTPUT];
  const line = ioErrorMessage(e, out ?? null, asFinal);
  return out === undefined ? line : `${line}; ${out} was not written`;
}

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
    if (e instanceof Error && e.code !== 'EEXIST')
      return `cannot create ${d} (${e.code}): ${reasonOf(e.code)}`;
  }
  return null;
}

/**
 * Creates the folder `dir` and its missing parents, or fails in one line naming `what` and the
 * reason (Node's recursive mkdir says ENOENT on a read-only file system).
 */
export async function createFolder(dir: string, what: string = dir): Promise<void> {
  const why = await makeDirs(dir);
  if (why !== null) fail(`${what}: cannot be created: ${why}`);
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

const appeared = (path: string) =>
  `${path}: appeared while onepixel was writing it (another program?); it was not replaced, ` +
  "and this run's output was discarded";

/**
 * Puts the finished folder `tmp` at `dir`. With `replace` (the default) an existing `dir` is
 * moved aside first and put back if the last rename fails; without, an existing `dir` is an error
 * (rename onto a non-empty folder fails, so one that appears at the last moment is kept too).
 */
export async function replaceDir(tmp: string, dir: string, replace = true): Promise<void> {
  if (await exists(dir)) {
    if (!replace) fail(appeared(dir));
    const old = siblingName(dir, 'old');
    finals.set(old, dir);
    await rm(old, { recursive: true, force: true });
    await rename(dir, old);
    try {
      await rename(tmp, dir);
    } catch (e) {
      await rename(old, dir).catch(() => undefined);
      throw e;
    }
    await rm(old, { recursive: true, force: true }).catch(() => undefined);
  } else {
    try {
      await rename(tmp, dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') fail(appeared(dir));
      throw e;
    }
  }
}

export interface AtomicOptions {
  /** Replace an output already there (default true); false refuses one that appeared. */
  replace?: boolean;
}

/**
 * Writes under a temporary name and renames, so a reader never sees half a file; on a failure the
 * temporary file is removed and an earlier `path` stays as it was. Without `replace`, a `path`
 * that exists (or appears at the last moment) is kept and the write fails.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicOptions = {},
): Promise<void> {
  const tmp = temporary(path);
  try {
    await writeFile(tmp, data);
    throwIfAborting();
    if (options.replace ?? true) await rename(tmp, path);
    else {
      // link() refuses an existing target, where rename() would replace it.
      const e = await link(tmp, path).catch((err: NodeJS.ErrnoException) => err);
      if (e?.code === 'EEXIST') fail(appeared(path));
      if (e) {
        if (await exists(path)) fail(appeared(path));
        await rename(tmp, path); // a file system without hard links
      }
    }
  } catch (e) {
    tagOutput(e, path);
    throw e;
  } finally {
    pending.delete(tmp);
    await rm(tmp, { force: true }).catch(() => undefined);
  }
}

/**
 * Runs `fill` on a fresh temporary folder next to `out` and renames it to `out` when it
 * succeeds; call `checkOutput` first. On a failure or a signal the temporary folder is removed and
 * an earlier `out` stays as it was. Without `replace`, an `out` that appeared meanwhile is kept
 * and the write fails.
 */
export async function writeAtomically(
  out: string,
  fill: (dir: string) => Promise<void>,
  options: AtomicOptions = {},
): Promise<void> {
  const why = await makeDirs(dirname(resolve(out)));
  if (why !== null) fail(`${out}: cannot be created: ${why}`);
  const tmp = temporary(out);
  try {
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp);
    // A signal may have come while the folder was being made: removePending then no longer sees
    // it in time, so stop here (the finally removes it).
    throwIfAborting();
    await fill(tmp);
    throwIfAborting();
    await replaceDir(tmp, out, options.replace ?? true);
  } catch (e) {
    tagOutput(e, out);
    throw e;
  } finally {
    pending.delete(tmp);
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** A lock file's contents: who holds the output. */
interface Holder {
  pid: number;
  /** The process's start time (clock ticks since boot, /proc/<pid>/stat), null where unknown. */
  start: string | null;
  host: string;
  command: string;
  since: string;
}

/** Lock files this process holds. */
const held = new Set<string>();
process.on('exit', () => {
  for (const lock of held)
    try {
      unlinkSync(lock);
    } catch {
      // already gone
    }
});

/** The lock file of `out`: `.<name>.lock` beside it (`.<name>.<part>.lock` for a part of it). */
export function lockPath(out: string, part?: string): string {
  const abs = resolve(out);
  return join(dirname(abs), `.${basename(abs)}${part ? '.' + part : ''}.lock`);
}

/** Fields of /proc/<pid>/stat from the state on, or null (no such process, or no /proc). */
function procStat(pid: number): string[] | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** True unless the holder is known to be gone: no such process, a zombie, or another one. */
function holderAlive(h: Holder): boolean {
  if (h.host !== hostname()) return true; // another machine's process: cannot tell
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const st = procStat(h.pid);
  if (st === null) return true;
  if (st[0] === 'Z' || st[0] === 'X') return false;
  // The pid was given to another process since: its start time differs.
  return h.start === null || st[19] === h.start;
}

function parseHolder(text: string): Holder | null {
  try {
    const h = JSON.parse(text) as Holder;
    return Number.isSafeInteger(h.pid) && typeof h.host === 'string' ? h : null;
  } catch {
    return null;
  }
}

/**
 * After a holder died (kill -9, power loss): its temporary folder or file is removed, and an
 * output it had moved aside to replace (`.<name>.old-<pid>`) is put back when nothing took its
 * place.
 */
async function recoverFrom(out: string, pid: number): Promise<void> {
  const old = siblingName(out, 'old', pid);
  if (await exists(old)) {
    if (await exists(out)) await rm(old, { recursive: true, force: true });
    else await rename(old, out);
  }
  await rm(siblingName(out, 'tmp', pid), { recursive: true, force: true });
}

/** Clears a lock whose holder is gone; false when someone else did first. */
async function clearStale(lock: string, found: string): Promise<boolean> {
  const moved = `${lock}.stale-${process.pid}`;
  if (
    await rename(lock, moved).then(
      () => false,
      () => true,
    )
  )
    return false;
  const got = await readFile(moved, 'utf8').catch(() => null);
  if (got !== found) {
    // A fresh lock taken between our read and the rename: give it back.
    await link(moved, lock).catch(() => undefined);
    await rm(moved, { force: true });
    return false;
  }
  await rm(moved, { force: true });
  return true;
}

/**
 * Makes this process the one writer of `out` (a folder or file, `part` naming a part of it that
 * writers share, such as one shard): creates the lock file beside it with O_EXCL, holding the
 * pid, start time, host and command line. A second process is refused at once, naming the holder;
 * a lock whose holder is gone is cleared (and what it left half-done is cleaned up). The lock is
 * removed by the returned function, and in any case when the process exits.
 */
export async function holdOutput(
  out: string,
  flag: string,
  part?: string,
): Promise<() => Promise<void>> {
  const lock = lockPath(out, part);
  const what = `${flag} ${out}${part ? ` (${part})` : ''}`;
  if (held.has(lock)) fail(`${what}: already being written by this process`);
  const me: Holder = {
    pid: process.pid,
    start: procStat(process.pid)?.[19] ?? null,
    host: hostname(),
    command: ['onepixel', ...process.argv.slice(2)].join(' '),
    since: new Date().toISOString(),
  };
  const release = async () => {
    if (!held.delete(lock)) return;
    await unlink(lock).catch(() => undefined);
  };
  for (let attempt = 0; attempt < 50; attempt++) {
    const fh = await open(lock, 'wx').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'EEXIST') return null;
      tagOutput(e, out);
      throw e;
    });
    if (fh !== null) {
      held.add(lock);
      try {
        await fh.writeFile(JSON.stringify(me) + '\n');
      } catch (e) {
        await fh.close().catch(() => undefined);
        await release();
        tagOutput(e, out);
        throw e;
      } finally {
        await fh.close().catch(() => undefined);
      }
      return release;
    }
    const found = await readFile(lock, 'utf8').catch(() => null);
    if (found === null) continue; // released meanwhile
    const h = parseHolder(found);
    if (h === null) {
      // Being written this moment, or left empty by a power loss: stale once a few seconds old.
      const s = await stat(lock).catch(() => null);
      if (s === null || Date.now() - s.mtimeMs < 5000) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      await clearStale(lock, found);
      continue;
    }
    if (holderAlive(h))
      fail(
        `${what}: in use by another onepixel (pid ${h.pid}` +
          (h.host === hostname() ? '' : ` on ${h.host}`) +
          `, since ${h.since}: ${h.command}); wait for it to finish (if that process is gone, ` +
          `remove ${lock})`,
      );
    if (await clearStale(lock, found)) {
      process.stderr.write(
        `onepixel: ${what}: cleared the lock of pid ${h.pid} (${h.command}), which is no ` +
          'longer running\n',
      );
      await recoverFrom(resolve(out), h.pid);
    }
  }
  fail(`${what}: could not take the lock ${lock}`);
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
