import { crc32 } from 'node:zlib';
import { PNG } from 'pngjs';
import sharp, { type OutputInfo } from 'sharp';
import { decodeRgb, dimensions, ImageDecodeError, probe } from '../../src/data/image-kernel.cjs';
import { decodePng, FAST_MAX_PIXELS, inspectPng, readPngHeader } from '../../src/data/png-decode.cjs';
import {
  assemble,
  type Chunk,
  type ColorType,
  chunk,
  encodeChunks,
  encodePng,
  ihdr,
  imageData,
  type PngSpec,
  parseChunks,
  randomPalette,
  randomSamples,
  randomSpec,
  rng,
} from '../helpers/png-encode';

const MAX = 40_000_000;
const SIZES: [number, number][] = [
  [1, 1],
  [7, 3],
  [33, 17],
];
const FILTERS = [0, 1, 2, 3, 4];

/** What decodeRgb did before the fast path: sharp alone, with the same error mapping. */
async function viaSharp(b: Buffer, maxPixels = MAX): Promise<Buffer | string> {
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await sharp(b, { limitInputPixels: maxPixels })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    return /pixel limit/i.test((e as Error).message) ? 'TOO_LARGE' : 'UNDECODABLE';
  }
  expect(out.info.channels).toBe(3);
  return out.data;
}

/** decodeRgb's pixels, or its error code. */
async function viaKernel(b: Buffer, maxPixels = MAX): Promise<Buffer | string> {
  try {
    return Buffer.from((await decodeRgb(b, maxPixels)).data);
  } catch (e) {
    expect(e).toBeInstanceOf(ImageDecodeError);
    return (e as ImageDecodeError).code;
  }
}

function fast(b: Buffer): Buffer | null {
  const png = inspectPng(b);
  const img = png && decodePng(png);
  if (img) expect([img.width, img.height]).toEqual([png!.width, png!.height]);
  return img ? Buffer.from(img.data) : null;
}

/** Same pixels, or the same error code (Buffer.equals: jest's toEqual walks big buffers element by element). */
function expectSameOutcome(got: Buffer | string, want: Buffer | string): void {
  if (typeof got === 'string' || typeof want === 'string') expect(got).toEqual(want);
  else expect(got.equals(want)).toBe(true);
}

/** The fast path decodes `png` itself, byte for byte as sharp, and decodeRgb returns the same. */
async function expectFastSame(png: Buffer): Promise<void> {
  const want = await viaSharp(png);
  expect(typeof want).not.toBe('string');
  const got = fast(png);
  expect(got).not.toBeNull();
  expect(got!.equals(want as Buffer)).toBe(true);
  expectSameOutcome(await viaKernel(png), want);
}

/** The fast path hands `png` to sharp, and decodeRgb's outcome (pixels or error code) is sharp's. */
async function expectHandedToSharp(png: Buffer): Promise<Buffer | string> {
  expect(fast(png)).toBeNull();
  const want = await viaSharp(png);
  expectSameOutcome(await viaKernel(png), want);
  return want;
}

function pngOf(colorType: ColorType, depth: PngSpec['depth'], w: number, h: number, seed: number, extra = {}) {
  return encodePng(randomSpec(w, h, colorType, depth, seed, extra));
}

const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};

