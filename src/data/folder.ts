/**
 * Class-folder datasets (torchvision ImageFolder layout): `dir/<class>/<image>`, or `dir/train/<class>/…`
 * and `dir/test/<class>/…`. Images are decoded with sharp, streamed in file order with a few decodes
 * in flight, never the whole folder at once, so ImageNet-sized folders stream in bounded memory.
 *
 * Writing (`writePngFolder`) puts each split under `dir/<split>/<label>_<class>/<index>.png`. The
 * `<label>_` prefix (label zero-padded to the width of the largest label, e.g. `0_airplane` …
 * `9_truck`, or `000_…` … `999_…`) keeps the label order: readers sort class folders by name, which
 * would otherwise reorder classes whose names are not already sorted. `openFolder` strips such a
 * prefix only when EVERY class folder has the form `<digits>_<rest>`, all digit runs have the same
 * width, and, in sorted order, the digits read exactly 0, 1, …, K-1; then the class names are the
 * `<rest>` parts. Any other folder names are taken as the class names unchanged.
 */
import { createHash } from 'node:crypto';
import { createReadStream, type Dirent } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Metadata, OutputInfo, Sharp, SharpOptions } from 'sharp';

/** sharp (libvips) is loaded on first use: commands that never touch image files start faster. */
let sharpModule: Promise<typeof import('sharp')> | null = null;
async function sharp(input: string | Uint8Array, options?: SharpOptions): Promise<Sharp> {
  sharpModule ??= import('sharp');
  return (await sharpModule).default(input, options);
}
import { fail, OnepixelError } from '../errors.js';
import type { DatasetSplits, ImageRecord, ImageStream, Shape, SourceFile } from './dataset.js';
import type { DatasetWriter } from './write.js';

export interface OpenFolderOptions {
  /** Convert every image to 1 (grayscale) or 3 (RGB) channels; default: from the first image. */
  channels?: 1 | 3;
  /** Decodes in flight while streaming (default 4). */
  concurrency?: number;
}

/** An image file of a split: its absolute-ish path, its path relative to the split dir, its label. */
export interface FolderImageFile {
  path: string;
  rel: string;
  label: number;
}

/** What a split folder holds: its class folders (sorted) and its image files, class after class. */
export interface FolderSplit {
  dir: string;
  classFolders: string[];
  classNames: string[];
  files: FolderImageFile[];
}

const IMAGE_EXT = /\.(png|jpe?g|webp)$/i;
const EXPECTED_FILES = '.png, .jpg, .jpeg or .webp files';
const DEFAULT_CONCURRENCY = 4;
/** The largest image a folder dataset may hold: 4096×4096 (sharp's own default is 16384²). */
export const MAX_IMAGE_PIXELS = 4096 * 4096;
const HASH_CONCURRENCY = 8;

