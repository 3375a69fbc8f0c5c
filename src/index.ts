/** The onepixel library: everything the CLI does, importable. */
export { OnepixelError } from './errors.js';
export type {
  Dataset,
  ImageRecord,
  ImageStream,
  Shape,
  SourceFile,
  DatasetSplits,
  SplitName,
} from './data/dataset.js';
export { imageAt, imageSize, streamOf, validateDataset, classCounts } from './data/dataset.js';
export {
  readCifar10,
  readCifar100,
  writeCifar10,
  writeCifar100,
  CIFAR10_CLASSES,
} from './data/cifar.js';
export { readIdxFolder, writeIdx, FASHION_MNIST_CLASSES, MNIST_CLASSES } from './data/idx.js';
export { readNpyFolder, writeNpy, parseNpy } from './data/npy.js';
export { openFolder, writePngFolder } from './data/folder.js';
export { DOWNLOADS, downloadDataset, type DownloadSpec } from './data/download.js';
export {
  DATASETS,
  FORMATS,
  openDataset,
  writerFor,
  defaultFormat,
  type DatasetKind,
  type OutputFormat,
} from './data/formats.js';
export type { DatasetWriter, SplitToWrite } from './data/write.js';
export { StatsAccumulator, datasetStats, streamStats, type ClassStats } from './shortcut/stats.js';
export { datasetStatsParallel } from './shortcut/parallel-stats.js';
export {
  searchDataset,
  selectPixels,
  candidateScores,
  OBJECTIVES,
  type Objective,
  type SearchOptions,
  type SearchResult,
  type ClassPixels,
  type ChosenPixel,
} from './shortcut/search.js';
export { applyShortcut, applyToImage } from './shortcut/apply.js';
export { protect, protectedStream, type ProtectOptions } from './protect.js';
export { inspect, type InspectReport, type ClassReport } from './inspect.js';
export { readManifest, type Manifest } from './manifest.js';
export { VERSION } from './version.js';
