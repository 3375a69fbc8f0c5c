/** An error a user can act on: the message names the file, record or flag at fault. */
export class OnepixelError extends Error {
  override name = 'OnepixelError';
}

export function fail(message: string): never {
  throw new OnepixelError(message);
}

/** The failures of the machine (not of onepixel) that a user can act on, in words. */
const REASONS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large for the file system',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or folder (removed while onepixel ran?)',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'is a folder',
  EEXIST: 'already exists',
  ENOTEMPTY: 'folder not empty',
  EXDEV: 'on another file system',
  EIO: 'input/output error (a failing disk or network file system)',
  ESTALE: 'stale network file handle',
  EBUSY: 'resource busy',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many symbolic links',
  ETXTBSY: 'file busy',
};

/** The reason an errno code stands for, in words (the code itself when unknown). */
export function reasonOf(code: string | undefined): string {
  return (code !== undefined && REASONS[code]) || (code ?? 'unknown error');
}

/** The system calls by what they do, for messages. */
const OPERATIONS: Record<string, string> = {
  open: 'open',
  read: 'read',
  write: 'write',
  mkdir: 'create folder',
  rmdir: 'remove folder',
  rm: 'remove',
  unlink: 'remove',
  rename: 'rename',
  link: 'link',
  stat: 'stat',
  lstat: 'stat',
  scandir: 'list folder',
  opendir: 'list folder',
  copyfile: 'copy',
  chmod: 'chmod',
  fsync: 'sync',
  close: 'close',
  ftruncate: 'truncate',
  realpath: 'resolve',
};

/** True for an error of the file system that `ioErrorMessage` can say in one line. */
export function isIoError(e: unknown): e is NodeJS.ErrnoException {
  return (
    e instanceof Error &&
    typeof (e as NodeJS.ErrnoException).code === 'string' &&
    (e as NodeJS.ErrnoException).code! in REASONS &&
    typeof (e as NodeJS.ErrnoException).syscall === 'string'
  );
}

/**
 * One line for an error of the file system: the path, the operation and the reason. `where` names
 * the path when the error carries none (a write on an open file); `rename` maps a temporary path
 * to the output it becomes.
 */
export function ioErrorMessage(
  e: NodeJS.ErrnoException,
  where: string | null = null,
  rename: (p: string) => string = (p) => p,
): string {
  const code = e.code ?? 'EIO';
  const syscall = e.syscall ?? 'io';
  const op = OPERATIONS[syscall] ?? syscall;
  const reason = REASONS[code] ?? e.message;
  const dest = (e as { dest?: string }).dest;
  const path = e.path !== undefined ? rename(e.path) : where;
  const target = dest !== undefined ? `${path} → ${rename(dest)}` : path;
  return `${target ?? '(a file)'}: ${op} failed: ${reason} (${code})`;
}

/** Gives an error of a write on an open file (which carries no path) the path written. */
export function withPath(e: unknown, path: string): unknown {
  if (isIoError(e) && e.path === undefined) e.path = path;
  return e;
}