/** Plain code-point order (Python's `sorted`), which UTF-8 byte order equals. */
function compareCodePoints(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function isHidden(name: string): boolean {
  return name.startsWith('.');
}

/** Whether a directory entry is a directory (resp. file), following symbolic links. */
async function entryKind(dir: string, e: Dirent): Promise<'dir' | 'file' | 'other'> {
  if (e.isDirectory()) return 'dir';
  if (e.isFile()) return 'file';
  if (e.isSymbolicLink()) {
    try {
      const s = await stat(path.join(dir, e.name));
      if (s.isDirectory()) return 'dir';
      if (s.isFile()) return 'file';
    } catch {
      return 'other';
    }
  }
  return 'other';
}

/** A folder's entries, or an error naming it (unreadable, not a folder). */
async function listEntries(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (e) {
    fail(`${dir}: cannot list the folder (${(e as Error).message})`);
  }
}

/** The sorted non-hidden subdirectory names of `dir`. */
async function subdirs(dir: string): Promise<string[]> {
  const entries = await listEntries(dir);
  const names: string[] = [];
  for (const e of entries) {
    if (isHidden(e.name)) continue;
    if ((await entryKind(dir, e)) === 'dir') names.push(e.name);
  }
  return names.sort(compareCodePoints);
}

/** The sorted non-hidden image file names directly in `dir`. */
async function imageFiles(dir: string): Promise<string[]> {
  const entries = await listEntries(dir);
  const names: string[] = [];
  for (const e of entries) {
    if (isHidden(e.name) || !IMAGE_EXT.test(e.name)) continue;
    if ((await entryKind(dir, e)) === 'file') names.push(e.name);
  }
  return names.sort(compareCodePoints);
}

/**
 * The class names a list of sorted class folder names stands for: the folder names themselves, or,
 * when they all read `<i>_<name>` with i = 0 … K-1 in order and equal digit widths (what
 * writePngFolder writes), the `<name>` parts.
 */
export function classNamesFromFolders(folders: string[]): string[] {
  const parts = folders.map((f) => /^(\d+)_(.*)$/s.exec(f));
  if (parts.length === 0) return [];
  const width = parts[0]?.[1].length;
  const prefixed = parts.every(
    (m, i) => m !== null && m[1].length === width && Number.parseInt(m[1], 10) === i,
  );
  return prefixed ? parts.map((m) => (m as RegExpExecArray)[2]) : folders.slice();
}

/** Lists one split folder: its class folders and image files. Fails on empty class folders. */
export async function listFolderSplit(dir: string): Promise<FolderSplit> {
  const classFolders = await subdirs(dir);
  if (classFolders.length === 0)
    fail(
      `${dir}: no class folders found (expected ${path.join(dir, '<class>', '<image>')} with ` +
        `${EXPECTED_FILES}, or ${path.join(dir, 'train', '<class>')} and ` +
        `${path.join(dir, 'test', '<class>')} folders)`,
    );
  const files: FolderImageFile[] = [];
  for (let label = 0; label < classFolders.length; label++) {
    const classDir = path.join(dir, classFolders[label]);
    const names = await imageFiles(classDir);
    if (names.length === 0)
      fail(`${classDir}: class folder has no images (expected ${EXPECTED_FILES})`);
    for (const name of names)
      files.push({ path: path.join(classDir, name), rel: `${classFolders[label]}/${name}`, label });
  }
  return { dir, classFolders, classNames: classNamesFromFolders(classFolders), files };
}

/**
 * Runs `fn` on each item with up to `limit` calls in flight and yields the results in item order.
 * At most `limit` results are held at once.
 */
async function* mapOrdered<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const queue: Promise<R>[] = [];
  let next = 0;
  const fill = () => {
    while (next < items.length && queue.length < limit) {
      const p = fn(items[next++]);
      // Awaited in order below; this only keeps a failure that is never reached (the consumer
      // stopped early, or an earlier item failed) from being an unhandled rejection.
      p.catch(() => undefined);
      queue.push(p);
    }
  };
  fill();
  while (queue.length > 0) {
    const result = await queue[0];
    queue.shift();
    fill();
    yield result;
  }
}

async function sha256File(file: string): Promise<{ hex: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { hex: hash.digest('hex'), bytes };
}

/** One image file's content hash, as a shard's statistics list it. */
export interface FolderFileHash {
  rel: string;
  bytes: number;
  sha256: string;
}

/** The content hashes of `files`, in order, a few files at a time (streamed, never whole). */
export async function hashFolderFiles(files: FolderImageFile[]): Promise<FolderFileHash[]> {
  const out: FolderFileHash[] = [];
  const hashed = mapOrdered(files, HASH_CONCURRENCY, async (f) => {
    try {
      return await sha256File(f.path);
    } catch (e) {
      fail(`${f.path}: cannot read the file (${(e as Error).message})`);
    }
  });
  let i = 0;
  for await (const h of hashed) out.push({ rel: files[i++].rel, bytes: h.bytes, sha256: h.hex });
  return out;
}

/**
 * One manifest entry for a whole split folder: `bytes` is the total size of its image files and
 * `sha256` hashes, for each image file in order, `<path relative to the split dir>\n<sha256 hex>\n`.
 * Sharded protect computes it from the shards' file lists with the same formula.
 */
export function combineFolderHashes(dir: string, hashes: FolderFileHash[]): SourceFile {
  const hash = createHash('sha256');
  let bytes = 0;
  for (const h of hashes) {
    hash.update(`${h.rel}\n${h.sha256}\n`);
    bytes += h.bytes;
  }
  return { path: dir, bytes, sha256: hash.digest('hex') };
}

/** combineFolderHashes over every file of a split, hashed streaming (no list held). */
export async function hashFolderSplit(
  split: Pick<FolderSplit, 'dir' | 'files'>,
): Promise<SourceFile> {
  const hash = createHash('sha256');
  let bytes = 0;
  const hashed = mapOrdered(split.files, HASH_CONCURRENCY, async (f) => {
    try {
      return await sha256File(f.path);
    } catch (e) {
      fail(`${f.path}: cannot read the file (${(e as Error).message})`);
    }
  });
  let i = 0;
  for await (const h of hashed) {
    hash.update(`${split.files[i++].rel}\n${h.hex}\n`);
    bytes += h.bytes;
  }
  return { path: split.dir, bytes, sha256: hash.digest('hex') };
}

