/**
 * The trainer's resizing pipeline (src/transforms/resize.ts, the `resize`, `center-crop` and `rrc`
 * countermeasures) against torchvision 0.14 and PIL 9 on real CIFAR-10 images and their 64×64
 * lanczos upsamplings (the photo stand-in's filter, here PIL's): PIL path byte for byte, the tensor
 * path (antialias=False) within 1, and RandomResizedCrop's box from torchvision's own get_params
 * fed the same uniform draws.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readCifar10 } from '../src/data/cifar.js';
import type { Dataset } from '../src/data/dataset.js';
import {
  type CropBox,
  centerCrop,
  centerCropBox,
  randomResizedCropParams,
  resizePil,
  resizeTensor,
} from '../src/transforms/resize.js';
import {
  applyCountermeasure,
  countermeasureName,
  evalTransform,
  parseCountermeasure,
} from '../src/train/countermeasures.js';
import { CIFAR_DIR, headOf, noNumpy, runPython, tempDirs } from './helpers.js';

const N = 12;
const tmp = tempDirs('resize');

/**
 * Runs python `body` on `a` (the n×h×w×3 images; numpy as np, PIL's Image, torch, torchvision's
 * functional as F imported) and returns the bytes of the uint8 array `r`.
 */
async function py(images: Uint8Array, h: number, w: number, body: string): Promise<Uint8Array> {
  const dir = await tmp();
  const inp = path.join(dir, 'in.bin');
  const out = path.join(dir, 'out.bin');
  writeFileSync(inp, images);
  runPython(
    'import sys, numpy as np, torch\nfrom PIL import Image\n' +
      'import torchvision.transforms.functional as F\n' +
      `a = np.fromfile(sys.argv[1], np.uint8).reshape(-1, ${h}, ${w}, 3)\n` +
      body +
      '\nnp.ascontiguousarray(r, dtype=np.uint8).tofile(sys.argv[2])\n',
    [inp, out],
  );
  return new Uint8Array(readFileSync(out));
}

/** Our per-image function over the n images of h×w. */
function each(images: Uint8Array, h: number, w: number, f: (s: Uint8Array) => Uint8Array) {
  const g = h * w * 3;
  const parts: Uint8Array[] = [];
  for (let i = 0; i < images.length / g; i++) parts.push(f(images.subarray(i * g, (i + 1) * g)));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, (o += p.length) - p.length);
  return out;
}

function maxDiff(a: Uint8Array, b: Uint8Array): { max: number; unequal: number } {
  assert.equal(a.length, b.length);
  let max = 0;
  let unequal = 0;
  for (let k = 0; k < a.length; k++) {
    const d = Math.abs(a[k] - b[k]);
    if (d) unequal++;
    if (d > max) max = d;
  }
  return { max, unequal };
}

