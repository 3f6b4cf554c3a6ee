/**
 * Writes a small, balanced ImageFolder tree of 28×28 greyscale PNGs from Fashion-MNIST (MIT, © Zalando SE).
 *
 *   npx tsx scripts/fashion-mnist-to-imagefolder.ts [IDX_DIR] --out DIR \
 *     [--train-per-class 40] [--val-per-class 10] [--classes Trouser,Sneaker,Bag]
 *
 * IDX_DIR holds the four gzipped IDX files (train-images-idx3-ubyte.gz, …). Without it, Debian's
 * dataset-fashion-mnist package is fetched with `apt-get download`, unpacked with `dpkg -x`, and its
 * /usr/share/datasets/fashion-mnist/ files are kept in .gpulab/cache/fashion-mnist for next time.
 *
 * Selection is deterministic: for each class, the first N images of that class in the train file go to
 * train/<class>/, the first M of the test file to val/<class>/. File names are the image's index in its source file.
 * DIR/train and DIR/val are replaced.
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';

/** Labels 0..9, with "/" and spaces made folder-safe. */
export const FASHION_MNIST_CLASSES = [
  'T-shirt_top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle_boot',
] as const;

export const IDX_FILES = {
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
} as const;

const DEBIAN_PACKAGE = 'dataset-fashion-mnist';
const DEBIAN_DATA_DIR = 'usr/share/datasets/fashion-mnist';

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  pixels: Uint8Array;
}

function gunzipIfNeeded(b: Buffer): Buffer {
  return b[0] === 0x1f && b[1] === 0x8b ? gunzipSync(b) : b;
}

/** Parses an IDX3 unsigned-byte image file (gzipped or not). */
export function parseIdxImages(file: Buffer): IdxImages {
  const b = gunzipIfNeeded(file);
  if (b.length < 16 || b.readUInt32BE(0) !== 0x00000803) throw new Error('not an IDX3 ubyte image file');
  const count = b.readUInt32BE(4);
  const rows = b.readUInt32BE(8);
  const cols = b.readUInt32BE(12);
  if (b.length !== 16 + count * rows * cols) throw new Error(`IDX3 file size does not match ${count}x${rows}x${cols}`);
  return { count, rows, cols, pixels: new Uint8Array(b.buffer, b.byteOffset + 16, count * rows * cols) };
}

/** Parses an IDX1 unsigned-byte label file (gzipped or not). */
export function parseIdxLabels(file: Buffer): Uint8Array {
  const b = gunzipIfNeeded(file);
  if (b.length < 8 || b.readUInt32BE(0) !== 0x00000801) throw new Error('not an IDX1 ubyte label file');
  const count = b.readUInt32BE(4);
  if (b.length !== 8 + count) throw new Error(`IDX1 file size does not match ${count} labels`);
  return new Uint8Array(b.buffer, b.byteOffset + 8, count);
}

/** For each wanted label, the indices of its first `perClass` occurrences, in file order. */
export function firstPerClass(labels: Uint8Array, wanted: readonly number[], perClass: number): Map<number, number[]> {
  const picked = new Map<number, number[]>(wanted.map((l) => [l, []]));
  for (let i = 0; i < labels.length; i++) {
    const list = picked.get(labels[i]!);
    if (list && list.length < perClass) list.push(i);
  }
  for (const [label, list] of picked) {
    if (list.length < perClass) {
      throw new Error(`only ${list.length} images of class ${FASHION_MNIST_CLASSES[label]}, wanted ${perClass}`);
    }
  }
  return picked;
}

/** A 28×28 (rows×cols) greyscale PNG of image `i`; the bytes are a pure function of the pixels. */
export function imagePng(images: IdxImages, i: number): Promise<Buffer> {
  const size = images.rows * images.cols;
  const raw = Buffer.from(images.pixels.subarray(i * size, (i + 1) * size));
  return sharp(raw, { raw: { width: images.cols, height: images.rows, channels: 1 } })
    .toColourspace('b-w')
    .png({ compressionLevel: 9, adaptiveFiltering: true })
    .toBuffer();
}

export interface ConvertOptions {
  idxDir: string;
  outDir: string;
  classes: readonly string[];
  trainPerClass: number;
  valPerClass: number;
}

