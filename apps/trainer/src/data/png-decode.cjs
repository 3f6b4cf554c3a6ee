'use strict';
/**
 * Fast path for PNG → packed 8-bit RGB, for the files where it gives exactly what sharp gives (image-kernel.cjs
 * `decodeRgb`: `.removeAlpha().toColourspace('srgb').raw({depth: 'uchar'})`).
 *
 * Why: on small images (28×28 Fashion-MNIST, CIFAR-sized ones) sharp's fixed cost per call — a libvips pipeline, a
 * trip through libuv's pool — is nearly all of the decode: ~1 ms per 28×28 PNG against ~50 µs for inflateSync plus
 * un-filtering here (measured 2026-11-28 on the 2-core development machine), which decided the first epoch of a
 * small dataset. The two cost the same around 512×512; above that libvips is faster (see FAST_MAX_PIXELS).
 *
 * Plain CommonJS, no dependencies, loaded by the decode worker like image-kernel.cjs.
 *
 * Contract: `inspectPng` then `decodePng` return the pixels, or null for "let sharp decide"; neither throws. Pixels
 * only for a PNG that is well formed in every respect that libpng checks (signature, IHDR, every chunk's CRC, chunk
 * order, a zlib stream that inflates to exactly the image's size with nothing after it, valid filter types, palette
 * indices in range, IEND last), because a file that sharp refuses (its default failOn is 'warning') must never decode
 * here: anything irregular is left to sharp, which decides as before. Also left to sharp: interlaced (Adam7) files,
 * anything with an ICC profile (iCCP: sharp converts through it), chunks not listed in ANCILLARY, and images over
 * FAST_MAX_PIXELS.
 *
 * Colour, as sharp: alpha dropped (not composited, so tRNS changes nothing), grey replicated to RGB, 1/2/4-bit grey
 * scaled to 8 bits (v · 255 / (2^depth − 1), as libpng's expand), palette looked up, 16-bit samples reduced to their
 * high byte (libvips' RGB16/GREY16 → sRGB/B_W is a shift by 8, not a rounding). gAMA, cHRM, sRGB and sBIT are not
 * applied by libvips. Each of these is checked byte for byte against sharp in test/unit/data-png-decode.test.ts.
 */
const { crc32, inflateSync } = require('node:zlib');

/** Larger images go to sharp: libvips decodes them faster (1024×1024: 24 ms against 27 ms here), in less memory. */
const FAST_MAX_PIXELS = 1 << 19;

/** libvips refuses a width or height above this (VIPS_MAX_COORD) as a corrupt header, not as over the pixel limit. */
const MAX_COORD = 100_000_000;

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Bit depths allowed per colour type (PNG spec 11.2.2). */
const DEPTHS = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * Ancillary chunks that do not change sharp's pixels, with their required length (null: variable) and whether they
 * must come before PLTE. Each may appear once, before the first IDAT (tEXt: any number of times, anywhere before
 * IEND). A chunk that breaks these rules, or any other chunk, sends the file to sharp.
 */
const ANCILLARY = {
  gAMA: { length: 4, beforePlte: true },
  cHRM: { length: 32, beforePlte: true },
  sRGB: { length: 1, beforePlte: true },
  sBIT: { length: null, beforePlte: true },
  pHYs: { length: 9, beforePlte: false },
  tIME: { length: 7, beforePlte: false },
  bKGD: { length: null, beforePlte: false },
  tRNS: { length: null, beforePlte: false },
  tEXt: { length: null, beforePlte: false },
};

/**
 * The IHDR fields when `b` starts with a valid PNG signature and IHDR (length, CRC, field values), else null.
 * @returns {{ width: number, height: number, depth: number, colorType: number, interlaced: boolean } | null}
 */
function readPngHeader(b) {
  if (b.length < 33 || !SIGNATURE.equals(b.subarray(0, 8))) return null;
  if (b.readUInt32BE(8) !== 13 || b.toString('latin1', 12, 16) !== 'IHDR') return null;
  if (crc32(b.subarray(12, 29)) !== b.readUInt32BE(29)) return null;
  const width = b.readUInt32BE(16);
  const height = b.readUInt32BE(20);
  const depth = b[24];
  const colorType = b[25];
  if (width === 0 || height === 0 || width > MAX_COORD || height > MAX_COORD) return null;
  if (!DEPTHS[colorType]?.includes(depth)) return null;
  if (b[26] !== 0 || b[27] !== 0 || b[28] > 1) return null;
  return { width, height, depth, colorType, interlaced: b[28] === 1 };
}

