/**
 * Inspecting a protected folder: its pixels and scores from the manifest, and, when the source is
 * still where the manifest says, how far each class moved from it (L0 and PSNR) and whether any
 * byte outside the chosen pixels changed.
 */
import { isAbsolute } from 'node:path';
import { fail } from './errors.js';
import type { Dataset, ImageStream } from './data/dataset.js';
import { imageSize, isDataset, streamOf } from './data/dataset.js';
import { openDataset, readerKindFor } from './data/formats.js';
import { type Manifest, readManifest } from './manifest.js';
import { exists } from './output.js';

export interface ClassReport {
  label: number;
  name: string;
  images: number;
  /** Mean number of changed pixel positions per image (L0 distance). */
  meanL0: number;
  maxL0: number;
  /** Peak signal-to-noise ratio of the class's protected images against the source, in dB. */
  psnr: number;
  /** Changed bytes that are not at a chosen pixel: 0 unless the copy was altered. */
  changedOutsidePixels: number;
}

export interface InspectReport {
  manifest: Manifest;
  /** Why no comparison was made (source missing or changed), or null. */
  sourceNote: string | null;
  classes: ClassReport[] | null;
}

function asStream(x: Dataset | ImageStream, what: string): ImageStream {
  return isDataset(x) ? streamOf(x, what) : x;
}

export async function inspect(dir: string): Promise<InspectReport> {
  const m = await readManifest(dir);
  const srcDir = m.source.dataDir;
  if (!isAbsolute(srcDir) || !(await exists(srcDir)))
    return {
      manifest: m,
      sourceNote: `source ${srcDir} is not here; no comparison`,
      classes: null,
    };
  const kind = readerKindFor(m.output.format, m.source.dataset);
  const names = m.classes.map((c) => c.name);
  const prot = await openDataset(kind, dir, { classNames: names });
  const src = await openDataset(m.source.dataset, srcDir, {
    classNames: names,
    channels: m.channels === 1 ? 1 : 3,
  });
  const hashes = new Map(m.source.files.map((f) => [f.path, f.sha256]));
  const changed = src.files.some((f) => {
    const rel = f.path.startsWith(srcDir) ? f.path.slice(srcDir.length + 1) || '.' : f.path;
    return hashes.has(rel) && hashes.get(rel) !== f.sha256;
  });
  if (changed)
    return {
      manifest: m,
      sourceNote: `source ${srcDir} changed since protection (sha256 differs)`,
      classes: null,
    };
  return {
    manifest: m,
    sourceNote: null,
    classes: await compare(m, asStream(prot.train, 'protected'), asStream(src.train, 'source')),
  };
}

async function compare(m: Manifest, prot: ImageStream, src: ImageStream): Promise<ClassReport[]> {
  if (prot.count !== src.count)
    fail(`protected training split has ${prot.count} images, source ${src.count}`);
  const K = m.classes.length;
  const C = m.channels;
  // With --pipeline the changed positions are each pixel's block in the full-size image.
  const allowed = m.classes.map((c, k) => {
    if (!m.pipeline) return new Set(c.pixels.map((p) => p.row * m.width + p.col));
    const at = new Set<number>();
    for (const b of m.pipeline.blocks[k])
      for (let y = b.top; y < b.top + b.height; y++)
        for (let x = b.left; x < b.left + b.width; x++) at.add(y * m.width + x);
    return at;
  });
  const acc = m.classes.map((c) => ({
    label: c.label,
    name: c.name,
    images: 0,
    l0: 0,
    maxL0: 0,
    sq: 0,
    outside: 0,
  }));
  const size = imageSize(src);
  const a = prot.records()[Symbol.asyncIterator]();
  for await (const s of src.records()) {
    const p = (await a.next()).value as { image: Uint8Array; label: number; ref: string };
    if (p.label !== s.label)
      fail(`${p.ref}: label ${p.label}, but the source has ${s.label} (${s.ref})`);
    if (s.label >= K) fail(`${s.ref}: label ${s.label} is not in the manifest`);
    const r = acc[s.label];
    let l0 = 0;
    for (let q = 0; q < size; q += C) {
      let moved = false;
      for (let c = 0; c < C; c++) {
        const d = p.image[q + c] - s.image[q + c];
        if (d !== 0) {
          moved = true;
          r.sq += d * d;
        }
      }
      if (moved) {
        l0++;
        if (!allowed[s.label].has(q / C)) r.outside++;
      }
    }
    r.images++;
    r.l0 += l0;
    r.maxL0 = Math.max(r.maxL0, l0);
  }
  return acc.map((r) => {
    const mse = r.sq / Math.max(1, r.images * size);
    return {
      label: r.label,
      name: r.name,
      images: r.images,
      meanL0: r.l0 / Math.max(1, r.images),
      maxL0: r.maxL0,
      psnr: mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse),
      changedOutsidePixels: r.outside,
    };
  });
}