describe('PNG fast path: identical to sharp on every colour type, bit depth and filter', () => {
  const formats: [string, ColorType, PngSpec['depth']][] = [
    ['grey 8-bit', 0, 8],
    ['grey 1-bit', 0, 1],
    ['grey 2-bit', 0, 2],
    ['grey 4-bit', 0, 4],
    ['grey 16-bit', 0, 16],
    ['RGB 8-bit', 2, 8],
    ['RGB 16-bit', 2, 16],
    ['grey+alpha 8-bit', 4, 8],
    ['grey+alpha 16-bit', 4, 16],
    ['RGBA 8-bit', 6, 8],
    ['RGBA 16-bit', 6, 16],
  ];
  const cases = formats.flatMap(([name, ct, depth]) =>
    SIZES.flatMap(([w, h]) => FILTERS.map((f) => [name, w, h, f, ct, depth] as const)),
  );
  it.each(cases)('%s %ix%i, filter %i', async (_name, w, h, f, ct, depth) => {
    await expectFastSame(pngOf(ct, depth, w, h, w * 1000 + h * 10 + f + ct * 7, { filters: f }));
  });

  it.each([1, 2, 4, 8] as const)('palette %i-bit, with and without tRNS, all filters mixed', async (depth) => {
    for (const [w, h] of [...SIZES, [64, 9] as [number, number]]) {
      const entries = Math.min(1 << depth, 77);
      const palette = randomPalette(entries, depth * 31 + w);
      const base = randomSpec(w, h, 3, depth, w + h + depth, { palette, filters: FILTERS });
      await expectFastSame(encodePng(base));
      const alphas = Buffer.from(Array.from({ length: Math.min(entries, 5) }, (_, i) => (i * 97) % 256));
      await expectFastSame(encodePng({ ...base, between: [chunk('tRNS', alphas)] }));
    }
  });

  it('tRNS on grey and RGB (sharp makes it alpha, then drops it)', async () => {
    await expectFastSame(pngOf(0, 8, 33, 17, 1, { between: [chunk('tRNS', Buffer.from([0, 7]))] }));
    await expectFastSame(pngOf(0, 4, 33, 17, 2, { between: [chunk('tRNS', Buffer.from([0, 7]))] }));
    await expectFastSame(pngOf(0, 16, 33, 17, 3, { between: [chunk('tRNS', Buffer.from([3, 7]))] }));
    await expectFastSame(pngOf(2, 8, 33, 17, 4, { between: [chunk('tRNS', Buffer.from([0, 7, 0, 8, 0, 9]))] }));
    await expectFastSame(pngOf(2, 16, 33, 17, 5, { between: [chunk('tRNS', Buffer.from([1, 7, 2, 8, 3, 9]))] }));
  });

  it('ignores what libvips ignores: gAMA, cHRM, sRGB, sBIT, pHYs, tIME, bKGD, tEXt', async () => {
    const spec = randomSpec(33, 17, 2, 8, 11, { filters: FILTERS });
    const chrm = Buffer.alloc(32);
    for (let i = 0; i < 8; i++) chrm.writeUInt32BE(20000 + i * 5000, i * 4);
    await expectFastSame(encodePng({ ...spec, before: [chunk('gAMA', u32(100000))] }));
    await expectFastSame(encodePng({ ...spec, before: [chunk('gAMA', u32(20000)), chunk('cHRM', chrm)] }));
    await expectFastSame(
      encodePng({ ...spec, before: [chunk('sRGB', Buffer.from([0])), chunk('sBIT', Buffer.from([5, 6, 5]))] }),
    );
    await expectFastSame(
      encodePng({
        ...spec,
        between: [
          chunk('pHYs', Buffer.from([0, 0, 11, 19, 0, 0, 11, 19, 1])),
          chunk('tIME', Buffer.from([7, 234, 11, 28, 12, 0, 0])),
          chunk('bKGD', Buffer.from([0, 1, 0, 2, 0, 3])),
        ],
        after: [chunk('tEXt', Buffer.from('Comment\0written by the test'))],
      }),
    );
    await expectFastSame(
      pngOf(0, 16, 33, 17, 12, { before: [chunk('gAMA', u32(45455)), chunk('sBIT', Buffer.from([12]))] }),
    );
  });

  it('files written by pngjs: each colour type it writes, 8 and 16 bits, each filter', async () => {
    for (const colorType of [0, 2, 4, 6] as const) {
      for (const bitDepth of [8, 16] as const) {
        for (const filterType of FILTERS) {
          // RGBA input of random bytes, written as colorType at bitDepth: whatever pixels pngjs makes, sharp must agree.
          const img = new PNG({ width: 33, height: 17, colorType, bitDepth, inputHasAlpha: true });
          img.data = Buffer.from(randomSamples(33 * 17 * 4 * (bitDepth / 8), 255, colorType * 100 + filterType));
          const png = PNG.sync.write(img, { colorType, bitDepth, inputHasAlpha: true, filterType });
          expect([parseChunks(png)[0]!.data[8], parseChunks(png)[0]!.data[9]]).toEqual([bitDepth, colorType]);
          await expectFastSame(png);
        }
      }
    }
  });

  it('IDAT split into many chunks, and files written by sharp (adaptive filtering, palette, 16-bit, alpha)', async () => {
    await expectFastSame(encodePng(randomSpec(33, 17, 6, 8, 21, { filters: FILTERS, idatBytes: 7 })));
    const src = Buffer.from(randomSpec(33, 17, 2, 8, 22).samples as number[]);
    const img = () => sharp(src, { raw: { width: 33, height: 17, channels: 3 } });
    await expectFastSame(await img().png().toBuffer());
    await expectFastSame(await img().png({ compressionLevel: 9, adaptiveFiltering: true }).toBuffer());
    await expectFastSame(await img().png({ palette: true, colours: 16 }).toBuffer());
    await expectFastSame(await img().toColourspace('rgb16').png().toBuffer());
    await expectFastSame(await img().toColourspace('b-w').png().toBuffer());
    await expectFastSame(await img().ensureAlpha(0.5).png().toBuffer());
  });

  it('decodes the Fashion-MNIST files as the bench writes them (28x28 grey, sharp, level 9, adaptive)', async () => {
    const r = rng(5);
    for (let i = 0; i < 20; i++) {
      const px = Buffer.from(Array.from({ length: 28 * 28 }, () => (r() < 0.5 ? 0 : Math.floor(r() * 256))));
      const png = await sharp(px, { raw: { width: 28, height: 28, channels: 1 } })
        .toColourspace('b-w')
        .png({ compressionLevel: 9, adaptiveFiltering: true })
        .toBuffer();
      await expectFastSame(png);
    }
  });
});