/** Checks one ancillary chunk's own rules; false sends the file to sharp. */
function ancillaryOk(type, data, hdr, paletteEntries) {
  const rule = ANCILLARY[type];
  if (rule.length !== null && data.length !== rule.length) return false;
  if (type === 'sRGB') return data[0] <= 3;
  if (type === 'sBIT') {
    const n = hdr.colorType === 3 ? 3 : CHANNELS[hdr.colorType];
    const max = hdr.colorType === 3 ? 8 : hdr.depth;
    return data.length === n && data.every((v) => v >= 1 && v <= max);
  }
  if (type === 'bKGD') {
    if (hdr.colorType === 3) return data.length === 1 && paletteEntries > 0 && data[0] < paletteEntries;
    return data.length === (hdr.colorType === 0 || hdr.colorType === 4 ? 2 : 6);
  }
  if (type === 'tRNS') {
    if (hdr.colorType === 3) return paletteEntries > 0 && data.length >= 1 && data.length <= paletteEntries;
    // A sample beyond the bit depth is malformed: left to sharp (which decodes it; rare, not worth verifying here).
    const max = (1 << hdr.depth) - 1;
    if (hdr.colorType === 0) return data.length === 2 && data.readUInt16BE(0) <= max;
    if (hdr.colorType === 2) return data.length === 6 && [0, 2, 4].every((i) => data.readUInt16BE(i) <= max);
    return false; // not allowed with an alpha channel
  }
  if (type === 'tEXt') {
    const nul = data.indexOf(0);
    return nul >= 1 && nul <= 79 && data.indexOf(0, nul + 1) < 0;
  }
  if (type === 'pHYs') return data[8] <= 1;
  if (type === 'tIME') {
    const [mo, d, h, mi, s] = [data[2], data[3], data[4], data[5], data[6]];
    return mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && s <= 60;
  }
  return true;
}

/**
 * Walks the chunks after IHDR. Returns the palette (or undefined) and the IDAT payloads, or null when anything is
 * off (see the header).
 */
function readChunks(b, hdr) {
  const idat = [];
  const seen = new Set();
  let palette;
  let idatDone = false; // a chunk other than IDAT followed the IDATs
  let pos = 33;
  for (;;) {
    if (pos + 12 > b.length) return null; // truncated: no IEND
    const length = b.readUInt32BE(pos);
    if (length > 0x7fffffff || pos + 12 + length > b.length) return null;
    const type = b.toString('latin1', pos + 4, pos + 8);
    const data = b.subarray(pos + 8, pos + 8 + length);
    if (crc32(b.subarray(pos + 4, pos + 8 + length)) !== b.readUInt32BE(pos + 8 + length)) return null;
    pos += 12 + length;
    if (type === 'IEND') {
      // Nothing may follow IEND, so that what sharp would say about trailing bytes is never overridden here.
      if (length !== 0 || pos !== b.length || idat.length === 0) return null;
      break;
    }
    if (type === 'IDAT') {
      if (idatDone || (hdr.colorType === 3 && !palette)) return null;
      idat.push(data);
      continue;
    }
    if (idat.length > 0) idatDone = true;
    if (type === 'PLTE') {
      if (hdr.colorType !== 3 || palette || idat.length > 0) return null;
      if (length === 0 || length % 3 !== 0 || length / 3 > 1 << hdr.depth) return null;
      palette = data;
      continue;
    }
    const rule = ANCILLARY[type];
    if (!rule) return null;
    if (type !== 'tEXt') {
      if (seen.has(type) || idat.length > 0 || (rule.beforePlte && palette)) return null;
      seen.add(type);
    }
    if (!ancillaryOk(type, data, hdr, palette ? palette.length / 3 : 0)) return null;
  }
  if (hdr.colorType === 3 && !palette) return null;
  return { palette, idat };
}

/** Reverses the per-row filters in place (PNG spec 9); false on an unknown filter type. */
function unfilter(raw, rows, stride, bpp) {
  const line = stride + 1;
  for (let y = 0; y < rows; y++) {
    const start = y * line + 1;
    const end = start + stride;
    const up = start - line; // the previous row's first byte (row 0 has none: treated as zeros)
    const filter = raw[start - 1];
    if (filter === 0) continue;
    if (filter === 1) {
      for (let i = start + bpp; i < end; i++) raw[i] = (raw[i] + raw[i - bpp]) & 255;
    } else if (filter === 2) {
      if (y > 0) for (let i = start, j = up; i < end; i++, j++) raw[i] = (raw[i] + raw[j]) & 255;
    } else if (filter === 3) {
      if (y === 0) {
        for (let i = start + bpp; i < end; i++) raw[i] = (raw[i] + (raw[i - bpp] >> 1)) & 255;
      } else {
        for (let i = start, j = up; i < start + bpp; i++, j++) raw[i] = (raw[i] + (raw[j] >> 1)) & 255;
        for (let i = start + bpp, j = up + bpp; i < end; i++, j++) {
          raw[i] = (raw[i] + ((raw[i - bpp] + raw[j]) >> 1)) & 255;
        }
      }
    } else if (filter === 4) {
      if (y === 0) {
        // With no row above, Paeth picks the left neighbour: Sub.
        for (let i = start + bpp; i < end; i++) raw[i] = (raw[i] + raw[i - bpp]) & 255;
      } else {
        for (let i = start, j = up; i < start + bpp; i++, j++) raw[i] = (raw[i] + raw[j]) & 255;
        for (let i = start + bpp, j = up + bpp; i < end; i++, j++) {
          const a = raw[i - bpp];
          const bb = raw[j];
          const c = raw[j - bpp];
          const pa = Math.abs(bb - c);
          const pb = Math.abs(a - c);
          const pc = Math.abs(a + bb - 2 * c);
          const p = pa <= pb && pa <= pc ? a : pb <= pc ? bb : c;
          raw[i] = (raw[i] + p) & 255;
        }
      }
    } else {
      return false;
    }
  }
  return true;
}