/** libvips' message in one line: its system error (a full disk) when it gives one. */
function sharpMessage(e: unknown): string {
  const lines = (e instanceof Error ? e.message : String(e)).split('\n').filter((l) => l.trim());
  const system = lines.find((l) => l.startsWith('system error: '));
  return system ?? lines[0] ?? 'unknown error';
}

/** Shape of the first image (and the channel count every image is converted to). */
async function firstShape(file: string, channels: 1 | 3 | undefined): Promise<Shape> {
  let meta: Metadata;
  try {
    // The header only (nothing is decoded); the size is checked below.
    meta = await (await sharp(file, { limitInputPixels: false })).metadata();
  } catch (e) {
    fail(`${file}: not a readable image (${sharpMessage(e)})`);
  }
  if (!meta.width || !meta.height)
    fail(`${file}: not a readable image (sharp reports no width and height)`);
  if (meta.width * meta.height > MAX_IMAGE_PIXELS)
    fail(
      `${file}: image is ${meta.width}×${meta.height}, larger than the ${MAX_IMAGE_PIXELS} ` +
        `pixels onepixel decodes (every image of a folder dataset has the first one's size)`,
    );
  const c = channels ?? (meta.channels === 1 || meta.channels === 2 ? 1 : 3);
  return { width: meta.width, height: meta.height, channels: c };
}

/**
 * Decodes one image to raw uint8 H×W×C with the dataset's channel count, checking its size. sharp
 * refuses, from the header and before decoding, an image of more pixels than the dataset's, so a
 * file declaring a huge size costs nothing; one of as many pixels but another shape is refused
 * after decoding.
 */
async function decodeImage(file: string, shape: Shape, firstPath: string): Promise<Uint8Array> {
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await (
      await sharp(file, { limitInputPixels: shape.width * shape.height })
    )
      .removeAlpha()
      .toColourspace(shape.channels === 1 ? 'b-w' : 'srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    if (/pixel limit/i.test(sharpMessage(e))) {
      // Reading the header only: no limit needed.
      const meta = await (
        await sharp(file, { limitInputPixels: false })
      )
        .metadata()
        .catch(() => null);
      fail(
        `${file}: image is ${meta?.width ?? '?'}×${meta?.height ?? '?'}, but the dataset's ` +
          `images are ${shape.width}×${shape.height} (first: ${firstPath})`,
      );
    }
    fail(`${file}: not a readable image (${sharpMessage(e)})`);
  }
  const { info, data } = out;
  if (info.width !== shape.width || info.height !== shape.height)
    fail(
      `${file}: image is ${info.width}×${info.height}, but the dataset's images are ` +
        `${shape.width}×${shape.height} (first: ${firstPath})`,
    );
  if (
    info.channels !== shape.channels ||
    data.length !== shape.width * shape.height * shape.channels
  )
    fail(
      `${file}: decoded to ${info.channels} channels (${data.length} bytes), expected ` +
        `${shape.channels} channels of ${shape.width}×${shape.height}`,
    );
  // A plain Uint8Array view (not a Buffer), like every other reader's images.
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

function folderStream(
  split: FolderSplit,
  shape: Shape,
  firstPath: string,
  concurrency: number,
): ImageStream {
  return {
    ...shape,
    classNames: split.classNames,
    count: split.files.length,
    async *records(): AsyncGenerator<ImageRecord> {
      const decoded = mapOrdered(split.files, concurrency, async (f) => ({
        image: await decodeImage(f.path, shape, firstPath),
        label: f.label,
        ref: f.path,
      }));
      yield* decoded;
    },
  };
}

/** Lists names (at most a few) for an error message. */
function someNames(names: string[]): string {
  const shown = names.slice(0, 5).map((n) => JSON.stringify(n));
  return shown.join(', ') + (names.length > 5 ? `, … (${names.length} in all)` : '');
}

/** A class-folder dataset listed but not read: its splits' files, and the shape of its images. */
export interface FolderListing {
  dir: string;
  train: FolderSplit;
  test: FolderSplit | null;
  shape: Shape;
  /** The first training image, whose size and channels every image must have. */
  firstPath: string;
}

/**
 * Lists a class-folder dataset (see openFolder for the layouts it accepts) and reads the first
 * image's header; reads no other image.
 */
