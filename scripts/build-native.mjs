#!/usr/bin/env node
/* global process, console */
// Builds the optional native (oneDNN) backend: native/ → native/build/Release/onepixel_native.node.
// Run by `npm ci` / `npm install` (the package's install script). It never fails the install:
// when oneDNN's headers, a C++ compiler, make or python3 (node-gyp's) are missing, or the build
// fails, it prints one line saying what is missing and how to install it, and exits 0; onepixel
// then runs on wasm. `onepixel doctor` says the same. Set ONEPIXEL_NATIVE=0 to skip the build.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { missingForNative, NATIVE_FIX, NODE_DIR } from './native-prereqs.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const say = (line) => console.log(`onepixel: ${line}`);

if (process.env.ONEPIXEL_NATIVE === '0') {
  say('native backend build skipped (ONEPIXEL_NATIVE=0)');
  process.exit(0);
}
const missing = missingForNative();
if (missing.length > 0) {
  say(`native backend not built: missing ${missing.join(', ')}; to build it: ${NATIVE_FIX}`);
  process.exit(0);
}
const require = createRequire(import.meta.url);
let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  say('native backend not built: node-gyp is not installed (run npm ci)');
  process.exit(0);
}
// Node's own headers, beside the binary (checked above): node-gyp downloads nothing.
const args = [gyp, 'rebuild', '-j', 'max', `--nodedir=${NODE_DIR}`];
const t0 = Date.now();
const r = spawnSync(process.execPath, args, { cwd: join(root, 'native'), encoding: 'utf8' });
if (r.status !== 0) {
  const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
  console.log(tail);
  say(`native backend build failed (above); onepixel will use wasm. Retry: npm run build:native`);
  process.exit(0);
}
say(`native backend built in ${((Date.now() - t0) / 1000).toFixed(0)} s (oneDNN)`);
