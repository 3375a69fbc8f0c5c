// A STAND-IN for photographs (no higher-resolution labelled set can be downloaded here): CIFAR-10
// upsampled to S×S with sharp's lanczos3 kernel (libvips), written as ImageFolder class folders of
// PNGs: <out>/train/<k>_<class>/<i>.png from data_batch_1–4 (40,000 images) and
// <out>/test/<k>_<class>/<i>.png from data_batch_5 (10,000 images; all exact, unlike
// test_batch.bin's records 1000–9999, see /work/shared/data/README.md). Upsampled thumbnails have
// no detail finer than the original 32×32 grid: they stand in for the size of photographs, not
// for their content.
//
//   npm run build && node dist/bench/photos-standin.js <cifar-10-batches-bin> <size> <out-dir>
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

const [src, sizeArg, out] = process.argv.slice(2);
const size = Number(sizeArg);
if (!src || !out || !Number.isInteger(size) || size < 32) {
  console.error(
    'usage: node dist/bench/photos-standin.js <cifar-10-batches-bin> <size ≥ 32> <out-dir>',
  );
  process.exit(1);
}
if (existsSync(out)) {
  console.error(`${out}: exists; remove it first (this script never overwrites)`);
  process.exit(1);
}
const names = (await readFile(join(src, 'batches.meta.txt'), 'utf8')).split('\n').filter(Boolean);
const tmp = `${out}.partial-${process.pid}`;
const splits: Record<string, number[]> = { train: [1, 2, 3, 4], test: [5] };
for (const [split, batches] of Object.entries(splits)) {
  for (let k = 0; k < names.length; k++)
    await mkdir(join(tmp, split, `${k}_${names[k]}`), { recursive: true });
  let index = 0;
  for (const b of batches) {
    const buf = await readFile(join(src, `data_batch_${b}.bin`));
    const jobs: Array<Promise<void>> = [];
    for (let r = 0; r < buf.length / 3073; r++, index++) {
      const rec = buf.subarray(r * 3073, (r + 1) * 3073);
      const label = rec[0];
      const hwc = Buffer.alloc(32 * 32 * 3);
      for (let p = 0; p < 1024; p++)
        for (let c = 0; c < 3; c++) hwc[p * 3 + c] = rec[1 + c * 1024 + p];
      const file = join(
        tmp,
        split,
        `${label}_${names[label]}`,
        `${String(index).padStart(5, '0')}.png`,
      );
      jobs.push(
        sharp(hwc, { raw: { width: 32, height: 32, channels: 3 } })
          .resize(size, size, { kernel: 'lanczos3' })
          .png({ compressionLevel: 1 })
          .toBuffer()
          .then((png) => writeFile(file, png)),
      );
      if (jobs.length >= 64) await Promise.all(jobs.splice(0));
    }
    await Promise.all(jobs);
  }
}
await writeFile(
  join(tmp, 'STAND-IN.txt'),
  `A stand-in for photographs: CIFAR-10 upsampled 32→${size} with sharp ${sharp.versions.sharp} ` +
    `(libvips ${sharp.versions.vips}) lanczos3; train = data_batch_1–4, test = data_batch_5.\n`,
);
await rename(tmp, out);
console.log(`${out}: done`);
