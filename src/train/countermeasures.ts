/**
 * Countermeasures a trainer can apply to a (protected) training set before training, to test how
 * much protection survives them: the data owner's view of "what breaks OPS".
 *
 * - `grayscale`: each pixel becomes its luma, PIL's `convert('L')` exactly
 *   ((19595·R + 38470·G + 7471·B + 2^15) >> 16), copied to every channel so the model is unchanged.
 * - `jpeg[:Q]`: a JPEG round trip at quality Q (default 10) through sharp (libvips, libjpeg-turbo,
 *   4:2:0 chroma subsampling): the block transform and quantisation smear a single extreme pixel.
 *
 * Only the training split is changed; accuracy is still measured on the clean test split.
 */
import os from 'node:os';
import { fail } from '../errors.js';
import { type Dataset, imageSize } from '../data/dataset.js';

export type Countermeasure =
  { kind: 'none' } | { kind: 'grayscale' } | { kind: 'jpeg'; quality: number };

export const COUNTERMEASURES = ['none', 'grayscale', 'jpeg[:quality]'] as const;

/** Parses `none`, `grayscale`, `jpeg` or `jpeg:Q` (Q an integer 1–100); errors name the flag. */
export function parseCountermeasure(text: string, flag = '--countermeasure'): Countermeasure {
  const t = text.trim().toLowerCase();
  if (t === 'none') return { kind: 'none' };
  if (t === 'grayscale' || t === 'greyscale') return { kind: 'grayscale' };
  const m = /^jpeg(?::(\d+))?$/.exec(t);
  if (m) {
    const quality = m[1] === undefined ? 10 : Number(m[1]);
    if (quality < 1 || quality > 100) fail(`${flag}: JPEG quality must be 1–100 (got ${m[1]})`);
    return { kind: 'jpeg', quality };
  }
  return fail(`unknown countermeasure '${text}' (${flag}); valid: ${COUNTERMEASURES.join(', ')}`);
}

/** The countermeasure's name as results and tables show it. */
export function countermeasureName(c: Countermeasure): string {
  return c.kind === 'jpeg' ? `jpeg:${c.quality}` : c.kind;
}

function grayscale(ds: Dataset): Dataset {
  if (ds.channels !== 3) return ds; // already one channel
  const src = ds.images;
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i += 3) {
    const l = (19595 * src[i] + 38470 * src[i + 1] + 7471 * src[i + 2] + 0x8000) >> 16;
    out[i] = out[i + 1] = out[i + 2] = l;
  }
  return { ...ds, images: out };
}

async function jpeg(
  ds: Dataset,
  quality: number,
  onImage?: (done: number, total: number) => void,
): Promise<Dataset> {
  const { default: sharp } = await import('sharp');
  const size = imageSize(ds);
  const n = ds.labels.length;
  const out = new Uint8Array(ds.images.length);
  const raw = { width: ds.width, height: ds.height, channels: ds.channels as 1 | 3 };
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (let i = next++; i < n; i = next++) {
      const img = ds.images.subarray(i * size, (i + 1) * size);
      const encoded = await sharp(img, { raw }).jpeg({ quality }).toBuffer();
      const decoded = await sharp(encoded)
        .toColourspace(ds.channels === 1 ? 'b-w' : 'srgb')
        .raw()
        .toBuffer();
      if (decoded.length !== size)
        fail(`JPEG round trip of image ${i} gave ${decoded.length} bytes`);
      out.set(decoded, i * size);
      onImage?.(++done, n);
    }
  };
  // sharp runs each call on libuv's pool: keep several in flight.
  await Promise.all(Array.from({ length: Math.max(4, os.availableParallelism() * 4) }, worker));
  return { ...ds, images: out };
}

/** Applies `c` to a copy of the training set (the input is not modified). */
export async function applyCountermeasure(
  ds: Dataset,
  c: Countermeasure,
  onImage?: (done: number, total: number) => void,
): Promise<Dataset> {
  switch (c.kind) {
    case 'none':
      return ds;
    case 'grayscale':
      return grayscale(ds);
    case 'jpeg':
      return jpeg(ds, c.quality, onImage);
  }
}