export async function listFolder(dir: string, channels: 1 | 3 | undefined): Promise<FolderListing> {
  if (channels !== undefined && channels !== 1 && channels !== 3)
    fail(`channels ${String(channels)}: expected 1 (grayscale) or 3 (RGB)`);
  let st;
  try {
    st = await stat(dir);
  } catch {
    fail(`${dir}: folder not found (expected a folder of class folders of images)`);
  }
  if (!st.isDirectory())
    fail(`${dir}: not a folder (expected a folder of class folders of images)`);

  const trainDir = path.join(dir, 'train');
  const testDir = path.join(dir, 'test');
  const top = await subdirs(dir);
  let trainSplit: FolderSplit;
  let testSplit: FolderSplit | null = null;
  const trainHasClasses = top.includes('train') && (await subdirs(trainDir)).length > 0;
  const testHasClasses = top.includes('test') && (await subdirs(testDir)).length > 0;
  const onlyTrain =
    trainHasClasses && (await readdir(dir)).filter((n) => !isHidden(n)).every((n) => n === 'train');
  if (trainHasClasses && (testHasClasses || onlyTrain)) {
    trainSplit = await listFolderSplit(trainDir);
    if (testHasClasses) {
      testSplit = await listFolderSplit(testDir);
      const a = trainSplit.classFolders;
      const b = testSplit.classFolders;
      if (a.length !== b.length || a.some((n, i) => n !== b[i])) {
        const missing = a.filter((n) => !b.includes(n));
        const extra = b.filter((n) => !a.includes(n));
        fail(
          `${testDir}: its class folders differ from ${trainDir}'s (expected the same ` +
            `${a.length} class folders` +
            (missing.length > 0 ? `; missing from test: ${someNames(missing)}` : '') +
            (extra.length > 0 ? `; only in test: ${someNames(extra)}` : '') +
            ')',
        );
      }
    }
  } else {
    trainSplit = await listFolderSplit(dir);
  }
  const firstPath = trainSplit.files[0].path;
  const shape = await firstShape(firstPath, channels);
  return { dir, train: trainSplit, test: testSplit, shape, firstPath };
}

/** The images `files` of a listed dataset as a stream, decoded a few at a time in file order. */
export function folderFilesStream(
  listing: FolderListing,
  split: FolderSplit,
  files: FolderImageFile[],
  concurrency = DEFAULT_CONCURRENCY,
): ImageStream {
  return folderStream({ ...split, files }, listing.shape, listing.firstPath, concurrency);
}

/**
 * Opens a class-folder dataset: `dir/<class>/*.{png,jpg,jpeg,webp}`, or `dir/train/<class>/…` and
 * `dir/test/<class>/…` when both hold class folders (also `dir/train/<class>/…` alone when `train`
 * is the only thing in `dir`). Labels are indices into the sorted class folder names; every image
 * must have the first image's size and is converted to one channel count (options.channels, else
 * 1 when the first image is grayscale, 3 otherwise). Alpha is dropped.
 */
export async function openFolder(
  dir: string,
  options: OpenFolderOptions = {},
): Promise<DatasetSplits<ImageStream>> {
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    fail(`concurrency ${concurrency}: expected a whole number of at least 1`);
  const listing = await listFolder(dir, options.channels);
  const { train: trainSplit, test: testSplit, shape, firstPath } = listing;
  const files = [await hashFolderSplit(trainSplit)];
  if (testSplit) files.push(await hashFolderSplit(testSplit));
  return {
    format: 'folder',
    dataDir: dir,
    train: folderStream(trainSplit, shape, firstPath, concurrency),
    test: testSplit ? folderStream(testSplit, shape, firstPath, concurrency) : null,
    files,
  };
}

/** A class name as a folder name: `/`, `\` and NUL become `_`, and so do leading dots. */
export function safeFolderName(name: string): string {
  // eslint-disable-next-line no-control-regex
  const s = name.replace(/[/\\\u0000]/g, '_');
  const dots = /^\.*/.exec(s)?.[0].length ?? 0;
  return '_'.repeat(dots) + s.slice(dots);
}

/** The class folder names writePngFolder uses: `<label>_<safe name>`, label zero-padded. */
export function classFolderNames(classNames: string[], where: string): string[] {
  const width = String(Math.max(classNames.length - 1, 0)).length;
  const seen = new Map<string, number>();
  return classNames.map((name, label) => {
    const safe = safeFolderName(name);
    const before = seen.get(safe);
    if (before !== undefined)
      fail(
        `${where}: class names ${JSON.stringify(classNames[before])} and ${JSON.stringify(name)} ` +
          `both become folder name ${JSON.stringify(safe)}; expected class names that differ ` +
          `after replacing /, \\, NUL and leading dots with _`,
      );
    seen.set(safe, label);
    return `${String(label).padStart(width, '0')}_${safe}`;
  });
}

