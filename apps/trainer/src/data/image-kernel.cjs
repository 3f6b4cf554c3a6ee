'use strict';
/**
 * Pixel kernel: decode one encoded image to 8-bit RGB and apply one geometric op (crop, resize, crop, flip).
 *
 * Shared by the decode worker (decode-worker.cjs) and the main-thread fallback (decode-pool.ts). It is plain CommonJS
 * on purpose: a worker_thread loads it with no TypeScript loader, so the same file works under `node --import tsx`,
 * under jest (@swc/jest) and in a compiled image. Types: image-kernel.d.cts.
 *
 * Semantics follow torchvision with PIL:
 * - colour: PIL's `convert('RGB')` — alpha is dropped (not composited), grey is replicated to three channels, 16-bit
 *   samples are reduced to 8 bits. Conversion happens before any geometry, as in ImageFolder's loader.
 * - no EXIF auto-rotation (PIL does not apply it either); multi-page files use their first page.
 * - sharp (libvips) decodes; crop, resize and flip are done here in JavaScript with a port of Pillow's BILINEAR
 *   resampler (a triangle filter widened by the shrink factor: antialiased), bit-identical to torchvision on PIL
 *   images — see resampleWindow. The unit tests compare against torchvision 0.14 / Pillow 9.4 outputs.
 * - BMP and PGM/PPM (in torchvision's IMG_EXTENSIONS but not decodable by sharp's prebuilt libvips) are decoded here.
 * - Most PNGs are decoded by png-decode.cjs, byte for byte as sharp would (sharp's cost per call dominates on small
 *   images); it hands anything it cannot match exactly (interlaced, ICC profiles, malformed files) back to sharp.
 */
const sharp = require('sharp');
const { decodePng, inspectPng } = require('./png-decode.cjs');

/** Documented resampling kernel (see resampleWindow). */
const RESIZE_KERNEL = 'pillow-bilinear';

class ImageDecodeError extends Error {
  /** @param {'TOO_LARGE' | 'UNDECODABLE' | 'UNSUPPORTED'} code */
  constructor(code, message) {
    super(message);
    this.name = 'ImageDecodeError';
    this.code = code;
  }
}

const undecodable = (m) => new ImageDecodeError('UNDECODABLE', m);

function checkPixels(width, height, maxPixels) {
  if (!(width > 0 && height > 0)) throw undecodable(`invalid dimensions ${width}x${height}`);
  if (width * height > maxPixels) {
    throw new ImageDecodeError(
      'TOO_LARGE',
      `image too large: ${width}x${height} = ${((width * height) / 1e6).toFixed(1)} Mpx > ${(maxPixels / 1e6).toFixed(0)} Mpx limit`,
    );
  }
}

/** @returns {'bmp' | 'pnm' | null} formats this file decodes itself */
function sniff(b) {
  if (b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d) return 'bmp';
  if (b.length >= 2 && b[0] === 0x50 && (b[1] === 0x32 || b[1] === 0x33 || b[1] === 0x35 || b[1] === 0x36)) {
    return 'pnm';
  }
  return null;
}

function maskChannel(v, mask) {
  if (!mask) return 0;
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  const m = mask >>> shift;
  const max = m >= 0x7fffffff ? 0xffffffff : m;
  return Math.round((((v & mask) >>> shift) * 255) / max);
}

