#!/usr/bin/env node
// Packs what a run on the GPU machine needs into .gpu/ (git-ignored; see ../shared/docs/gpu.md):
// that machine has no Node.js, no npm registry and no Vulkan loader, and only 64 MiB travel.
//
//   node scripts/gpu-pack.mjs [--train-per-batch N] [--app-only]   (after `npm run build`)
//
// .gpu/node.xz      this machine's node binary
// .gpu/gl/*.deb     Debian's Vulkan/EGL loaders for amd64, unpacked there by scripts/gpu-run.sh
// .gpu/app.tar.xz   dist/, package.json, bench/*.py and the production node_modules, pruned to the
//                   files Node loads (tfjs bundles' package.json + main file, Dawn for linux-x64;
//                   sharp and tar, loaded only for image folders and archives, are left out)
// .gpu/c10.tar.xz   (not with --app-only) a clean CIFAR-10 subset from ../shared/data: the first N records of each
//                   training batch file (default 2000: 10,000 images) and the 1,000 exact test
//                   records (test_batch_exact_first1000.bin as test_batch.bin)
import { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  openSync,
  readSync,
  closeSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, '.gpu');
const stage = join(out, 'stage');
const args = process.argv.slice(2);
const perBatch = Number(args[args.indexOf('--train-per-batch') + 1] || 2000);
const LEFT_OUT = new Set(['sharp', 'tar']);
const RECORD = 3073;

const sh = (cmd, a, opts = {}) => execFileSync(cmd, a, { stdio: 'inherit', ...opts });

rmSync(stage, { recursive: true, force: true });
mkdirSync(join(stage, 'app', 'node_modules'), { recursive: true });

// The app: compiled code, the peer scripts, production dependencies.
cpSync(join(root, 'dist'), join(stage, 'app', 'dist'), { recursive: true });
cpSync(join(root, 'package.json'), join(stage, 'app', 'package.json'));
mkdirSync(join(stage, 'app', 'bench'));
for (const f of ['peer_train_torch.py', 'peer_quick_torch.py', 'peer_em_torch.py'])
  cpSync(join(root, 'bench', f), join(stage, 'app', 'bench', f));

function copyPackage(name) {
  const src = join(root, 'node_modules', name);
  const dst = join(stage, 'app', 'node_modules', name);
  const pkg = JSON.parse(readFileSync(join(src, 'package.json'), 'utf8'));
  mkdirSync(dst, { recursive: true });
  cpSync(join(src, 'package.json'), join(dst, 'package.json'));
  if (name.startsWith('@tensorflow/')) cpSync(join(src, pkg.main), join(dst, pkg.main));
  else if (name === 'webgpu') {
    cpSync(join(src, 'index.js'), join(dst, 'index.js'));
    cpSync(join(src, 'dist', 'linux-x64'), join(dst, 'dist', 'linux-x64'), { recursive: true });
  } else cpSync(src, dst, { recursive: true });
  return Object.keys(pkg.dependencies ?? {});
}

const seen = new Set();
const todo = Object.keys(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).dependencies);
while (todo.length) {
  const name = todo.pop();
  if (seen.has(name) || LEFT_OUT.has(name) || name.startsWith('@types/')) continue;
  seen.add(name);
  if (!existsSync(join(root, 'node_modules', name, 'package.json'))) continue; // optional
  todo.push(...copyPackage(name));
}
sh('tar', ['-C', join(stage, 'app'), '-cJf', join(out, 'app.tar.xz'), '.'], {
  env: { ...process.env, XZ_OPT: '-6 -T2' },
});

// The data subset.
if (args.includes('--app-only')) {
  rmSync(stage, { recursive: true, force: true });
  process.exit(0);
}
const data = join(root, '..', 'shared', 'data', 'cifar-10-batches-bin');
const c10 = join(stage, 'c10', 'c10-clean');
mkdirSync(c10, { recursive: true });
function head(file, records, to) {
  const buf = Buffer.alloc(records * RECORD);
  const fd = openSync(join(data, file), 'r');
  const got = readSync(fd, buf, 0, buf.length, 0);
  closeSync(fd);
  if (got !== buf.length) throw new Error(`${file}: only ${got} bytes`);
  writeFileSync(join(c10, to), buf);
}
for (let i = 1; i <= 5; i++) head(`data_batch_${i}.bin`, perBatch, `data_batch_${i}.bin`);
head('test_batch_exact_first1000.bin', 1000, 'test_batch.bin');
cpSync(join(data, 'batches.meta.txt'), join(c10, 'batches.meta.txt'));
sh('tar', ['-C', join(stage, 'c10'), '-cJf', join(out, 'c10.tar.xz'), '.'], {
  env: { ...process.env, XZ_OPT: '-6 -T2' },
});

// Node and the loaders.
if (!existsSync(join(out, 'node.xz')))
  writeFileSync(
    join(out, 'node.xz'),
    execFileSync('xz', ['-T2', '-6', '-c', process.execPath], { maxBuffer: 1 << 28 }),
  );
if (!existsSync(join(out, 'gl'))) {
  mkdirSync(join(out, 'gl'));
  mkdirSync('/tmp/amd64/partial', { recursive: true });
  const o = [
    '-oAPT::Architecture=amd64',
    '-oAPT::Architectures=amd64',
    '-oDir::State::Lists=/tmp/amd64',
  ];
  sh('apt-get', [...o, '-qq', 'update']);
  sh(
    'apt-get',
    [
      ...o,
      'download',
      'libvulkan1',
      'libglvnd0',
      'libegl1',
      'libgl1',
      'libglx0',
      'libgles2',
      'libopengl0',
    ],
    { cwd: join(out, 'gl') },
  );
}
rmSync(stage, { recursive: true, force: true });
sh('du', ['-sh', ...['node.xz', 'gl', 'app.tar.xz', 'c10.tar.xz'].map((f) => join(out, f))]);
