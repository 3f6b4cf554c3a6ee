import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { valOp } from '../../src/data/geometry';
import { applyOp, decodeRgb, dimensions, ImageDecodeError, probe, transform } from '../../src/data/image-kernel.cjs';
import { preprocessForInference } from '../../src/data/inference';
import { normalizedValue } from '../../src/data/normalize';
import fixtures from './data-torchvision-fixtures.json';

const MAX = 40_000_000;
const b64 = (s: string) => Buffer.from(s, 'base64');

function rawPng(data: Uint8Array, width: number, height: number, channels: 1 | 2 | 3 | 4): Promise<Buffer> {
  return sharp(Buffer.from(data), { raw: { width, height, channels } }).png().toBuffer();
}

/** A PNG whose IHDR claims width × height (the pixel data is a tiny, wrong IDAT). */
async function pngClaiming(width: number, height: number): Promise<Buffer> {
  const png = Buffer.from(await rawPng(new Uint8Array(3), 1, 1, 3));
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ImageDecodeError);
    return (e as ImageDecodeError).code;
  }
  throw new Error('expected an ImageDecodeError');
}

describe('pixels match torchvision (Pillow BILINEAR, antialiased) exactly', () => {
  it.each(fixtures.val.map((c) => [c.name, c] as const))('val transform: %s', async (_name, c) => {
    const png = b64(c.png);
    const { width, height } = await dimensions(png, MAX);
    const got = await transform(png, valOp(width, height, c.size), MAX);
    expect(Buffer.from(got).equals(b64(c.out))).toBe(true);
  });

  it.each(fixtures.crops.map((c) => [c.name, c] as const))('resized crop: %s', async (_name, c) => {
    const got = await transform(
      b64(c.png),
      { pre: c.rect, resize: { width: c.size, height: c.size }, post: null, flip: c.flip },
      MAX,
    );
    expect(Buffer.from(got).equals(b64(c.out))).toBe(true);
  });
});

describe('val geometry on a known image', () => {
  // 280x224: dark left of x = 70, bright from x = 70; dark above y = 28, mid-grey below.
  const W = 280;
  const H = 224;
  const px = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const v = x < 70 ? 0 : y < 28 ? 255 : 128;
      px.fill(v, (y * W + x) * 3, (y * W + x) * 3 + 3);
    }
  }

  it('resizes the shorter side to 256 (320x256), centre-crops 224 at (48, 16)', async () => {
    const png = await rawPng(px, W, H, 3);
    expect(valOp(W, H, 224)).toEqual({
      pre: null,
      resize: { width: 320, height: 256 },
      post: { left: 48, top: 16, width: 224, height: 224 },
      flip: false,
    });
    const out = await transform(png, valOp(W, H, 224), MAX);
    const at = (x: number, y: number) => out[(y * 224 + x) * 3]!;
    // x = 70 maps to 80 in the resized image, i.e. 32 in the crop; y = 28 maps to 32, i.e. 16 in the crop.
    expect(at(30, 100)).toBe(0);
    expect(at(33, 100)).toBe(128);
    expect(at(200, 14)).toBe(255);
    expect(at(200, 17)).toBe(128);
    expect(at(223, 223)).toBe(128);
    // preprocessForInference = the same pixels, normalised.
    const x = await preprocessForInference(png, 224);
    expect(x).toHaveLength(224 * 224 * 3);
    expect(x[(100 * 224 + 30) * 3]).toBe(normalizedValue(0, 0));
    expect(x[(14 * 224 + 200) * 3 + 2]).toBe(normalizedValue(2, 255));
  });

  it('at 32 px: Resize(37) then CenterCrop(32) at round-half-even offsets', async () => {
    expect(valOp(W, H, 32).resize).toEqual({ width: 46, height: 37 });
    expect(valOp(W, H, 32).post).toEqual({ left: 7, top: 2, width: 32, height: 32 });
    const out = await transform(await rawPng(px, W, H, 3), valOp(W, H, 32), MAX);
    expect(out).toHaveLength(32 * 32 * 3);
  });
});