const WRITE_CONCURRENCY = 4;

/** The PNG encoder of one raw image (1-channel PNGs for grayscale), as writePngFolder writes it. */
export async function pngWriter(image: Uint8Array, shape: Shape): Promise<Sharp> {
  const { width, height, channels } = shape;
  const img = await sharp(image, { raw: { width, height, channels: channels as 1 | 3 } });
  return (channels === 1 ? img.toColourspace('b-w') : img).png();
}

export interface PngRun {
  /** `<split dir>/<label>_<class>` folders (created here), one per label. */
  splitDir: string;
  folders: string[];
  shape: Shape;
  /** The first record's index in its split, and the width its file names pad indices to. */
  first: number;
  indexWidth: number;
  /** Called after each PNG lands. */
  onImage?: () => void;
  /** Checks a record before it is written (fails with a line naming it). */
  check?: (rec: ImageRecord, index: number) => void;
}

/**
 * Writes each record as `<splitDir>/<folder of its label>/<index>.png`, index counted from `first`,
 * up to four PNGs encoding at once; returns how many it wrote. On the first failure (a read, a
 * check, a write, or onImage) it stops reading, and every PNG it started ends before the failure
 * reaches the caller: the caller removes the folder, and a PNG landing during that removal would
 * keep the folder there. Shared by writePngFolder and the sharded PNG part (src/data/parts.ts).
 */
export async function writePngRun(o: PngRun, records: AsyncIterable<ImageRecord>): Promise<number> {
  const { splitDir, folders, shape } = o;
  for (const f of folders) await mkdir(path.join(splitDir, f), { recursive: true });
  const inFlight: Promise<void>[] = [];
  let failure: unknown = null;
  let index = o.first;
  try {
    for await (const rec of records) {
      if (failure !== null) break;
      o.check?.(rec, index);
      if (!Number.isInteger(rec.label) || rec.label < 0 || rec.label >= folders.length)
        fail(`${rec.ref}: label ${rec.label}, expected 0..${folders.length - 1}`);
      const file = path.join(
        splitDir,
        folders[rec.label],
        `${String(index).padStart(o.indexWidth, '0')}.png`,
      );
      const ref = rec.ref;
      // Records are only valid until the next one is read: sharp gets its own copy.
      const png = await pngWriter(rec.image.slice(), shape);
      // Never rejects: the first failure (writing, or onImage) is kept and thrown after the loop.
      const written = png.toFile(file).then(
        () => o.onImage?.(),
        (e: unknown) => fail(`${file}: cannot write the PNG of ${ref} (${sharpMessage(e)})`),
      );
      inFlight.push(
        written.catch((e: unknown) => {
          failure ??= e;
        }),
      );
      index++;
      while (inFlight.length >= WRITE_CONCURRENCY) await inFlight.shift();
    }
  } finally {
    await Promise.all(inFlight);
  }
  if (failure !== null)
    throw failure instanceof Error ? failure : new OnepixelError(String(failure));
  return index - o.first;
}

/**
 * Writes each split as PNGs: `dir/<split>/<label>_<class>/<index>.png`, index = the record's index
 * in its split zero-padded to the width of the split's count (see the top of this file for the
 * label prefix). Grayscale splits give 1-channel PNGs. Every class folder is created, even one
 * with no images in that split. `openFolder(dir)` reads back the same images, labels and names.
 */
export const writePngFolder: DatasetWriter = async (dir, splits, onImage) => {
  for (const { name, stream } of splits) {
    const splitDir = path.join(dir, name);
    const { width, height, channels, count } = stream;
    if (channels !== 1 && channels !== 3)
      fail(`${name} split: ${channels} channels; expected 1 (grayscale) or 3 (RGB)`);
    const size = width * height * channels;
    const written = await writePngRun(
      {
        splitDir,
        folders: classFolderNames(stream.classNames, `${name} split`),
        shape: { width, height, channels },
        first: 0,
        indexWidth: String(count).length,
        onImage,
        check: (rec, index) => {
          if (index >= count)
            fail(`${rec.ref}: the ${name} split holds more than the ${count} images it announced`);
          if (rec.image.length !== size)
            fail(
              `${rec.ref}: ${rec.image.length} pixel bytes, expected ${width}×${height}×${channels}`,
            );
        },
      },
      stream.records(),
    );
    if (written !== count)
      fail(`${splitDir}: the ${name} split gave ${written} images, but announced ${count}`);
  }
};
