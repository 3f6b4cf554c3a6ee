/**
 * A minimal PNG writer and chunk editor for the PNG decoder's tests (data-png-decode.test.ts): every colour type, bit
 * depth and row filter, chosen explicitly, and files that break one rule at a time. Not a test file itself.
 */
import { crc32, deflateSync } from 'node:zlib';
import { mulberry32 } from '../../src/data/prng';

export const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export interface Chunk {
  type: string;
  data: Buffer;
}

export type ColorType = 0 | 2 | 3 | 4 | 6;

export const CHANNELS: Record<ColorType, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

export interface PngSpec {
  width: number;
  height: number;
  colorType: ColorType;
  depth: 1 | 2 | 4 | 8 | 16;
  /** Samples, row-major, CHANNELS[colorType] per pixel, each below 2^depth (palette indices for colour type 3). */
  samples: ArrayLike<number>;
  /** Row filter: one type for all rows, or one per row (cycled). Default 0. */
  filters?: number | number[];
  /** PLTE entries [r, g, b]. */
  palette?: number[][];
  /** Chunks placed before PLTE, between PLTE and IDAT, or after the IDATs. */
  before?: Chunk[];
  between?: Chunk[];
  after?: Chunk[];
  /** Splits the zlib stream into IDAT chunks of this many bytes. */
  idatBytes?: number;
}

/** A seeded uniform generator, so failures reproduce: the data pipeline's mulberry32. */
export const rng = mulberry32;

export function randomSamples(n: number, max: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * (max + 1)));
}

export function chunk(type: string, data: Uint8Array = Buffer.alloc(0)): Chunk {
  return { type, data: Buffer.from(data) };
}

/** Serialises chunks after the signature, each with its correct CRC. */
export function assemble(chunks: Chunk[]): Buffer {
  const parts: Buffer[] = [SIGNATURE];
  for (const c of chunks) {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(c.data.length, 0);
    head.write(c.type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), c.data])), 0);
    parts.push(head, c.data, crc);
  }
  return Buffer.concat(parts);
}

/** The chunks of a PNG (no checks). */
export function parseChunks(png: Buffer): Chunk[] {
  const out: Chunk[] = [];
  let pos = 8;
  while (pos + 12 <= png.length) {
    const len = png.readUInt32BE(pos);
    out.push({
      type: png.toString('latin1', pos + 4, pos + 8),
      data: Buffer.from(png.subarray(pos + 8, pos + 8 + len)),
    });
    pos += 12 + len;
  }
  return out;
}

/** Rows packed as PNG stores them (MSB-first sub-byte samples, 16-bit big-endian), without filter bytes. */
export function packRows(spec: PngSpec): Buffer[] {
  const ch = CHANNELS[spec.colorType];
  const stride = Math.ceil((spec.width * ch * spec.depth) / 8);
  const rows: Buffer[] = [];
  for (let y = 0; y < spec.height; y++) {
    const row = Buffer.alloc(stride);
    for (let i = 0; i < spec.width * ch; i++) {
      const v = spec.samples[y * spec.width * ch + i]!;
      if (spec.depth === 16) row.writeUInt16BE(v, i * 2);
      else if (spec.depth === 8) row[i] = v;
      else row[(i * spec.depth) >> 3]! |= v << (8 - spec.depth - ((i * spec.depth) & 7));
    }
    rows.push(row);
  }
  return rows;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Filters one row (PNG spec 9.2) against the previous unfiltered row. */
export function filterRow(type: number, row: Buffer, prev: Buffer | null, bpp: number): Buffer {
  const out = Buffer.alloc(row.length + 1);
  out[0] = type;
  for (let i = 0; i < row.length; i++) {
    const a = i >= bpp ? row[i - bpp]! : 0;
    const b = prev ? prev[i]! : 0;
    const c = prev && i >= bpp ? prev[i - bpp]! : 0;
    const pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][type] ?? 0;
    out[i + 1] = (row[i]! - pred) & 255;
  }
  return out;
}

export function ihdr(width: number, height: number, depth: number, colorType: number, interlace = 0): Chunk {
  const d = Buffer.alloc(13);
  d.writeUInt32BE(width, 0);
  d.writeUInt32BE(height, 4);
  d[8] = depth;
  d[9] = colorType;
  d[12] = interlace;
  return chunk('IHDR', d);
}

/** The zlib stream of the filtered rows (a filter type > 4 is written as is: an invalid file). */
export function imageData(spec: PngSpec): Buffer {
  const bpp = Math.max(1, (CHANNELS[spec.colorType] * spec.depth) >> 3);
  const filters = typeof spec.filters === 'number' ? [spec.filters] : (spec.filters ?? [0]);
  const rows = packRows(spec);
  const filtered = rows.map((r, y) => {
    const f = filters[y % filters.length]!;
    return f > 4 ? Buffer.concat([Buffer.from([f]), r]) : filterRow(f, r, y > 0 ? rows[y - 1]! : null, bpp);
  });
  return deflateSync(Buffer.concat(filtered));
}

export function encodeChunks(spec: PngSpec): Chunk[] {
  const chunks: Chunk[] = [ihdr(spec.width, spec.height, spec.depth, spec.colorType), ...(spec.before ?? [])];
  if (spec.palette) chunks.push(chunk('PLTE', Buffer.from(spec.palette.flat())));
  chunks.push(...(spec.between ?? []));
  const z = imageData(spec);
  const step = spec.idatBytes ?? z.length;
  for (let i = 0; i < z.length; i += step) chunks.push(chunk('IDAT', z.subarray(i, i + step)));
  chunks.push(...(spec.after ?? []), chunk('IEND'));
  return chunks;
}

export function encodePng(spec: PngSpec): Buffer {
  return assemble(encodeChunks(spec));
}

/** A random image of the given format. */
export function randomSpec(
  width: number,
  height: number,
  colorType: ColorType,
  depth: PngSpec['depth'],
  seed: number,
  extra: Partial<PngSpec> = {},
): PngSpec {
  const max = colorType === 3 ? (extra.palette?.length ?? 1 << depth) - 1 : 2 ** depth - 1;
  const samples = randomSamples(width * height * CHANNELS[colorType], max, seed);
  return { width, height, colorType, depth, samples, ...extra };
}

export function randomPalette(n: number, seed: number): number[][] {
  const r = rng(seed);
  return Array.from({ length: n }, () => [0, 0, 0].map(() => Math.floor(r() * 256)));
}
