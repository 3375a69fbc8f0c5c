/**
 * Sharded protect, step 3: each shard writes its run of the protected training split into the one
 * shared output folder (data/parts.ts puts every record in its final place, so shards never write
 * the same bytes). The folder carries `.onepixel-shards/` while shards work: `plan.json` (created
 * once, atomically, by whichever shard comes first: later shards check they apply the same plan in
 * the same format with the same shard count) and one `done-I` per finished shard. The shard that
 * finds every `done-*` present and wins the `finalizing` claim (an exclusive mkdir) writes the test
 * split, compresses what must be, writes manifest.json last, and removes `.onepixel-shards/`: the
 * folder is complete only then. The result is byte for byte what unsharded protect writes.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ImageStream } from '../data/dataset.js';
import { type OpenOptions, type OutputFormat, defaultFormat, writerFor } from '../data/formats.js';
import { finishParts, writeMetadata, writePart } from '../data/parts.js';
import { fail } from '../errors.js';
import { MANIFEST, manifestJson } from '../manifest.js';
import { exists } from '../output.js';
import { protectedStream } from './ops.js';
import { type Shard, shardRange } from '../shard.js';
import { type Plan, planJson } from './plan.js';
import { openShardSource } from './shard-source.js';

export const SHARDS_DIR = '.onepixel-shards';

export interface WriteShardOptions extends OpenOptions {
  planPath: string;
  plan: Plan;
  dataDir: string;
  out: string;
  format?: OutputFormat;
  shard: Shard;
  onImage?: (done: number, total: number) => void;
}

export interface WriteShardResult {
  records: { first: number; count: number };
  /** True for the shard that completed the folder (test split, manifest). */
  finalized: boolean;
}

interface Marker {
  plan: string;
  format: OutputFormat;
  shards: number;
}

/** Creates the shared folder with its marker, or checks the one there is for this job. */
async function joinOutput(out: string, marker: Marker): Promise<void> {
  const text = JSON.stringify(marker) + '\n';
  if (!(await exists(out))) {
    // Built under a private name and renamed: the folder never exists without its marker.
    const tmp = join(dirname(out), `.${basename(out)}.shard-init-${process.pid}-${Date.now()}`);
    await mkdir(join(tmp, SHARDS_DIR), { recursive: true });
    await writeFile(join(tmp, SHARDS_DIR, 'plan.json'), text);
    try {
      await rename(tmp, out);
      return;
    } catch {
      await rm(tmp, { recursive: true, force: true }); // another shard was first
    }
  }
  let found: string;
  try {
    found = await readFile(join(out, SHARDS_DIR, 'plan.json'), 'utf8');
  } catch {
    fail(
      (await exists(join(out, MANIFEST)))
        ? `${out}: already exists and is complete (manifest.json); remove it to write it again`
        : `${out}: already exists and is not a sharded protect's output; choose another --out`,
    );
  }
  if (found !== text) {
    const m = JSON.parse(found) as Marker;
    fail(
      `${out}: shards of another job are writing here (plan ${m.plan.slice(0, 12)}…, format ` +
        `${m.format}, ${m.shards} shards; this shard: plan ${marker.plan.slice(0, 12)}…, format ` +
        `${marker.format}, ${marker.shards} shards)`,
    );
  }
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

/** Writes the test split (unchanged) beside the training split, as the format's writer does. */
async function writeTestSplit(
  out: string,
  format: OutputFormat,
  plan: Plan,
  test: ImageStream | null,
) {
  if (!test) return writeMetadata(format, plan.dataset, plan.split, out);
  const staging = join(out, SHARDS_DIR, 'test');
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging);
  await writerFor(format, plan.dataset)(staging, [{ name: 'test', stream: test }]);
  for (const name of await readdir(staging)) await rename(join(staging, name), join(out, name));
  // The writer wrote these from the test split alone; they describe the whole copy.
  await writeMetadata(format, plan.dataset, plan.split, out);
}

export async function writeShard(o: WriteShardOptions): Promise<WriteShardResult> {
  const { plan, shard, out } = o;
  const format = o.format ?? defaultFormat(plan.dataset);
  const src = await openShardSource(plan.dataset, o.dataDir, o);
  if (src.fingerprint !== plan.fingerprint)
    fail(
      `${o.dataDir}: not the dataset the plan ${o.planPath} was made from (fingerprint ` +
        `${src.fingerprint.slice(0, 12)}…, the plan's ${plan.fingerprint.slice(0, 12)}…)`,
    );
  // Checks the format can hold the split before anything is created.
  writerFor(format, plan.dataset);
  const planHash = createHash('sha256').update(planJson(plan)).digest('hex');
  await joinOutput(out, { plan: planHash, format, shards: shard.count });
  const partsDir = join(out, SHARDS_DIR);
  const range = shardRange(plan.split.count, shard);
  const result = {
    ...plan,
    height: plan.split.height,
    width: plan.split.width,
    channels: plan.split.channels,
  };
  let done = 0;
  await writePart(
    {
      format,
      kind: plan.dataset,
      split: plan.split,
      out,
      partsDir,
      first: range.first,
      headers: shard.index === 0,
      onImage: () => o.onImage?.(++done, range.count),
    },
    protectedStream(src.trainPart(range.first, range.count), result),
  );
  await writeAtomic(join(partsDir, `done-${shard.index}`), `${range.first} ${range.count}\n`);
  const finished = (await readdir(partsDir)).filter((n) => /^done-\d+$/.test(n)).length;
  if (finished < shard.count) return { records: range, finalized: false };
  try {
    await mkdir(join(partsDir, 'finalizing'));
  } catch {
    return { records: range, finalized: false }; // another shard finishes the folder
  }
  await writeTestSplit(out, format, plan, src.test());
  await finishParts({ format, kind: plan.dataset, split: plan.split, out, partsDir }, () =>
    src.trainLabels(),
  );
  const manifest = manifestJson({
    objective: plan.objective,
    pixelsPerClass: plan.pixelsPerClass,
    height: plan.split.height,
    width: plan.split.width,
    channels: plan.split.channels,
    classes: plan.classes,
    source: { dataset: plan.dataset, dataDir: plan.dataDir, files: plan.sourceFiles },
    output: { format, train: plan.split.count, test: plan.testCount },
  });
  await writeAtomic(join(out, MANIFEST), manifest);
  await rm(partsDir, { recursive: true, force: true });
  return { records: range, finalized: true };
}
