/** What every writer takes: the splits to write, each as a stream of (already protected) records. */
import type { ImageStream, SplitName } from './dataset.js';

export interface SplitToWrite {
  name: SplitName;
  stream: ImageStream;
}

/**
 * A writer puts the splits' files into `dir` (an existing, empty folder: the caller writes under a
 * temporary name and renames it when everything is written). `onImage` reports progress.
 */
export type DatasetWriter = (
  dir: string,
  splits: SplitToWrite[],
  onImage?: () => void,
) => Promise<void>;
