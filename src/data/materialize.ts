/** A stream read fully into memory, for what visits every image many times (training, EM). */
import { fail } from '../errors.js';
import { type Dataset, type ImageStream, imageSize } from './dataset.js';

/** Reads a stream into memory (class folders are streams). */
export async function materialize(stream: ImageStream): Promise<Dataset> {
  const size = imageSize(stream);
  const images = new Uint8Array(stream.count * size);
  const labels = new Int32Array(stream.count);
  let i = 0;
  for await (const rec of stream.records()) {
    if (i >= stream.count) fail(`${rec.ref}: more images than the ${stream.count} announced`);
    images.set(rec.image, i * size);
    labels[i++] = rec.label;
  }
  if (i !== stream.count) fail(`only ${i} of ${stream.count} images could be read`);
  return {
    height: stream.height,
    width: stream.width,
    channels: stream.channels,
    images,
    labels,
    classNames: stream.classNames,
  };
}