describe('PNG fast path hands to sharp what it cannot match', () => {
  const src = Buffer.from(randomSpec(33, 17, 2, 8, 31).samples as number[]);
  const img = () => sharp(src, { raw: { width: 33, height: 17, channels: 3 } });

  it('interlaced (Adam7)', async () => {
    const want = await expectHandedToSharp(await img().png({ progressive: true }).toBuffer());
    expect(want).toBeInstanceOf(Buffer);
  });

  it('an embedded ICC profile (iCCP): sharp converts through it', async () => {
    const png = await img().withIccProfile('p3').png().toBuffer();
    expect(parseChunks(png).some((c) => c.type === 'iCCP')).toBe(true);
    const want = await expectHandedToSharp(png);
    expect(want).toBeInstanceOf(Buffer);
  });

  it('unknown ancillary chunks, and rules of chunk order broken', async () => {
    const spec = randomSpec(7, 3, 2, 8, 32);
    await expectHandedToSharp(encodePng({ ...spec, before: [chunk('eXIf', Buffer.from('MM\0*\0\0\0\x08\0\0'))] }));
    await expectHandedToSharp(encodePng({ ...spec, before: [chunk('vpAg', Buffer.alloc(9))] }));
    await expectHandedToSharp(encodePng({ ...spec, after: [chunk('gAMA', u32(45455))] }));
    await expectHandedToSharp(encodePng({ ...spec, before: [chunk('gAMA', u32(1)), chunk('gAMA', u32(2))] }));
    await expectHandedToSharp(encodePng({ ...spec, before: [chunk('sRGB', Buffer.from([9]))] }));
    // A palette where none belongs, and a palette image without one.
    await expectHandedToSharp(encodePng({ ...spec, palette: randomPalette(4, 1) }));
    await expectHandedToSharp(encodePng(randomSpec(7, 3, 3, 8, 33, { palette: undefined })));
    // IDAT, then another chunk, then IDAT again.
    const chunks = encodeChunks(randomSpec(7, 3, 2, 8, 34, { idatBytes: 10 }));
    const at = chunks.findIndex((c) => c.type === 'IDAT') + 1;
    await expectHandedToSharp(
      assemble([...chunks.slice(0, at), chunk('tEXt', Buffer.from('a\0b')), ...chunks.slice(at)]),
    );
  });

  it('palette indices beyond the palette', async () => {
    const spec = randomSpec(7, 3, 3, 8, 35, { palette: randomPalette(4, 2) });
    const samples = Array.from(spec.samples);
    samples[5] = 4;
    await expectHandedToSharp(encodePng({ ...spec, samples }));
  });

  it('images larger than FAST_MAX_PIXELS (libvips is faster there)', async () => {
    const w = 2049;
    const h = Math.ceil(FAST_MAX_PIXELS / w) + 1;
    const png = await sharp({ create: { width: w, height: h, channels: 3, background: { r: 9, g: 99, b: 199 } } })
      .png({ compressionLevel: 1 })
      .toBuffer();
    const want = await expectHandedToSharp(png);
    expect((want as Buffer).subarray(0, 3)).toEqual(Buffer.from([9, 99, 199]));
  });
});