describe('resize (torchvision on PIL images)', { skip: noNumpy() }, () => {
  let ds: Dataset;
  /** The same images upsampled to 64×64 with PIL's lanczos (a photo-sized input). */
  let big: Uint8Array;
  before(async () => {
    ds = headOf((await readCifar10(CIFAR_DIR)).train, N);
    big = await py(
      ds.images,
      32,
      32,
      'r = np.stack([np.asarray(Image.fromarray(x).resize((64, 64), Image.LANCZOS)) for x in a])',
    );
  });

  for (const interp of ['bilinear', 'bicubic', 'nearest', 'lanczos'] as const) {
    for (const [h, w, oh, ow] of [
      [64, 64, 32, 32],
      [64, 64, 27, 45],
      [32, 32, 64, 48],
      [32, 32, 11, 7],
    ]) {
      it(`${interp} ${h}×${w} → ${oh}×${ow} equals torchvision's F.resize on a PIL image, byte for byte`, async () => {
        const src = h === 64 ? big : ds.images;
        const ours = each(src, h, w, (s) =>
          resizePil(s, { height: h, width: w, channels: 3 }, oh, ow, interp),
        );
        const ref = await py(
          src,
          h,
          w,
          `r = np.stack([np.asarray(F.resize(Image.fromarray(x), [${oh}, ${ow}], ` +
            `interpolation=F.InterpolationMode.${interp.toUpperCase()})) for x in a])`,
        );
        assert.deepEqual(maxDiff(ours, ref), { max: 0, unequal: 0 });
      });
    }
  }

  for (const interp of ['bilinear', 'bicubic'] as const) {
    it(`${interp} noaa 64×64 → 32×32 is torchvision's tensor path with antialias=False within 1`, async () => {
      const ours = each(big, 64, 64, (s) =>
        resizeTensor(s, { height: 64, width: 64, channels: 3 }, 32, 32, interp),
      );
      const ref = await py(
        big,
        64,
        64,
        'r = F.resize(torch.from_numpy(a).permute(0, 3, 1, 2), [32, 32], ' +
          `interpolation=F.InterpolationMode.${interp.toUpperCase()}, antialias=False)` +
          '.permute(0, 2, 3, 1).numpy()',
      );
      const d = maxDiff(ours, ref);
      assert.ok(d.max <= 1, `max difference ${d.max}`);
      // Ties of float32 vs double rounding are rare: at most 1 % of the values.
      assert.ok(d.unequal <= ref.length / 100, `${d.unequal} of ${ref.length} differ`);
      // and it is not the antialiased PIL result (the two paths differ on real images)
      const pil = each(big, 64, 64, (s) =>
        resizePil(s, { height: 64, width: 64, channels: 3 }, 32, 32, interp),
      );
      assert.ok(maxDiff(ours, pil).unequal > ref.length / 10);
    });
  }

  for (const [h, w, s] of [
    [64, 64, 32],
    [64, 64, 33],
    [32, 32, 40],
  ]) {
    it(`center-crop:${s} of ${h}×${w} equals torchvision's CenterCrop (zero padding when larger)`, async () => {
      const src = h === 64 ? big : ds.images;
      const ours = each(src, h, w, (x) => centerCrop(x, { height: h, width: w, channels: 3 }, s));
      const ref = await py(
        src,
        h,
        w,
        `r = np.stack([np.asarray(F.center_crop(Image.fromarray(x), [${s}, ${s}])) for x in a])`,
      );
      assert.deepEqual(maxDiff(ours, ref), { max: 0, unequal: 0 });
    });
  }

  it("rrc's box equals torchvision's RandomResizedCrop.get_params given the same uniform draws", () => {
    // A fixed stream of uniforms, consumed in the same order by both: torch.empty(1).uniform_(lo,
    // hi) → float32(lo + (hi − lo)·u), torch.randint(0, n) → floor(u·n).
    const us = Array.from({ length: 4000 }, (_, i) => ((i * 0.6180339887498949 + 0.1) % 1) ** 1.3);
    const sizes: Array<[number, number, number]> = [
      [64, 64, 0.08],
      [128, 96, 0.08],
      [37, 200, 0.08],
      [300, 20, 0.5],
      [64, 64, 0.9],
    ];
    const boxes: CropBox[] = [];
    let k = 0;
    const rnd = {
      uniform: () => us[k++ % us.length],
      int: (n: number) => Math.floor(us[k++ % us.length] * n),
    };
    for (const [h, w, lo] of sizes)
      for (let t = 0; t < 100; t++)
        boxes.push(randomResizedCropParams(h, w, [lo, 1], [3 / 4, 4 / 3], rnd));
    const ref = runPython(
      `import sys, json, math, torch, types
import torchvision.transforms.transforms as TT
us = json.loads(sys.argv[1]); sizes = json.loads(sys.argv[2]); k = 0
def nxt():
    global k
    u = us[k % len(us)]; k += 1; return u
class U:
    def uniform_(self, lo, hi): return torch.tensor([lo + (hi - lo) * nxt()], dtype=torch.float32)
shim = types.SimpleNamespace(**{n: getattr(torch, n) for n in ['log', 'exp', 'tensor']})
shim.empty = lambda *a, **kw: U()
shim.randint = lambda lo, hi, size: torch.tensor([lo + math.floor(nxt() * (hi - lo))])
TT.torch = shim
from PIL import Image
out = []
for h, w, lo in sizes:
    for t in range(100):
        out.append(list(TT.RandomResizedCrop.get_params(Image.new('RGB', (w, h)), [lo, 1.0], [3 / 4, 4 / 3])))
print(json.dumps(out))`,
      [JSON.stringify(us), JSON.stringify(sizes)],
    );
    const theirs = JSON.parse(ref) as number[][];
    assert.deepEqual(
      boxes.map((b) => [b.top, b.left, b.height, b.width]),
      theirs,
    );
    // the fallback (central crop, clamped to the ratio range) ran for the thin images
    assert.ok(boxes.some((b) => b.height === 300 || b.width === 200 || b.height === 37));
  });

  it('center-crop box rounds half to even like Python', () => {
    assert.deepEqual(centerCropBox(65, 64, 32, 32), { top: 16, left: 16, height: 32, width: 32 });
    assert.deepEqual(centerCropBox(67, 64, 32, 32), { top: 18, left: 16, height: 32, width: 32 });
  });
});

describe('resizing countermeasures', { skip: noNumpy() }, () => {
  it('parse, name and refuse', () => {
    for (const t of [
      'resize:32',
      'resize:32:bicubic',
      'resize:32:noaa',
      'center-crop:28',
      'rrc:32',
      'rrc:32:0.5',
      'rrc:32:0.5:bicubic',
    ])
      assert.equal(countermeasureName(parseCountermeasure(t)), t);
    assert.equal(countermeasureName(parseCountermeasure('resize:32:bilinear')), 'resize:32');
    assert.throws(() => parseCountermeasure('resize:32:nearest:noaa'), /noaa/);
    assert.throws(() => parseCountermeasure('resize:0'), /--countermeasure: resize size/);
    assert.throws(() => parseCountermeasure('resize:32:area'), /unknown interpolation 'area'/);
    assert.throws(() => parseCountermeasure('rrc:32:1.5'), /min-scale/);
    assert.throws(() => parseCountermeasure('center-crop'), /takes 1 parameter/);
  });

  it('hand the model S×S images on both splits; rrc draws are seeded (the same twice)', async () => {
    const ds = headOf((await readCifar10(CIFAR_DIR)).train, 50);
    const c = parseCountermeasure('rrc:20');
    const a = (await applyCountermeasure(ds, c)) as Dataset;
    const b = (await applyCountermeasure(ds, c)) as Dataset;
    assert.equal(a.height, 20);
    assert.equal(a.width, 20);
    assert.equal(a.images.length, 50 * 20 * 20 * 3);
    assert.deepEqual(a.images, b.images);
    const e = evalTransform(c);
    assert.equal(e && countermeasureName(e), 'resize:20');
    const t = (await applyCountermeasure(ds, e!)) as Dataset;
    assert.deepEqual(
      t.images.subarray(0, 1200),
      resizePil(ds.images.subarray(0, 3072), ds, 20, 20, 'bilinear'),
    );
    // the crops are not all the full image: rrc is not plain resize
    assert.notDeepEqual(a.images, t.images);
    assert.equal(evalTransform(parseCountermeasure('jpeg:10')), null);
  });
});
