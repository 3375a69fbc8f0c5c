/**
 * OPS that knows the trainer's pipeline (`protect --pipeline`, src/protect/ops-pipeline.ts),
 * measured with torchvision: the protected PNGs, loaded as ImageFolder loads them (PIL) and put
 * through `Resize(32)`, carry each class's chosen pixel at exactly its extreme value, while the
 * plain 1-pixel copy's pixel does not survive the same resize.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { resampleTaps } from '../src/transforms/resize.js';
import { parseManifest } from '../src/manifest.js';
import { CIFAR_DIR, noNumpy, runCli, runPython, tempDirs } from './helpers.js';

const tmp = tempDirs('ops-pipeline');
/** The first --pipeline manifest written (for the validator's test). */
let written = '';

/** Every class's pixel as torchvision sees it after Resize(size, interp) of each training PNG. */
function landed(dir: string, size: number, interp: string): { extreme: number; total: number } {
  const out = runPython(
    `import sys, json, glob, numpy as np
from PIL import Image
import torchvision.transforms as T
m = json.load(open(sys.argv[1] + '/manifest.json'))
r = T.Resize(${size}, interpolation=T.InterpolationMode.${interp.toUpperCase()})
ok = n = 0
for c in m['classes']:
    p = c['pixels'][0]
    for f in sorted(glob.glob(sys.argv[1] + '/train/*_' + c['name'] + '/*.png')):
        a = np.asarray(r(Image.open(f).convert('RGB')))
        n += 1
        ok += list(a[p['row'], p['col']]) == p['value']
print(json.dumps({'extreme': ok, 'total': n}))`,
    [dir],
  );
  return JSON.parse(out) as { extreme: number; total: number };
}

