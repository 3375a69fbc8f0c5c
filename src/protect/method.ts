/** What a protection method gives the protect job: the protected training split and its record. */
import type { Dataset, ImageStream } from '../data/dataset.js';
import type { Manifest } from '../manifest.js';

export type Phase = 'download' | 'search' | 'write';

/** The training split as the job opened it, and how to report progress. */
export interface MethodInput {
  train: Dataset | ImageStream;
  onProgress?: (phase: Phase, done: number, total: number | null) => void;
}

/** A method's result: the stream to write, the manifest fields it owns, and any extra files. */
export interface Protected {
  stream: ImageStream;
  fields: Pick<Manifest, 'objective' | 'pixelsPerClass' | 'classes'> &
    Partial<Pick<Manifest, 'noise' | 'pipeline'>>;
  /** Writes files besides the dataset (noise.npy) into the output folder being filled. */
  extraFiles?: (dir: string) => Promise<void>;
}
