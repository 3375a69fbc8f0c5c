/**
 * Start-up: `--help`, `inspect` and OPS `protect` never load the training engine. A loader hook
 * (--import) records every module URL the CLI loads; `train --help` proves the hook sees tfjs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { streamOf } from '../src/data/dataset.js';
import { writeNpy } from '../src/data/npy.js';
import { CLI, childEnv, cifarClassNames, cifarDataset, cifarRecords, tempDirs } from './helpers.js';

const tmp = tempDirs('lazy-load');
let hook: string;
let data: string;

before(async () => {
  const dir = await tmp();
  await writeFile(
    path.join(dir, 'hooks.mjs'),
    "import { appendFileSync } from 'node:fs';\n" +
      'export async function load(url, context, next) {\n' +
      '  appendFileSync(process.env.ONEPIXEL_LOAD_LOG, url + "\\n");\n' +
      '  return next(url, context);\n}\n',
  );
  hook = path.join(dir, 'register.mjs');
  await writeFile(
    hook,
    "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n",
  );
  data = await tmp();
  const names = await cifarClassNames();
  await writeNpy(data, [
    {
      name: 'train',
      stream: streamOf(cifarDataset(await cifarRecords('data_batch_1.bin', 100), names)),
    },
  ]);
});

/** The module URLs the CLI loaded for `args` (and its exit code). */
async function loaded(
  args: string[],
): Promise<{ code: number | null; urls: string[]; stderr: string }> {
  const log = path.join(await tmp(), 'loaded.txt');
  await writeFile(log, '');
  const child = spawn(process.execPath, ['--import', hook, CLI, ...args], {
    env: { ...childEnv(), ONEPIXEL_LOAD_LOG: log },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  return { code, urls: (await readFile(log, 'utf8')).split('\n').filter(Boolean), stderr };
}

const engine = (urls: string[]) => urls.filter((u) => /@tensorflow|\/nn\/engine\.js|sharp/.test(u));

describe('the CLI loads the training engine only for commands that train', () => {
  it('the hook sees tfjs when a command needs it (train --help)', async () => {
    const r = await loaded(['train', '--help']);
    assert.equal(r.code, 0);
    assert.ok(r.urls.some((u) => u.includes('/dist/src/cli/main.js')));
    assert.ok(
      r.urls.some((u) => u.includes('@tensorflow')),
      'tfjs not seen',
    );
  });

  it('--help, protect --help: no engine', async () => {
    for (const args of [['--help'], ['protect', '--help']]) {
      const r = await loaded(args);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(engine(r.urls), [], args.join(' '));
    }
  });

  it('an OPS protect and an inspect of it: no engine', async () => {
    const out = path.join(await tmp(), 'ops');
    const p = await loaded(['protect', '--dataset', 'npy', '--data-dir', data, '--out', out]);
    assert.equal(p.code, 0, p.stderr);
    assert.ok(
      p.urls.some((u) => u.includes('/dist/src/protect/ops.js')),
      'protect did not run',
    );
    assert.deepEqual(engine(p.urls), []);
    const i = await loaded(['inspect', out]);
    assert.equal(i.code, 0, i.stderr);
    assert.ok(i.urls.some((u) => u.includes('/dist/src/inspect.js')));
    assert.deepEqual(engine(i.urls), []);
  });
});
