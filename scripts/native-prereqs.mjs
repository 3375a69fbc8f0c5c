/* global process */
// What the native backend needs to build, checked without running anything heavy; shared by
// scripts/build-native.mjs and `onepixel doctor`.
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

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

/** Debian package names (with what each provides) that are missing for the build. */
export function missingForNative() {
  const missing = [];
  if (!existsSync(DNNL_HEADER)) missing.push(`libdnnl-dev (${DNNL_HEADER})`);
  if (!onPath('g++') && !onPath('c++')) missing.push('g++ (a C++ compiler)');
  if (!onPath('make')) missing.push('make');
  if (!onPath('python3')) missing.push('python3 (for node-gyp)');
  return missing;
}