/** Writes outDir/{train,val}/<class>/<index>.png; returns the number of files written per split. */
export async function writeImageFolder(opts: ConvertOptions): Promise<{ train: number; val: number }> {
  const labelOf = (name: string) => {
    const l = FASHION_MNIST_CLASSES.indexOf(name as (typeof FASHION_MNIST_CLASSES)[number]);
    if (l < 0) throw new Error(`unknown class ${JSON.stringify(name)}; choose from ${FASHION_MNIST_CLASSES.join(',')}`);
    return l;
  };
  const wanted = opts.classes.map(labelOf);
  const read = (f: string) => readFileSync(join(opts.idxDir, f));
  const counts = { train: 0, val: 0 };
  const splits = [
    { split: 'train' as const, images: IDX_FILES.trainImages, labels: IDX_FILES.trainLabels, n: opts.trainPerClass },
    { split: 'val' as const, images: IDX_FILES.testImages, labels: IDX_FILES.testLabels, n: opts.valPerClass },
  ];
  for (const s of splits) {
    const images = parseIdxImages(read(s.images));
    const labels = parseIdxLabels(read(s.labels));
    if (labels.length !== images.count) throw new Error(`${s.labels} has ${labels.length} labels for ${images.count}`);
    const picked = firstPerClass(labels, wanted, s.n);
    rmSync(join(opts.outDir, s.split), { recursive: true, force: true });
    for (const [label, indices] of picked) {
      const dir = join(opts.outDir, s.split, FASHION_MNIST_CLASSES[label]!);
      mkdirSync(dir, { recursive: true });
      for (const i of indices) {
        writeFileSync(join(dir, `${String(i).padStart(5, '0')}.png`), await imagePng(images, i));
        counts[s.split]++;
      }
    }
  }
  return counts;
}

/** Fetches Debian's dataset-fashion-mnist into `cacheDir` (unless already there); returns the IDX directory. */
export function ensureDebianFashionMnist(cacheDir: string): string {
  if (Object.values(IDX_FILES).every((f) => existsSync(join(cacheDir, f)))) return cacheDir;
  const work = mkdtempSync(join(tmpdir(), 'fashion-mnist-'));
  try {
    execFileSync('apt-get', ['download', DEBIAN_PACKAGE], { cwd: work, stdio: 'inherit' });
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${DEBIAN_PACKAGE} produced no .deb`);
    execFileSync('dpkg', ['-x', join(work, deb), join(work, 'root')], { stdio: 'inherit' });
    mkdirSync(cacheDir, { recursive: true });
    for (const f of Object.values(IDX_FILES)) copyFileSync(join(work, 'root', DEBIAN_DATA_DIR, f), join(cacheDir, f));
    return cacheDir;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function parseArgs(argv: string[]) {
  const opts = { idxDir: undefined as string | undefined, out: '', trainPerClass: 40, valPerClass: 10, classes: '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const count = () => {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1) throw new Error(`${a} must be a positive integer`);
      return n;
    };
    if (a === '--out') opts.out = value();
    else if (a === '--train-per-class') opts.trainPerClass = count();
    else if (a === '--val-per-class') opts.valPerClass = count();
    else if (a === '--classes') opts.classes = value();
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else opts.idxDir = a;
  }
  if (!opts.out) throw new Error('--out DIR is required');
  return opts;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const idxDir = args.idxDir
    ? resolve(args.idxDir)
    : ensureDebianFashionMnist(resolve(__dirname, '..', '.gpulab', 'cache', 'fashion-mnist'));
  const classes = args.classes ? args.classes.split(',').map((c) => c.trim()) : [...FASHION_MNIST_CLASSES];
  const counts = await writeImageFolder({
    idxDir,
    outDir: resolve(args.out),
    classes,
    trainPerClass: args.trainPerClass,
    valPerClass: args.valPerClass,
  });
  console.log(`wrote ${counts.train} train and ${counts.val} val images of ${classes.join(', ')} to ${args.out}`);
}

if (require.main === module) {
  main().catch((e) => {
    console.error((e as Error).message);
    process.exit(1);
  });
}