describe('PNG fast path on broken files: decodeRgb fails (or not) exactly as sharp', () => {
  const good = encodePng(randomSpec(33, 17, 2, 8, 41, { filters: FILTERS }));
  const chunks = parseChunks(good);
  const withIdat = (data: Buffer): Buffer =>
    assemble(chunks.map((c) => (c.type === 'IDAT' ? { type: 'IDAT', data } : c)));
  const idat = chunks.find((c) => c.type === 'IDAT')!.data;

  it('truncated anywhere', async () => {
    for (const n of [8, 20, 33, 40, good.length - 40, good.length - 20, good.length - 13]) {
      expect(await expectHandedToSharp(good.subarray(0, n))).toBe('UNDECODABLE');
    }
    // Cut in IEND: libvips stops reading after the last IDAT and decodes these; the fast path, which wants every
    // chunk whole, leaves them to it.
    for (const n of [good.length - 12, good.length - 1]) {
      expect(await expectHandedToSharp(good.subarray(0, n))).toBeInstanceOf(Buffer);
    }
  });

  it('a bad CRC in IHDR, IDAT or IEND', async () => {
    for (const type of ['IHDR', 'IDAT', 'IEND']) {
      const b = Buffer.from(good);
      let pos = 8;
      while (b.toString('latin1', pos + 4, pos + 8) !== type) pos += 12 + b.readUInt32BE(pos);
      const crcAt = pos + 8 + b.readUInt32BE(pos);
      b.writeUInt32BE((b.readUInt32BE(crcAt) ^ 1) >>> 0, crcAt);
      await expectHandedToSharp(b);
    }
  });

  it('a corrupt zlib stream (valid CRCs): bad Adler-32, bad deflate data, stream cut short', async () => {
    const badAdler = Buffer.from(idat);
    badAdler[badAdler.length - 1]! ^= 0x55;
    expect(await expectHandedToSharp(withIdat(badAdler))).toBe('UNDECODABLE');
    const garbage = Buffer.from(idat);
    for (let i = 2; i < 12; i++) garbage[i] = 0xff;
    expect(await expectHandedToSharp(withIdat(garbage))).toBe('UNDECODABLE');
    expect(await expectHandedToSharp(withIdat(idat.subarray(0, idat.length - 9)))).toBe('UNDECODABLE');
  });

  it('extra data after the zlib stream, more image data than the image holds, a bad filter type', async () => {
    await expectHandedToSharp(withIdat(Buffer.concat([idat, Buffer.from([1, 2, 3, 4])])));
    const tall = imageData(randomSpec(33, 18, 2, 8, 41));
    await expectHandedToSharp(withIdat(tall));
    await expectHandedToSharp(encodePng(randomSpec(7, 3, 2, 8, 42, { filters: [0, 5, 0] })));
  });

  it('bytes after IEND', async () => {
    await expectHandedToSharp(Buffer.concat([good, Buffer.from('trailing')]));
  });

  it('random corruptions with the CRCs fixed: never decodes what sharp refuses, and agrees on the rest', async () => {
    // Bytes changed, chunks cut, grown, moved or dropped, one to three at a time, in files of several formats. The
    // outcome of decodeRgb (pixels, or the error code: UNDECODABLE, or TOO_LARGE when IHDR grew) must be sharp's.
    const bases = [
      encodePng(randomSpec(9, 5, 3, 4, 43, { palette: randomPalette(12, 3), filters: FILTERS })),
      encodePng(
        randomSpec(9, 5, 3, 8, 44, {
          palette: randomPalette(200, 4),
          filters: FILTERS,
          between: [chunk('tRNS', Buffer.from([1, 2, 3]))],
        }),
      ),
      encodePng(
        randomSpec(8, 6, 0, 16, 45, {
          filters: FILTERS,
          before: [chunk('gAMA', u32(45455)), chunk('sBIT', Buffer.from([9]))],
        }),
      ),
      encodePng(
        randomSpec(5, 7, 6, 8, 46, {
          filters: FILTERS,
          between: [
            chunk('pHYs', Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 1])),
            chunk('bKGD', Buffer.from([0, 1, 0, 2, 0, 3])),
          ],
          after: [chunk('tEXt', Buffer.from('k\0v'))],
        }),
      ),
      encodePng(randomSpec(11, 3, 0, 1, 47, { filters: FILTERS, between: [chunk('tRNS', Buffer.from([0, 1]))] })),
      encodePng(randomSpec(6, 4, 4, 16, 48, { filters: [4, 3, 2, 1, 0], idatBytes: 9 })),
    ];
    const r = rng(49);
    const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
    const seen = { fast: 0, sharpPixels: 0, UNDECODABLE: 0, TOO_LARGE: 0 };
    for (let k = 0; k < 1500; k++) {
      const parts: Chunk[] = parseChunks(bases[k % bases.length]!).map((c) => ({
        type: c.type,
        data: Buffer.from(c.data),
      }));
      for (let m = 1 + Math.floor(r() * 3); m > 0; m--) {
        const c = pick(parts);
        const op = r();
        const i = parts.indexOf(c);
        if (op < 0.7 && c.data.length > 0) c.data[Math.floor(r() * c.data.length)] = Math.floor(r() * 256);
        else if (op < 0.8) c.data = c.data.subarray(0, Math.floor(r() * c.data.length));
        else if (op < 0.9) c.data = Buffer.concat([c.data, Buffer.from([Math.floor(r() * 256)])]);
        else if (op < 0.95) parts.splice(Math.floor(r() * parts.length), 0, ...parts.splice(i, 1));
        else if (i > 0) parts.splice(i, 1);
      }
      const png = assemble(parts);
      const mine = fast(png);
      const want = await viaSharp(png);
      if (mine) {
        seen.fast++;
        expect(want).toBeInstanceOf(Buffer);
        expect(mine.equals(want as Buffer)).toBe(true);
      } else if (typeof want === 'string') seen[want as 'UNDECODABLE' | 'TOO_LARGE']++;
      else seen.sharpPixels++;
      expectSameOutcome(await viaKernel(png), want);
    }
    // The corpus exercises every outcome.
    expect(Math.min(...Object.values(seen))).toBeGreaterThan(10);
  });
});

