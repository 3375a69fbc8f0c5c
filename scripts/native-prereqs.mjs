/* global process */
// What the native backend needs to build, checked without running anything heavy; shared by
// scripts/build-native.mjs and `onepixel doctor`.
import { existsSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

export const DNNL_HEADER = '/usr/include/oneapi/dnnl/dnnl.hpp';
/** The command that installs everything and rebuilds the addon. */
export const NATIVE_FIX = 'apt-get install -y libdnnl-dev g++ make python3 && npm run build:native';

/** The first executable `name` on PATH, or null. */
export function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

/** Node's own folder, whose include/node holds the headers an addon builds against. */
export const NODE_DIR = join(dirname(process.execPath), '..');

/** Whether Node's headers are installed beside it (else node-gyp would download them). */
export function nodeHeaders() {
  return existsSync(join(NODE_DIR, 'include', 'node', 'node_api.h'));
}

/** Debian package names (with what each provides) that are missing for the build. */
export function missingForNative() {
  const missing = [];
  if (!existsSync(DNNL_HEADER)) missing.push(`libdnnl-dev (${DNNL_HEADER})`);
  if (!onPath('g++') && !onPath('c++')) missing.push('g++ (a C++ compiler)');
  if (!onPath('make')) missing.push('make');
  if (!onPath('python3')) missing.push('python3 (for node-gyp)');
  if (!nodeHeaders())
    missing.push(`Node's headers (${join(NODE_DIR, 'include', 'node')}; Debian: libnode-dev)`);
  return missing;
}
