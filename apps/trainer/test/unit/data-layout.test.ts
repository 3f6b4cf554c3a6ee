import { DatasetError } from '../../src/data/errors';
import { compareCodePoints, isImageFile } from '../../src/data/extensions';
import { classifyListing, type ListedObject } from '../../src/data/layout';

const ROOT = 's3://b/ds/';
const limits = { maxFileBytes: 1000 };
const objs = (...keys: string[]): ListedObject[] => keys.map((key) => ({ key: `ds/${key}`, size: 10 }));
const classify = (o: ListedObject[]) => classifyListing(o, 'ds/', ROOT, limits);

function problemsOf(o: ListedObject[]): string {
  try {
    classify(o);
  } catch (e) {
    expect(e).toBeInstanceOf(DatasetError);
    return (e as Error).message;
  }
  throw new Error('expected a DatasetError');
}

describe('image extensions and ordering', () => {
  it('accepts torchvision IMG_EXTENSIONS case-insensitively', () => {
    for (const f of ['a.jpg', 'a.JPEG', 'a.png', 'a.ppm', 'a.bmp', 'a.pgm', 'a.tif', 'a.TIFF', 'a.webp']) {
      expect(isImageFile(f)).toBe(true);
    }
    for (const f of ['a.gif', 'a.txt', 'a.jpg.txt', 'jpg', 'a.heic']) expect(isImageFile(f)).toBe(false);
  });

  it('sorts by code point like Python (not by UTF-16 unit)', () => {
    const names = ['b', 'B', '\u{1F600}', '\uFF21', 'a', '_x', 'T-shirt_top', 'Trouser'];
    expect([...names].sort(compareCodePoints)).toEqual([
      'B',
      'T-shirt_top',
      'Trouser',
      '_x',
      'a',
      'b',
      '\uFF21',
      '\u{1F600}',
    ]);
    // UTF-16 order would put the astral character first.
    expect([...names].sort()[6]).toBe('\u{1F600}');
  });
});

describe('classifyListing', () => {
  it('builds classes from train/ sorted by code point and candidates in (split, class, key) order', () => {
    const l = classify(
      objs('train/dog/2.jpg', 'train/cat/b.png', 'train/cat/a.PNG', 'val/dog/1.jpg', 'val/cat/9.jpg', 'README.md'),
    );
    expect(l.classes).toEqual(['cat', 'dog']);
    expect(l.candidates.map((c) => c.key)).toEqual([
      'ds/train/cat/a.PNG',
      'ds/train/cat/b.png',
      'ds/train/dog/2.jpg',
      'ds/val/cat/9.jpg',
      'ds/val/dog/1.jpg',
    ]);
    expect(l.skipped).toEqual([]);
  });

  it('ignores hidden files and folders and objects outside train/ and val/, skips non-images', () => {
    const l = classify(
      objs(
        'train/cat/a.jpg',
        'train/cat/.DS_Store',
        'train/.ipynb_checkpoints/x.jpg',
        'train/dog/b.jpg',
        'train/dog/notes.txt',
        'val/cat/c.jpg',
        'test/cat/z.jpg',
        'labels.csv',
      ),
    );
    expect(l.classes).toEqual(['cat', 'dog']);
    expect(l.candidates).toHaveLength(3);
    expect(l.skipped).toEqual([{ key: 'ds/train/dog/notes.txt', reason: expect.stringMatching(/not an image file/) }]);
  });

  it('skips empty and oversized files without fetching them', () => {
    const l = classifyListing(
      [
        { key: 'ds/train/a/1.jpg', size: 10 },
        { key: 'ds/train/a/big.jpg', size: 1001 },
        { key: 'ds/train/b/2.jpg', size: 10 },
        { key: 'ds/train/b/empty.jpg', size: 0 },
        { key: 'ds/val/a/3.jpg', size: 10 },
      ],
      'ds/',
      ROOT,
      limits,
    );
    expect(l.candidates.map((c) => c.key)).toEqual(['ds/train/a/1.jpg', 'ds/train/b/2.jpg', 'ds/val/a/3.jpg']);
    expect(l.skipped.map((s) => [s.key, s.reason.split(':')[0]])).toEqual([
      ['ds/train/a/big.jpg', 'file too large'],
      ['ds/train/b/empty.jpg', 'empty file'],
    ]);
  });

  it('counts directory markers as class folders', () => {
    const msg = problemsOf([...objs('train/a/1.jpg', 'train/b/2.jpg', 'val/a/3.jpg'), { key: 'ds/train/c/', size: 0 }]);
    expect(msg).toMatch(/train\/c\/ contains no image files/);
  });

  it.each([
    ['no train/', objs('val/a/1.jpg', 'val/b/1.jpg'), /missing train\/ at s3:\/\/b\/ds\//],
    ['no val/', objs('train/a/1.jpg', 'train/b/1.jpg'), /missing val\/ at s3:\/\/b\/ds\//],
    [
      'one class',
      objs('train/a/1.jpg', 'val/a/1.jpg'),
      /train\/ has 1 class folder \(a\); a classifier needs at least 2/,
    ],
    [
      'val class not in train',
      objs('train/a/1.jpg', 'train/b/1.jpg', 'val/c/1.jpg'),
      /val\/ has class folders not in train\/: c/,
    ],
    [
      'class without images',
      objs('train/a/1.jpg', 'train/b/x.txt', 'val/a/1.jpg'),
      /train\/b\/ contains no image files/,
    ],
    [
      'image too deep',
      objs('train/a/1.jpg', 'train/b/sub/1.jpg', 'train/b/2.jpg', 'val/a/1.jpg'),
      /image at the wrong depth: ds\/train\/b\/sub\/1.jpg/,
    ],
    [
      'image too shallow',
      objs('train/a/1.jpg', 'train/b/2.jpg', 'train/3.jpg', 'val/a/1.jpg'),
      /image at the wrong depth: ds\/train\/3.jpg/,
    ],
    [
      '".." segment',
      objs('train/a/1.jpg', 'train/b/2.jpg', 'val/a/1.jpg', 'train/../b/3.jpg'),
      /unsafe object key "ds\/train\/..\/b\/3.jpg"/,
    ],
    ['NUL byte', objs('train/a/1.jpg', 'train/b/2\0.jpg', 'val/a/1.jpg'), /unsafe object key/],
    [
      'all oversized',
      [...objs('train/a/1.jpg', 'val/a/1.jpg'), { key: 'ds/train/b/big.jpg', size: 5000 }],
      /train\/b\/ has no usable images/,
    ],
  ])('%s → DatasetError naming it', (_name, listing, pattern) => {
    const msg = problemsOf(listing);
    expect(msg).toMatch(/^invalid dataset at s3:\/\/b\/ds\/: /);
    expect(msg).toMatch(pattern);
  });

  it('reports every problem at once, with details', () => {
    try {
      classify(objs('val/x/1.jpg'));
      throw new Error('expected a DatasetError');
    } catch (e) {
      const err = e as DatasetError;
      expect(err).toBeInstanceOf(DatasetError);
      expect(err.code).toBe('DATASET_INVALID');
      expect(err.details.problems).toEqual([
        expect.stringMatching(/missing train\//),
        expect.stringMatching(/val\/ has class folders not in train\/: x/),
      ]);
    }
  });
});