describe('geometry', () => {
  const W = 7;
  const H = 5;
  const px = Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 29) % 256);

  it('is the identity for a same-size resize, and a flip mirrors each row', () => {
    const same = applyOp(px, W, H, { pre: null, resize: { width: W, height: H }, post: null, flip: false });
    expect(Buffer.from(same).equals(Buffer.from(px))).toBe(true);
    const flipped = applyOp(px, W, H, { pre: null, resize: { width: W, height: H }, post: null, flip: true });
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        for (let c = 0; c < 3; c++) expect(flipped[(y * W + x) * 3 + c]).toBe(px[(y * W + (W - 1 - x)) * 3 + c]);
      }
    }
  });

  it('crops exactly', () => {
    const out = applyOp(px, W, H, {
      pre: { left: 2, top: 1, width: 3, height: 2 },
      resize: { width: 3, height: 2 },
      post: null,
      flip: false,
    });
    expect(Array.from(out.subarray(0, 3))).toEqual(Array.from(px.subarray((1 * W + 2) * 3, (1 * W + 2) * 3 + 3)));
  });

  it('rejects rectangles outside the image', () => {
    expect(() =>
      applyOp(px, W, H, {
        pre: { left: 5, top: 0, width: 3, height: 2 },
        resize: { width: 3, height: 3 },
        post: null,
        flip: false,
      }),
    ).toThrow(RangeError);
    expect(() =>
      applyOp(px, W, H, {
        pre: null,
        resize: { width: 4, height: 4 },
        post: { left: 1, top: 1, width: 4, height: 2 },
        flip: false,
      }),
    ).toThrow(RangeError);
  });
});

