/**
 * The GPU engine's own diagnostics (Dawn's "Warning: …" lines, printed by native code straight to
 * file descriptor 2) stay out of the terminal unless --verbose. Run on whatever adapter this
 * machine has (Mesa's software one on a machine without a GPU). stderr goes through a shell pipe
 * and to a file, as in a terminal session: Node's own child pipes are sockets, which cannot be
 * reopened through /proc, and there the messages stay visible (see quietStderr in webgpu.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { it } from 'node:test';
import { tempDirs } from './helpers.js';

const MAIN = path.resolve('dist/src/cli/main.js');
const newDir = tempDirs('verbose');

/** `onepixel doctor` with stderr through a pipe (`2>&1 >out | cat`). */
function doctorPiped(dir: string, flags: string) {
  const out = path.join(dir, `out${flags}.txt`);
  const cmd = `"${process.execPath}" "${MAIN}" doctor ${flags} 2>&1 >"${out}" | cat`;
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { stderr: r.stdout, out };
}

it('onepixel doctor: Dawn warnings only with --verbose, same report either way', async (t) => {
  const dir = await newDir();
  const loud = doctorPiped(dir, '--verbose');
  const quiet = doctorPiped(dir, '');
  const report = await readFile(quiet.out, 'utf8');
  assert.equal(report, await readFile(loud.out, 'utf8'));
  assert.match(report, /^webgpu /m);
  assert.equal(quiet.stderr, '');
  // stderr to a file (`2>file`), the other way a shell hands it over.
  const errFile = path.join(dir, 'err.txt');
  const r = spawnSync('sh', [
    '-c',
    `"${process.execPath}" "${MAIN}" doctor >/dev/null 2>"${errFile}"`,
  ]);
  assert.equal(r.status, 0);
  assert.equal(await readFile(errFile, 'utf8'), '');
  if (!/^Warning: /m.test(loud.stderr)) {
    t.skip(
      `Dawn printed no warning here even with --verbose (stderr: ${JSON.stringify(loud.stderr)})`,
    );
    return;
  }
  // Dawn's adapter messages, so --verbose is what brings them back (and the check above ran).
  assert.match(loud.stderr, /While initializing adapter|artificially reduced/);
});