/** Un-filtered rows → packed RGB; null when a palette index is out of range (libpng flags it; sharp decides). */
function toRgb(raw, hdr, stride, palette) {
  const { width, height, depth, colorType } = hdr;
  // Every byte is written below. Not from Buffer's shared pool: callers keep these pixels for the whole run.
  const out = Buffer.allocUnsafeSlow(width * height * 3);
  const channels = CHANNELS[colorType];
  const line = stride + 1;
  let o = 0;
  if (depth < 8) {
    // Packed samples, most significant bits first: grey (scaled to 8 bits) or palette indices.
    const mask = (1 << depth) - 1;
    const scale = 255 / mask;
    const entries = palette ? palette.length / 3 : 0;
    for (let y = 0; y < height; y++) {
      const row = y * line + 1;
      for (let x = 0; x < width; x++) {
        const bit = x * depth;
        const v = (raw[row + (bit >> 3)] >> (8 - depth - (bit & 7))) & mask;
        if (palette) {
          if (v >= entries) return null;
          out[o++] = palette[v * 3];
          out[o++] = palette[v * 3 + 1];
          out[o++] = palette[v * 3 + 2];
        } else {
          const g = v * scale;
          out[o++] = g;
          out[o++] = g;
          out[o++] = g;
        }
      }
    }
    return out;
  }
  // 8 or 16 bits: the high byte of each sample is its first byte (big-endian).
  const step = depth >> 3; // bytes per sample
  const px = channels * step; // bytes per pixel
  if (colorType === 2 && depth === 8) {
    for (let y = 0; y < height; y++) raw.copy(out, y * width * 3, y * line + 1, y * line + 1 + stride);
    return out;
  }
  const entries = palette ? palette.length / 3 : 0;
  for (let y = 0; y < height; y++) {
    let p = y * line + 1;
    const end = p + stride;
    if (colorType === 0 || colorType === 4) {
      for (; p < end; p += px) {
        const g = raw[p];
        out[o++] = g;
        out[o++] = g;
        out[o++] = g;
      }
    } else if (colorType === 3) {
      for (; p < end; p++) {
        const v = raw[p];
        if (v >= entries) return null;
        out[o++] = palette[v * 3];
        out[o++] = palette[v * 3 + 1];
        out[o++] = palette[v * 3 + 2];
      }
    } else {
      for (; p < end; p += px) {
        out[o++] = raw[p];
        out[o++] = raw[p + step];
        out[o++] = raw[p + 2 * step];
      }
    }
  }
  return out;
}

/**
 * A PNG whose signature, IHDR and chunk structure pass the checks above (every CRC, chunk order, IEND last), not yet
 * inflated; null: let sharp decide. Such a file also passes libvips' header load, which is where sharp applies its
 * pixel limit, so the caller can apply the limit to the width and height here with the same outcome.
 * @returns {{ width: number, height: number, depth: number, colorType: number, interlaced: boolean,
 *   palette: Buffer | undefined, idat: Buffer[] } | null}
 */
function inspectPng(b) {
  const hdr = readPngHeader(b);
  if (!hdr) return null;
  const chunks = readChunks(b, hdr);
  return chunks ? { ...hdr, ...chunks } : null;
}

/**
 * Packed 8-bit RGB of a PNG that `inspectPng` returned (the caller checks the pixel limit first), or null when sharp
 * should decode it (see the header). Never throws.
 * @returns {{ data: Buffer, width: number, height: number } | null}
 */
function decodePng(png) {
  if (png.interlaced || png.width * png.height > FAST_MAX_PIXELS) return null;
  const bitsPerPixel = CHANNELS[png.colorType] * png.depth;
  const stride = Math.ceil((png.width * bitsPerPixel) / 8);
  const expected = png.height * (stride + 1);
  const stream = png.idat.length === 1 ? png.idat[0] : Buffer.concat(png.idat);
  let raw;
  try {
    // info: the engine's bytesWritten is the compressed input actually consumed; anything after the end of the
    // zlib stream is left unconsumed, and libpng calls that "extra compressed data".
    const r = inflateSync(stream, { info: true, maxOutputLength: expected });
    if (r.engine.bytesWritten !== stream.length) return null;
    raw = r.buffer;
  } catch {
    return null; // corrupt or truncated stream, bad Adler-32, or more data than the image holds
  }
  if (raw.length !== expected) return null;
  if (!unfilter(raw, png.height, stride, Math.max(1, bitsPerPixel >> 3))) return null;
  const data = toRgb(raw, png, stride, png.palette);
  return data ? { data, width: png.width, height: png.height } : null;
}

module.exports = { FAST_MAX_PIXELS, decodePng, inspectPng, readPngHeader };