describe('decoding to RGB (as PIL convert("RGB"))', () => {
  it('replicates grey into three channels', async () => {
    const grey = Uint8Array.from([0, 50, 100, 150, 200, 250]);
    const { data, width, height } = await decodeRgb(await rawPng(grey, 3, 2, 1), MAX);
    expect([width, height]).toEqual([3, 2]);
    expect(Array.from(data)).toEqual(Array.from(grey).flatMap((v) => [v, v, v]));
  });

  it('drops alpha instead of compositing (grey+alpha and RGBA)', async () => {
    const la = Uint8Array.from([10, 0, 20, 128, 30, 255]);
    expect(Array.from((await decodeRgb(await rawPng(la, 3, 1, 2), MAX)).data)).toEqual([
      10, 10, 10, 20, 20, 20, 30, 30, 30,
    ]);
    const rgba = Uint8Array.from([200, 100, 50, 0, 1, 2, 3, 7]);
    expect(Array.from((await decodeRgb(await rawPng(rgba, 2, 1, 4), MAX)).data)).toEqual([200, 100, 50, 1, 2, 3]);
  });

  it('decodes JPEG and WebP', async () => {
    const src = Uint8Array.from({ length: 16 * 16 * 3 }, () => 120);
    for (const enc of [
      (s: ReturnType<typeof sharp>) => s.jpeg({ quality: 95 }),
      (s: ReturnType<typeof sharp>) => s.webp({ lossless: true }),
    ]) {
      const bytes = await enc(sharp(Buffer.from(src), { raw: { width: 16, height: 16, channels: 3 } })).toBuffer();
      const { data } = await decodeRgb(bytes, MAX);
      expect(Math.max(...Array.from(data).map((v) => Math.abs(v - 120)))).toBeLessThanOrEqual(2);
    }
  });

  it('decodes BMP: 24-bit bottom-up, 8-bit palette, 32-bit bitfields top-down', async () => {
    // 2x2 image: [red, green / blue, white] (top row first).
    const bmp24 = bmp(24, 2, 2, [0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255]);
    expect(Array.from((await decodeRgb(bmp24, MAX)).data)).toEqual([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
    const pal8 = bmp(
      8,
      3,
      1,
      [2, 0, 1],
      [
        [10, 20, 30],
        [40, 50, 60],
        [70, 80, 90],
      ],
    );
    expect(Array.from((await decodeRgb(pal8, MAX)).data)).toEqual([70, 80, 90, 10, 20, 30, 40, 50, 60]);
    const bf32 = bmp32bitfieldsTopDown();
    expect(Array.from((await decodeRgb(bf32, MAX)).data)).toEqual([255, 0, 0, 0, 0, 255]);
    expect((await probe(bmp24, MAX)).format).toBe('bmp');
  });

  it('decodes PPM/PGM: binary, ASCII, 16-bit', async () => {
    const p6 = Buffer.concat([Buffer.from('P6\n# comment\n2 1\n255\n'), Buffer.from([1, 2, 3, 4, 5, 6])]);
    expect(Array.from((await decodeRgb(p6, MAX)).data)).toEqual([1, 2, 3, 4, 5, 6]);
    const p5 = Buffer.concat([Buffer.from('P5 2 1 255\n'), Buffer.from([9, 200])]);
    expect(Array.from((await decodeRgb(p5, MAX)).data)).toEqual([9, 9, 9, 200, 200, 200]);
    const p3 = Buffer.from('P3\n1 1\n15\n15 0 5\n');
    expect(Array.from((await decodeRgb(p3, MAX)).data)).toEqual([255, 0, 85]);
    const p5wide = Buffer.concat([Buffer.from('P5 1 1 65535\n'), Buffer.from([0xff, 0xff])]);
    expect(Array.from((await decodeRgb(p5wide, MAX)).data)).toEqual([255, 255, 255]);
    expect(await codeOf(decodeRgb(Buffer.from('P6 4 4 255\n\x01\x02'), MAX))).toBe('UNDECODABLE');
  });
});

describe('probe: validation before training', () => {
  it('accepts a good image and reports its size', async () => {
    const png = await rawPng(new Uint8Array(5 * 4 * 3), 5, 4, 3);
    expect(await probe(png, MAX)).toEqual({ width: 5, height: 4, format: 'png' });
  });

  it('rejects truncated PNG and JPEG, and garbage', async () => {
    const src = Buffer.from(Uint8Array.from({ length: 64 * 64 * 3 }, (_, i) => (i * 31) % 251));
    const png = await sharp(src, { raw: { width: 64, height: 64, channels: 3 } })
      .png()
      .toBuffer();
    const jpg = await sharp(src, { raw: { width: 64, height: 64, channels: 3 } })
      .jpeg()
      .toBuffer();
    expect(await codeOf(probe(png.subarray(0, Math.floor(png.length * 0.6)), MAX))).toBe('UNDECODABLE');
    expect(await codeOf(probe(jpg.subarray(0, Math.floor(jpg.length * 0.6)), MAX))).toBe('UNDECODABLE');
    expect(await codeOf(probe(Buffer.from('this is not an image at all'), MAX))).toBe('UNDECODABLE');
    expect(await codeOf(transform(jpg.subarray(0, 200), valOp(64, 64, 32), MAX))).toBe('UNDECODABLE');
  });

  it('refuses decompression bombs from the header, before decoding', async () => {
    const bomb = await pngClaiming(8000, 6000);
    const t = Date.now();
    expect(await codeOf(probe(bomb, MAX))).toBe('TOO_LARGE');
    expect(await codeOf(decodeRgb(bomb, MAX))).toBe('TOO_LARGE');
    expect(await codeOf(preprocessForInference(bomb, 32))).toBe('TOO_LARGE');
    expect(Date.now() - t).toBeLessThan(2000);
    await expect(probe(bomb, MAX)).rejects.toThrow(/8000x6000 = 48.0 Mpx > 40 Mpx limit/);
  });
});

/** Builds a BMP with BITMAPINFOHEADER; rows given top-down as packed BGR(A)/indices without padding. */
function bmp(bpp: 8 | 24, width: number, height: number, topDown: number[], palette: number[][] = []): Buffer {
  const bytesPerPixel = bpp / 8;
  const stride = Math.ceil((width * bytesPerPixel) / 4) * 4;
  const paletteBytes = palette.length * 4;
  const offset = 14 + 40 + paletteBytes;
  const b = Buffer.alloc(offset + stride * height);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(b.length, 2);
  b.writeUInt32LE(offset, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(width, 18);
  b.writeInt32LE(height, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(bpp, 28);
  b.writeUInt32LE(palette.length, 46);
  palette.forEach(([r, g, bl], i) => {
    b[54 + i * 4] = bl!;
    b[54 + i * 4 + 1] = g!;
    b[54 + i * 4 + 2] = r!;
  });
  for (let y = 0; y < height; y++) {
    const row = offset + (height - 1 - y) * stride;
    for (let i = 0; i < width * bytesPerPixel; i++) b[row + i] = topDown[y * width * bytesPerPixel + i]!;
  }
  return b;
}

/** 2x1, 32-bit BI_BITFIELDS with masks R=0x00ff0000 G=0x0000ff00 B=0x000000ff, negative height (top-down). */
function bmp32bitfieldsTopDown(): Buffer {
  const b = Buffer.alloc(14 + 40 + 12 + 8);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(b.length, 2);
  b.writeUInt32LE(66, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(2, 18);
  b.writeInt32LE(-1, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(32, 28);
  b.writeUInt32LE(3, 30);
  b.writeUInt32LE(0x00ff0000, 54);
  b.writeUInt32LE(0x0000ff00, 58);
  b.writeUInt32LE(0x000000ff, 62);
  b.writeUInt32LE(0x00ff0000, 66);
  b.writeUInt32LE(0x000000ff, 70);
  return b;
}
