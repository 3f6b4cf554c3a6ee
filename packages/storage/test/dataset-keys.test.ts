import fc from 'fast-check';
import { checkRelativePath, datasetKeys, partSizes } from '../src';

describe('checkRelativePath', () => {
  it('accepts ordinary relative paths, spaces and non-Latin names, and returns them in NFC', () => {
    expect(checkRelativePath('train/golden retriever/IMG 0001.JPG')).toEqual({
      ok: true,
      path: 'train/golden retriever/IMG 0001.JPG',
    });
    expect(checkRelativePath('val/猫/001.png')).toMatchObject({ ok: true });
    expect(checkRelativePath('train/cafe\u0301/x.png')).toEqual({ ok: true, path: 'train/caf\u00e9/x.png' });
    expect(checkRelativePath('train/emoji/🐱.png')).toMatchObject({ ok: true });
  });

  it.each([
    ['', /empty/],
    ['train/../x.png', /"\.\." segment/],
    ['./train/x.png', /"\." segment/],
    ['/etc/passwd', /absolute/],
    ['C:/x.png', /drive letter/],
    ['train\\cat\\x.png', /backslash/],
    ['train/cat/x\u0000.png', /control/],
    ['train/cat/x\n.png', /control/],
    ['train/cat/x\u0085.png', /control/],
    ['train/cat/\u202egnp.exe', /bidirectional/],
    ['train/cat/\u2066x.png', /bidirectional/],
    ['train/cat/x\ufeff.png', /invisible/],
    ['train/cat/x\ufffd.png', /invisible/],
    ['train/cat/\ud800.png', /lone surrogate/],
    ['train//x.png', /empty segment/],
    ['train/cat/', /empty segment/],
    ['train/.ipynb_checkpoints/x.png', /hidden/],
    ['train/ cat/x.png', /leading or trailing spaces/],
    [`train/${'é'.repeat(130)}/x.png`, /longer than 200 bytes/],
    [`${'abcdefgh/'.repeat(60)}x.png`, /longer than 512 bytes/],
  ])('refuses %j', (path, why) => {
    const r = checkRelativePath(path);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(why);
  });

  it('never returns a path that escapes its prefix or carries a control character', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        const r = checkRelativePath(s);
        if (!r.ok) return;
        const key = datasetKeys.datasetFile('u', 'n', r.path);
        expect(key.startsWith('datasets/u/n/')).toBe(true);
        expect(r.path.split('/')).not.toContain('..');
        expect(/[\p{Cc}\\]/u.test(r.path)).toBe(false);
        expect(r.path.normalize('NFC')).toBe(r.path);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('partSizes', () => {
  it('cuts an object into full parts and a shorter last one', () => {
    expect(partSizes(10, 4)).toEqual([4, 4, 2]);
    expect(partSizes(8, 4)).toEqual([4, 4]);
    expect(partSizes(3, 4)).toEqual([3]);
  });
});