/** Uncompressed BMP (1/2/4/8-bit palette, 16/24/32-bit, BI_BITFIELDS). RLE/JPEG/PNG-in-BMP is rejected. */
function decodeBmp(b, maxPixels) {
  if (b.length < 26) throw undecodable('truncated BMP header');
  const dataOffset = b.readUInt32LE(10);
  const hdr = b.readUInt32LE(14);
  let width;
  let height;
  let bpp;
  let compression = 0;
  let colorsUsed = 0;
  if (hdr === 12) {
    width = b.readUInt16LE(18);
    height = b.readInt16LE(20);
    bpp = b.readUInt16LE(24);
  } else if (hdr >= 40 && b.length >= 54) {
    width = b.readInt32LE(18);
    height = b.readInt32LE(22);
    bpp = b.readUInt16LE(28);
    compression = b.readUInt32LE(30);
    colorsUsed = b.readUInt32LE(46);
  } else {
    throw undecodable(`unsupported BMP header size ${hdr}`);
  }
  const topDown = height < 0;
  const h = Math.abs(height);
  checkPixels(width, h, maxPixels);
  let masks = null;
  if (compression === 3 || compression === 6) {
    if (b.length < 66) throw undecodable('truncated BMP bitfields');
    masks = [b.readUInt32LE(54), b.readUInt32LE(58), b.readUInt32LE(62)];
  } else if (compression !== 0) {
    throw new ImageDecodeError('UNSUPPORTED', `compressed BMP (compression ${compression}) is not supported`);
  }
  if (![1, 2, 4, 8, 16, 24, 32].includes(bpp)) throw undecodable(`unsupported BMP bit depth ${bpp}`);
  if (bpp === 16 && !masks) masks = [0x7c00, 0x03e0, 0x001f];
  let palette = null;
  if (bpp <= 8) {
    const entry = hdr === 12 ? 3 : 4;
    const n = colorsUsed || 1 << bpp;
    const start = 14 + hdr;
    if (start + n * entry > b.length) throw undecodable('truncated BMP palette');
    palette = Buffer.alloc(n * 3);
    for (let i = 0; i < n; i++) {
      palette[i * 3] = b[start + i * entry + 2];
      palette[i * 3 + 1] = b[start + i * entry + 1];
      palette[i * 3 + 2] = b[start + i * entry];
    }
  }
  const stride = Math.floor((bpp * width + 31) / 32) * 4;
  if (dataOffset + stride * h > b.length) throw undecodable('truncated BMP pixel data');
  const out = Buffer.alloc(width * h * 3);
  for (let y = 0; y < h; y++) {
    const row = dataOffset + (topDown ? y : h - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      if (palette) {
        const bit = x * bpp;
        const idx = (b[row + (bit >> 3)] >> (8 - bpp - (bit & 7))) & ((1 << bpp) - 1);
        if (idx * 3 + 2 >= palette.length) throw undecodable('BMP palette index out of range');
        out[o] = palette[idx * 3];
        out[o + 1] = palette[idx * 3 + 1];
        out[o + 2] = palette[idx * 3 + 2];
      } else if (bpp === 24 || (bpp === 32 && !masks)) {
        const p = row + x * (bpp >> 3);
        out[o] = b[p + 2];
        out[o + 1] = b[p + 1];
        out[o + 2] = b[p];
      } else {
        const v = bpp === 16 ? b.readUInt16LE(row + x * 2) : b.readUInt32LE(row + x * 4);
        out[o] = maskChannel(v, masks[0]);
        out[o + 1] = maskChannel(v, masks[1]);
        out[o + 2] = maskChannel(v, masks[2]);
      }
    }
  }
  return { data: out, width, height: h };
}

/** Netpbm PGM/PPM, binary (P5/P6) or ASCII (P2/P3), any maxval (scaled to 8 bits). */
function decodePnm(b, maxPixels) {
  const kind = b[1];
  const channels = kind === 0x33 || kind === 0x36 ? 3 : 1;
  const ascii = kind === 0x32 || kind === 0x33;
  let pos = 2;
  const isSpace = (c) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;
  const token = () => {
    for (;;) {
      while (pos < b.length && isSpace(b[pos])) pos++;
      if (b[pos] === 0x23) {
        while (pos < b.length && b[pos] !== 0x0a && b[pos] !== 0x0d) pos++;
        continue;
      }
      break;
    }
    const start = pos;
    while (pos < b.length && b[pos] >= 0x30 && b[pos] <= 0x39) pos++;
    if (start === pos) throw undecodable('malformed PNM header');
    return Number.parseInt(b.toString('latin1', start, pos), 10);
  };
  const width = token();
  const height = token();
  const maxval = token();
  if (maxval < 1 || maxval > 65535) throw undecodable(`invalid PNM maxval ${maxval}`);
  checkPixels(width, height, maxPixels);
  const n = width * height * channels;
  const samples = new Uint16Array(n);
  if (ascii) {
    for (let i = 0; i < n; i++) samples[i] = token();
  } else {
    pos++; // exactly one whitespace byte after maxval
    const wide = maxval > 255;
    if (pos + n * (wide ? 2 : 1) > b.length) throw undecodable('truncated PNM pixel data');
    for (let i = 0; i < n; i++) samples[i] = wide ? b.readUInt16BE(pos + i * 2) : b[pos + i];
  }
  const out = Buffer.alloc(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) {
      const v = samples[p * channels + (channels === 3 ? c : 0)];
      if (v > maxval) throw undecodable('PNM sample exceeds maxval');
      out[p * 3 + c] = maxval === 255 ? v : Math.round((v * 255) / maxval);
    }
  }
  return { data: out, width, height };
}

