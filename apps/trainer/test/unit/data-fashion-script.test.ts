import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import {
  FASHION_MNIST_CLASSES,
  firstPerClass,
  IDX_FILES,
  parseIdxImages,
  parseIdxLabels,
  writeImageFolder,
} from '../../../../scripts/fashion-mnist-to-imagefolder';

function idxImages(images: number[][], rows: number, cols: number): Buffer {
  const head = Buffer.alloc(16);
  head.writeUInt32BE(0x803, 0);
  head.writeUInt32BE(images.length, 4);
  head.writeUInt32BE(rows, 8);
  head.writeUInt32BE(cols, 12);
  return gzipSync(Buffer.concat([head, Buffer.from(images.flat())]));
}

function idxLabels(labels: number[]): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(0x801, 0);
  head.writeUInt32BE(labels.length, 4);
  return gzipSync(Buffer.concat([head, Buffer.from(labels)]));
}

describe('fashion-mnist-to-imagefolder', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fmnist-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('parses gzipped IDX files and rejects malformed ones', () => {
    const imgs = parseIdxImages(idxImages([[1, 2, 3, 4, 5, 6]], 2, 3));
    expect([imgs.count, imgs.rows, imgs.cols, Array.from(imgs.pixels)]).toEqual([1, 2, 3, [1, 2, 3, 4, 5, 6]]);
    expect(Array.from(parseIdxLabels(idxLabels([3, 1])))).toEqual([3, 1]);
    expect(() => parseIdxImages(idxLabels([1]))).toThrow(/not an IDX3/);
    expect(() => parseIdxLabels(Buffer.from([0, 0, 8, 1, 0, 0, 0, 9, 1]))).toThrow(/does not match 9 labels/);
  });

  it('takes the first N of each class in file order, and fails when a class has too few', () => {
    const labels = Uint8Array.from([1, 8, 1, 7, 8, 1, 8]);
    expect(firstPerClass(labels, [8, 1], 2)).toEqual(
      new Map([
        [8, [1, 4]],
        [1, [0, 2]],
      ]),
    );
    expect(() => firstPerClass(labels, [7], 2)).toThrow(/only 1 images of class Sneaker, wanted 2/);
  });

  it('writes a balanced, deterministic ImageFolder of greyscale PNGs', async () => {
    const px = (v: number) => new Array<number>(4).fill(v);
    // train labels: Trouser(1), Bag(8), Trouser, Bag, Trouser; test: Bag, Trouser
    writeFileSync(join(dir, IDX_FILES.trainImages), idxImages([px(10), px(20), px(30), px(40), px(50)], 2, 2));
    writeFileSync(join(dir, IDX_FILES.trainLabels), idxLabels([1, 8, 1, 8, 1]));
    writeFileSync(join(dir, IDX_FILES.testImages), idxImages([px(60), px(70)], 2, 2));
    writeFileSync(join(dir, IDX_FILES.testLabels), idxLabels([8, 1]));
    const out = join(dir, 'out');
    const counts = await writeImageFolder({
      idxDir: dir,
      outDir: out,
      classes: ['Bag', 'Trouser'],
      trainPerClass: 2,
      valPerClass: 1,
    });
    expect(counts).toEqual({ train: 4, val: 2 });
    expect(readdirSync(join(out, 'train', 'Trouser'))).toEqual(['00000.png', '00002.png']);
    expect(readdirSync(join(out, 'train', 'Bag'))).toEqual(['00001.png', '00003.png']);
    expect(readdirSync(join(out, 'val', 'Bag'))).toEqual(['00000.png']);
    const png = readFileSync(join(out, 'train', 'Bag', '00003.png'));
    const meta = await sharp(png).metadata();
    expect([meta.width, meta.height, meta.channels]).toEqual([2, 2, 1]);
    expect(Array.from(await sharp(png).extractChannel(0).raw().toBuffer())).toEqual([40, 40, 40, 40]);
    const again = join(dir, 'again');
    await writeImageFolder({
      idxDir: dir,
      outDir: again,
      classes: ['Bag', 'Trouser'],
      trainPerClass: 2,
      valPerClass: 1,
    });
    expect(readFileSync(join(again, 'train', 'Bag', '00003.png')).equals(png)).toBe(true);
    await expect(
      writeImageFolder({ idxDir: dir, outDir: out, classes: ['Hat'], trainPerClass: 1, valPerClass: 1 }),
    ).rejects.toThrow(/unknown class "Hat"/);
  });
});

describe('bundled examples/datasets/fashion-mini', () => {
  const root = join(__dirname, '../../../../examples/datasets/fashion-mini');

  it('has 4 classes × (40 train + 10 val) 28x28 greyscale PNGs, under 150 KB in all', async () => {
    let bytes = 0;
    for (const [split, n] of [
      ['train', 40],
      ['val', 10],
    ] as const) {
      expect(readdirSync(join(root, split)).sort()).toEqual(['Bag', 'Sneaker', 'T-shirt_top', 'Trouser']);
      for (const c of readdirSync(join(root, split))) {
        expect(FASHION_MNIST_CLASSES).toContain(c);
        const files = readdirSync(join(root, split, c));
        expect(files).toHaveLength(n);
        for (const f of files) {
          const buf = readFileSync(join(root, split, c, f));
          bytes += buf.length;
          const m = await sharp(buf).metadata();
          expect([m.format, m.width, m.height, m.channels]).toEqual(['png', 28, 28, 1]);
        }
      }
    }
    bytes += statSync(join(root, 'README.md')).size;
    expect(bytes).toBeLessThan(150 * 1024);
  });
});
