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
export {
  readCifar10Python,
  readCifar100Python,
  writeCifar10Python,
  writeCifar100Python,
} from './data/cifar-python.js';
export { setVerbose } from './verbose.js';
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
export {
  protect,
  protectWithNoise,
  type ProtectOptions,
  type NoiseProtectOptions,
} from './protect/job.js';
export { protectedStream } from './protect/ops.js';
export {
  type Plan,
  type StatsShardFile,
  mergePlan,
  planJson,
  readPlan,
  readStatsFile,
  shardStats,
} from './protect/plan.js';
export { writeShard, type WriteShardResult } from './protect/shard-write.js';
export { type Shard, parseShard, shardRange, shardsOf } from './shard.js';
export { mergeStats, statsFromJson, statsToJson } from './shortcut/stats-file.js';
export { noisyStream } from './protect/noise.js';
export { inspect, type InspectReport, type ClassReport } from './inspect.js';
export {
  readManifest,
  methodLabel,
  METHODS,
  type Manifest,
  type Method,
  type NoiseRecord,
} from './manifest.js';
export {
  generateEm,
  EM_DEFAULTS,
  EM_MODES,
  type EmConfig,
  type EmMode,
  type EmRound,
  type EmSnapshot,
} from './noise/em.js';
export { randomNoise, randomNoiseChunked } from './noise/random.js';
export { parseEpsilon, perturbBytes, DEFAULT_EPSILON } from './noise/bounds.js';
export { readNoiseNpy, writeNoiseNpy } from './noise/npy.js';
export { saveEmCheckpoint, loadEmCheckpoint } from './noise/checkpoint.js';
export { VERSION } from './version.js';
export { initEngine, BACKENDS, type BackendName } from './nn/engine.js';
export { buildModel, MODELS, trainableParamCount, type ModelName } from './nn/models/index.js';
export { SGD, type SGDOptions } from './nn/optim.js';
export { scheduleFor, SCHEDULES, type ScheduleName } from './nn/schedule.js';
export { makeBatch, mixTargets, STRATEGIES, type Strategy } from './train/augment.js';
export {
  applyCountermeasure,
  countermeasureName,
  COUNTERMEASURES,
  type Countermeasure,
  parseCountermeasure,
} from './train/countermeasures.js';
export { pgd } from './nn/pgd.js';
export { Rng } from './nn/rng.js';
export {
  train,
  evaluate,
  type TrainConfig,
  type EpochRecord,
  type TrainRun,
} from './train/loop.js';
export { openTrainingData } from './train/data.js';
export { materialize } from './data/materialize.js';
export { PRESETS, PRESET_CONFIG } from './train/presets.js';
export { auditCells, runAudit, openAuditData, protectedDatasets } from './audit/matrix.js';
export { presentCells, readAuditIndex } from './audit/index-file.js';