function asBuffer(bytes) {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function describe(e) {
  const m = e?.message ? String(e.message) : String(e);
  return m.split('\n')[0].slice(0, 200);
}

/** Decodes to packed 8-bit RGB. */
async function decodeRgb(bytes, maxPixels) {
  const b = asBuffer(bytes);
  const own = sniff(b);
  if (own === 'bmp') return decodeBmp(b, maxPixels);
  if (own === 'pnm') return decodePnm(b, maxPixels);
  // A PNG that inspectPng vouches for also passes libvips' header load, after which sharp applies limitInputPixels:
  // the limit is applied here at the same point, before any pixel is inflated.
  const png = inspectPng(b);
  if (png) {
    checkPixels(png.width, png.height, maxPixels);
    const fast = decodePng(png);
    if (fast) return fast;
  }
  try {
    const { data, info } = await sharp(b, { limitInputPixels: maxPixels })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw undecodable(`decoded to ${info.channels} channels, expected 3`);
    return { data, width: info.width, height: info.height };
  } catch (e) {
    if (e instanceof ImageDecodeError) throw e;
    if (/pixel limit/i.test(describe(e))) throw new ImageDecodeError('TOO_LARGE', `image too large: ${describe(e)}`);
    throw undecodable(describe(e));
  }
}

/** Width and height from the header only (what geometry needs). */
async function dimensions(bytes, maxPixels) {
  const b = asBuffer(bytes);
  const own = sniff(b);
  if (own) {
    const d = own === 'bmp' ? decodeBmp(b, maxPixels) : decodePnm(b, maxPixels);
    return { width: d.width, height: d.height };
  }
  // A PNG's size is in its first chunk: no libvips header load needed once its chunks check out (else sharp says).
  const png = inspectPng(b);
  if (png) {
    checkPixels(png.width, png.height, maxPixels);
    return { width: png.width, height: png.height, format: 'png' };
  }
  let meta;
  try {
    meta = await sharp(b, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw undecodable(describe(e));
  }
  if (!meta.width || !meta.height) throw undecodable('no dimensions in image header');
  checkPixels(meta.width, meta.height, maxPixels);
  return { width: meta.width, height: meta.height, format: meta.format };
}

/**
 * Validates that an image is usable: header (dimensions, pixel limit checked before any pixel is decoded), then a
 * small decode that still reads the whole compressed stream, so truncated or corrupt files fail here. With `keep`,
 * images that were decoded in full on the way (PNGs on the fast path, BMP, PNM) come back with their pixels (`rgb`,
 * packed RGB as decodeRgb gives them), so that the caller need not decode them again.
 */
async function probe(bytes, maxPixels, opts) {
  const b = asBuffer(bytes);
  const keep = (d, format) =>
    opts?.keep
      ? { width: d.width, height: d.height, format, rgb: d.data }
      : { width: d.width, height: d.height, format };
  const own = sniff(b);
  if (own) return keep(own === 'bmp' ? decodeBmp(b, maxPixels) : decodePnm(b, maxPixels), own);
  // A PNG that the fast decoder accepts is valid through IEND (every CRC, the whole zlib stream): no sharp pass.
  const png = inspectPng(b);
  if (png) {
    checkPixels(png.width, png.height, maxPixels);
    const fast = decodePng(png);
    if (fast) return keep(fast, 'png');
  }
  const dims = await dimensions(b, maxPixels);
  try {
    await sharp(b, { limitInputPixels: maxPixels })
      .removeAlpha()
      .toColourspace('srgb')
      .resize(8, 8, { fit: 'fill' })
      .raw()
      .toBuffer();
  } catch (e) {
    throw undecodable(describe(e));
  }
  return { width: dims.width, height: dims.height, format: dims.format || 'unknown' };
}

/*
 * Resampling: Pillow's ImagingResample with the BILINEAR filter (support 1, widened by the scale factor when
 * shrinking, i.e. antialiased), ported operation for operation: the same double-precision coefficients, rounded to
 * 22-bit fixed point, a horizontal pass into an 8-bit intermediate image, then a vertical pass. The output is
 * therefore bit-identical to torchvision's Resize / resized_crop on PIL images. (libvips' `linear` kernel agrees
 * within 1–3 levels when shrinking but is offset by up to ~70 levels when enlarging small images, e.g. 28 → 224.)
 * Only the pixels inside the requested window are computed.
 */
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);
const CLIP_HIGH = ONE * 256;

function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const tmp = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      let t = (x + xmin - center + 0.5) * ss;
      if (t < 0) t = -t;
      const w = t < 1 ? 1 - t : 0;
      tmp[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? tmp[x] / ww : tmp[x];
      kk[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/**
 * Resizes the region `src` (packed RGB, `stride` pixels per row) at (cx, cy, cw, ch) to outW × outH and returns the
 * pixels of `win` (a rectangle of the resized image), packed RGB.
 */
function resampleWindow(src, stride, cx, cy, cw, ch, outW, outH, win) {
  const h = cw !== outW ? coefficients(cw, outW) : null;
  const v = ch !== outH ? coefficients(ch, outH) : null;
  // Rows of the region that the window's output rows read.
  let firstRow = win.top;
  let endRow = win.top + win.height;
  if (v) {
    firstRow = v.bounds[win.top * 2];
    const last = win.top + win.height - 1;
    endRow = v.bounds[last * 2] + v.bounds[last * 2 + 1];
  }
  const rows = endRow - firstRow;
  const rowLen = win.width * 3;
  // Horizontal pass (or a plain copy) into an 8-bit intermediate: rows × window columns.
  const mid = new Uint8Array(rows * rowLen);
  if (!h) {
    for (let r = 0; r < rows; r++) {
      const from = ((cy + firstRow + r) * stride + cx + win.left) * 3;
      mid.set(src.subarray(from, from + rowLen), r * rowLen);
    }
  } else {
    const { bounds, kk, ksize } = h;
    for (let r = 0; r < rows; r++) {
      const srcRow = ((cy + firstRow + r) * stride + cx) * 3;
      let o = r * rowLen;
      for (let xx = win.left, end = win.left + win.width; xx < end; xx++) {
        const n = bounds[xx * 2 + 1];
        let p = srcRow + bounds[xx * 2] * 3;
        let kb = xx * ksize;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let x = 0; x < n; x++, p += 3, kb++) {
          const k = kk[kb];
          s0 = (s0 + Math.imul(src[p], k)) | 0;
          s1 = (s1 + Math.imul(src[p + 1], k)) | 0;
          s2 = (s2 + Math.imul(src[p + 2], k)) | 0;
        }
        mid[o++] = s0 >= CLIP_HIGH ? 255 : s0 <= 0 ? 0 : s0 >> PRECISION_BITS;
        mid[o++] = s1 >= CLIP_HIGH ? 255 : s1 <= 0 ? 0 : s1 >> PRECISION_BITS;
        mid[o++] = s2 >= CLIP_HIGH ? 255 : s2 <= 0 ? 0 : s2 >> PRECISION_BITS;
      }
    }
  }
  if (!v) return mid;
  // Vertical pass over the window's rows.
  const { bounds, kk, ksize } = v;
  const out = new Uint8Array(win.height * rowLen);
  let o = 0;
  for (let yy = win.top, end = win.top + win.height; yy < end; yy++) {
    const base = (bounds[yy * 2] - firstRow) * rowLen;
    const n = bounds[yy * 2 + 1];
    const kb = yy * ksize;
    for (let j = 0; j < rowLen; j++) {
      let s = HALF;
      for (let y = 0, p = base + j; y < n; y++, p += rowLen) s = (s + Math.imul(mid[p], kk[kb + y])) | 0;
      out[o++] = s >= CLIP_HIGH ? 255 : s <= 0 ? 0 : s >> PRECISION_BITS;
    }
  }
  return out;
}

function mirrorRows(px, width, height) {
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let a = 0, b = width - 1; a < b; a++, b--) {
      for (let c = 0; c < 3; c++) {
        const t = px[row + a * 3 + c];
        px[row + a * 3 + c] = px[row + b * 3 + c];
        px[row + b * 3 + c] = t;
      }
    }
  }
}