describe('pixel limit, dimensions and probe for PNG', () => {
  it('refuses images over maxPixels from IHDR, before inflating anything', async () => {
    const png = pngOf(2, 8, 33, 17, 51);
    expect(await viaKernel(png, 33 * 17)).toBeInstanceOf(Buffer);
    expect(await viaKernel(png, 33 * 17 - 1)).toBe('TOO_LARGE');
    expect(await viaSharp(png, 33 * 17 - 1)).toBe('TOO_LARGE');
    // An IHDR claiming 8000x6000 over a one-pixel IDAT: TOO_LARGE, not UNDECODABLE.
    const bomb = assemble([ihdr(8000, 6000, 8, 2), ...parseChunks(pngOf(2, 8, 1, 1, 52)).slice(1)]);
    await expect(decodeRgb(bomb, MAX)).rejects.toThrow(/8000x6000 = 48.0 Mpx > 40 Mpx limit/);
    expect(await viaKernel(bomb)).toBe('TOO_LARGE');
    // libvips takes a side over 100,000,000 for a corrupt header (UNDECODABLE), whatever the pixel count.
    const tail = parseChunks(pngOf(0, 8, 1, 1, 53)).slice(1);
    expect(await viaKernel(assemble([ihdr(100_000_000, 1, 8, 0), ...tail]))).toBe('TOO_LARGE');
    expect(await viaSharp(assemble([ihdr(100_000_000, 1, 8, 0), ...tail]))).toBe('TOO_LARGE');
    expect(await expectHandedToSharp(assemble([ihdr(100_000_001, 1, 8, 0), ...tail]))).toBe('UNDECODABLE');
    await expect(dimensions(bomb, MAX)).rejects.toMatchObject({ code: 'TOO_LARGE' });
    await expect(probe(bomb, MAX)).rejects.toMatchObject({ code: 'TOO_LARGE' });
  });

  it('dimensions from IHDR equal sharp metadata; probe accepts good files and rejects broken ones', async () => {
    for (const [w, h] of SIZES) {
      const png = pngOf(6, 16, w, h, w + h);
      const meta = await sharp(png).metadata();
      expect(await dimensions(png, MAX)).toEqual({ width: meta.width, height: meta.height, format: meta.format });
      expect(await probe(png, MAX)).toEqual({ width: w, height: h, format: 'png' });
    }
    const good = pngOf(2, 8, 33, 17, 53);
    await expect(probe(good.subarray(0, good.length - 30), MAX)).rejects.toMatchObject({ code: 'UNDECODABLE' });
    const badIhdr = Buffer.from(good);
    badIhdr[30] = badIhdr[30]! ^ 1; // in the IHDR CRC
    expect(readPngHeader(badIhdr)).toBeNull();
    await expect(probe(badIhdr, MAX)).rejects.toBeInstanceOf(ImageDecodeError);
    // Interlaced files are probed by sharp, as before.
    const adam7 = await sharp(Buffer.from(randomSpec(9, 9, 2, 8, 54).samples as number[]), {
      raw: { width: 9, height: 9, channels: 3 },
    })
      .png({ progressive: true })
      .toBuffer();
    expect(await probe(adam7, MAX)).toEqual({ width: 9, height: 9, format: 'png' });
  });

  it('probe with keep returns the pixels it decoded (as decodeRgb), only when it decoded them in full', async () => {
    const png = pngOf(2, 16, 33, 17, 56, { filters: FILTERS });
    const kept = await probe(png, MAX, { keep: true });
    expect(kept.rgb).toBeDefined();
    expect(Buffer.from(kept.rgb!).equals((await viaSharp(png)) as Buffer)).toBe(true);
    expect(await probe(png, MAX)).toEqual({ width: 33, height: 17, format: 'png' });
    // sharp's probe decodes an 8x8 thumbnail only: nothing to keep.
    const adam7 = await sharp(Buffer.from(randomSpec(9, 9, 2, 8, 57).samples as number[]), {
      raw: { width: 9, height: 9, channels: 3 },
    })
      .png({ progressive: true })
      .toBuffer();
    expect((await probe(adam7, MAX, { keep: true })).rgb).toBeUndefined();
  });

  it('readPngHeader checks the signature, the IHDR CRC and its fields', () => {
    const good = pngOf(0, 8, 7, 3, 55);
    expect(readPngHeader(good)).toEqual({ width: 7, height: 3, depth: 8, colorType: 0, interlaced: false });
    expect(readPngHeader(good.subarray(0, 32))).toBeNull();
    const notPng = Buffer.from(good);
    notPng[1] = 0x51;
    expect(readPngHeader(notPng)).toBeNull();
    // Colour type 2 at 4 bits does not exist; the CRC is fixed so only the field is wrong.
    const bad = Buffer.from(good);
    bad[24] = 4;
    bad[25] = 2;
    bad.writeUInt32BE(crc32(bad.subarray(12, 29)), 29);
    expect(readPngHeader(bad)).toBeNull();
  });
});