describe(
  'ops --pipeline (torchvision measures the pixel after the resize)',
  { skip: noNumpy() },
  () => {
    let photos: string;
    before(async () => {
      // 300 CIFAR-10 training images upsampled to 64×64 with PIL's lanczos (a photo stand-in),
      // 100 test images, as an ImageFolder.
      photos = path.join(await tmp(), 'photos');
      runPython(
        `import sys, os, numpy as np
from PIL import Image
names = open(sys.argv[1] + '/batches.meta.txt').read().split()
b = np.fromfile(sys.argv[1] + '/data_batch_1.bin', np.uint8).reshape(-1, 3073)
for split, rows in (('train', range(300)), ('test', range(300, 400))):
    for i in rows:
        d = os.path.join(sys.argv[2], split, '%d_%s' % (b[i, 0], names[b[i, 0]]))
        os.makedirs(d, exist_ok=True)
        x = b[i, 1:].reshape(3, 32, 32).transpose(1, 2, 0)
        Image.fromarray(x).resize((64, 64), Image.LANCZOS).save(os.path.join(d, '%05d.png' % i))`,
        [CIFAR_DIR, photos],
      );
    });

    for (const [interp, margin] of [
      ['bilinear', 0],
      ['bicubic', 0],
      ['bilinear', 2],
    ] as const) {
      it(`resize:32:${interp}, margin ${margin}: every pixel lands exactly extreme after torchvision's Resize(32)`, async () => {
        const out = path.join(await tmp(), 'protected');
        const args = ['protect', '--dataset', 'folder', '--data-dir', photos, '--out', out];
        const r = await runCli([
          ...args,
          '--pipeline',
          `resize:32:${interp}`,
          '--block-margin',
          String(margin),
        ]);
        assert.equal(r.code, 0, r.stderr);
        const text = readFileSync(path.join(out, 'manifest.json'), 'utf8');
        written ||= text;
        const m = JSON.parse(text);
        assert.equal(m.pipeline.pipeline, `resize:32:${interp}`);
        assert.equal(m.pipeline.blockMargin, margin);
        // The block is PIL's filter support for the chosen output pixel, widened by the margin:
        // bilinear 64→32 reads 4 source rows (2·scale), bicubic 8 (4·scale), inside the image.
        const taps = resampleTaps(64, 32, interp);
        m.classes.forEach((c: { pixels: Array<{ row: number; col: number }> }, k: number) => {
          const b = m.pipeline.blocks[k][0];
          const p = c.pixels[0];
          const top = Math.max(taps.start[p.row] - margin, 0);
          const bottom = Math.min(taps.start[p.row] + taps.count[p.row] + margin, 64);
          assert.deepEqual([b.top, b.height], [top, bottom - top]);
        });
        assert.equal(
          m.pipeline.blocks[0][0].width <= (interp === 'bilinear' ? 4 : 8) + 2 * margin,
          true,
        );
        // inspect counts the blocks as the changed positions: nothing outside them moved
        const ins = await runCli(['inspect', '--json', out]);
        assert.equal(ins.code, 0, ins.stderr);
        const rep = JSON.parse(ins.stdout) as {
          classes: Array<{ label: number; maxL0: number; changedOutsidePixels: number }>;
        };
        for (const c of rep.classes) {
          const b = m.pipeline.blocks[c.label][0];
          assert.equal(c.changedOutsidePixels, 0);
          assert.ok(c.maxL0 <= b.height * b.width && c.maxL0 > 1, `L0 ${c.maxL0}`);
        }
        const got = landed(out, 32, interp);
        assert.equal(got.total, 300);
        assert.equal(got.extreme, 300);
      });
    }

    it('the plain 1-pixel copy does not survive the same resize (the test can fail)', async () => {
      const out = path.join(await tmp(), 'plain');
      const r = await runCli([
        'protect',
        '--dataset',
        'folder',
        '--data-dir',
        photos,
        '--out',
        out,
      ]);
      assert.equal(r.code, 0, r.stderr);
      // Read the pixel at its position in the 32×32 view: row/2, col/2 (the output pixel it feeds most).
      const got = runPython(
        `import sys, json, glob, numpy as np
from PIL import Image
import torchvision.transforms as T
m = json.load(open(sys.argv[1] + '/manifest.json'))
ok = n = 0
for c in m['classes']:
    p = c['pixels'][0]
    for f in sorted(glob.glob(sys.argv[1] + '/train/*_' + c['name'] + '/*.png')):
        a = np.asarray(T.Resize(32)(Image.open(f).convert('RGB')))
        n += 1
        ok += list(a[p['row'] // 2, p['col'] // 2]) == p['value']
print(ok, n)`,
        [out],
      );
      const [ok, n] = got.trim().split(' ').map(Number);
      assert.equal(n, 300);
      assert.ok(ok < n / 10, `${ok} of ${n} extreme`);
    });

    it("the manifest's validator refuses a block outside the image or a missing one, naming the field", () => {
      assert.ok(written, 'needs the protect tests above');
      const m = JSON.parse(written);
      assert.equal(parseManifest(written, 'm.json').pipeline?.blocks.length, 10);
      const tall = structuredClone(m);
      tall.pipeline.blocks[0][0].height = 64;
      assert.throws(
        () => parseManifest(JSON.stringify(tall), 'm.json'),
        /pipeline\.blocks\[0\]\[0\]\.height/,
      );
      const none = structuredClone(m);
      none.pipeline.blocks[3] = [];
      assert.throws(() => parseManifest(JSON.stringify(none), 'm.json'), /pipeline\.blocks\[3\]/);
    });

    it('refuses a bad --pipeline or a method other than ops, naming the flag, writing nothing', async () => {
      for (const [extra, msg] of [
        [['--pipeline', 'resize:x'], /--pipeline: expected resize:S/],
        [['--pipeline', 'resize:32:nearest'], /--pipeline: interpolation/],
        [['--pipeline', 'resize:128'], /must not exceed the images' 64×64/],
        [['--pipeline', 'resize:32', '--block-margin', '-1'], /--block-margin/],
        [['--pipeline', 'resize:32', '--method', 'random-noise'], /--pipeline/],
      ] as const) {
        const out = path.join(await tmp(), 'bad');
        const r = await runCli([
          'protect',
          '--dataset',
          'folder',
          '--data-dir',
          photos,
          '--out',
          out,
          ...extra,
        ]);
        assert.equal(r.code, 1, `${extra.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, msg);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.throws(() => readFileSync(path.join(out, 'manifest.json')));
      }
    });
  },
);
