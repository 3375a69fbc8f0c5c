/** Writing the chosen pixels into images: the only bytes OPS changes. */
import type { Dataset } from '../data/dataset.js';
import { imageSize } from '../data/dataset.js';
import type { ClassPixels, SearchResult } from './search.js';

/** Sets the class's pixels in one H×W×C image, in place, in the order chosen (later wins). */
export function applyToImage(
  image: Uint8Array,
  width: number,
  channels: number,
  cls: ClassPixels,
): void {
  for (const px of cls.pixels) {
    const o = (px.row * width + px.col) * channels;
    for (let c = 0; c < channels; c++) image[o + c] = px.value[c];
  }
}

/** A protected copy of a dataset (the source is left untouched). */
export function applyShortcut(ds: Dataset, result: SearchResult): Dataset {
  if (ds.height !== result.height || ds.width !== result.width || ds.channels !== result.channels)
    throw new Error(
      `pixels were chosen for ${result.height}×${result.width}×${result.channels} images, dataset is ${ds.height}×${ds.width}×${ds.channels}`,
    );
  const images = ds.images.slice();
  const size = imageSize(ds);
  for (let i = 0; i < ds.labels.length; i++) {
    const cls = result.classes[ds.labels[i]];
    applyToImage(images.subarray(i * size, (i + 1) * size), ds.width, ds.channels, cls);
  }
  return { ...ds, images };
}