function checkRect(r, width, height, what) {
  if (
    !r ||
    !Number.isInteger(r.left) ||
    !Number.isInteger(r.top) ||
    !Number.isInteger(r.width) ||
    !Number.isInteger(r.height) ||
    r.width <= 0 ||
    r.height <= 0 ||
    r.left < 0 ||
    r.top < 0 ||
    r.left + r.width > width ||
    r.top + r.height > height
  ) {
    throw new RangeError(`${what} ${JSON.stringify(r)} outside ${width}x${height}`);
  }
}

/** The geometry on decoded packed RGB: `pre` crop, resize to exactly `resize`, `post` crop, mirror. */
function applyOp(data, width, height, op) {
  const pre = op.pre || { left: 0, top: 0, width, height };
  checkRect(pre, width, height, 'crop');
  const { width: outW, height: outH } = op.resize;
  if (!(Number.isInteger(outW) && Number.isInteger(outH) && outW > 0 && outH > 0)) {
    throw new RangeError(`resize ${JSON.stringify(op.resize)} is not a positive integer size`);
  }
  const win = op.post || { left: 0, top: 0, width: outW, height: outH };
  checkRect(win, outW, outH, 'crop');
  const out = resampleWindow(data, width, pre.left, pre.top, pre.width, pre.height, outW, outH, win);
  if (op.flip) mirrorRows(out, win.width, win.height);
  return out;
}

/**
 * Decode + geometry: `pre` crop (on the decoded image), resize to `resize` (exact size, aspect not kept), `post` crop
 * (on the resized image), optional horizontal flip. Returns packed RGB bytes of the final size.
 */
async function transform(bytes, op, maxPixels) {
  const img = await decodeRgb(bytes, maxPixels);
  return applyOp(img.data, img.width, img.height, op);
}

module.exports = { RESIZE_KERNEL, ImageDecodeError, applyOp, decodeRgb, dimensions, probe, transform };
