/**
 * im2col on the wasm heap, in the transposed layout the matmul-based convolution paths use: colsᵀ has one row per
 * filter element (HWIO order: tap-major, channel-minor) and one column per output position (n, oh, ow).
 */
import type { backend_util, TensorInfo } from '@tensorflow/tfjs-core';
import type { Composer } from './wasm-composer';

/**
 * Writes tap (i, j) of the transposed im2col matrix — [Ci, N·OH·OW], element (q, m) = x[n, oh·sh + i − top,
 * ow·sw + j − left, q], zero outside the input — into `dst` at `offset`, reading x (NHWC) straight from the heap.
 * Reads are contiguous along channels; the Ci destination rows advance together.
 */
export function writeTapT(
  src: Float32Array,
  dst: Float32Array,
  offset: number,
  info: backend_util.Conv2DInfo,
  i: number,
  j: number,
): void {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const m = n * oh * ow;
  let col = 0;
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      const iy = y * sh + i - top;
      const inside = iy >= 0 && iy < h;
      const rowBase = (b * h + iy) * w;
      for (let x = 0; x < ow; x++, col++) {
        const ix = x * sw + j - left;
        if (!inside || ix < 0 || ix >= w) {
          for (let q = 0; q < ci; q++) dst[offset + q * m + col] = 0;
          continue;
        }
        const from = (rowBase + ix) * ci;
        for (let q = 0; q < ci; q++) dst[offset + q * m + col] = src[from + q]!;
      }
    }
  }
}

/** The transposed im2col matrix colsᵀ [1, KH·KW·Ci, N·OH·OW], rows in HWIO filter order. */
export function im2colT(c: Composer, x: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const { inChannels: ci, filterHeight: kh, filterWidth: kw } = info;
  const m = info.batchSize * info.outHeight * info.outWidth;
  const out = c.output([1, kh * kw * ci, m]);
  const src = c.heap(x);
  const dst = c.heap(out);
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) writeTapT(src, dst, (i * kw + j) * ci * m, info, i, j);
  return out;
}

/** One tap of colsᵀ: [1, Ci, N·OH·OW]. */
export function tapT(c: Composer, x: TensorInfo, info: backend_util.Conv2DInfo, i: number, j: number): TensorInfo {
  const out = c.output([1, info.inChannels, info.batchSize * info.outHeight * info.outWidth]);
  writeTapT(c.heap(x), c.heap(out), 0, info, i, j);
  return out;
}

/** col2im for one tap: the transpose of writeTapT, accumulating into dx (NHWC). */
export function addTapT(
  src: Float32Array,
  dst: Float32Array,
  offset: number,
  info: backend_util.Conv2DInfo,
  i: number,
  j: number,
): void {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const m = n * oh * ow;
  let col = 0;
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      const iy = y * sh + i - top;
      if (iy < 0 || iy >= h) {
        col += ow;
        continue;
      }
      const rowBase = (b * h + iy) * w;
      for (let x = 0; x < ow; x++, col++) {
        const ix = x * sw + j - left;
        if (ix < 0 || ix >= w) continue;
        const to = (rowBase + ix) * ci;
        for (let q = 0; q < ci; q++) dst[to + q] = dst[to + q]! + src[offset + q * m + col]!;
      }
    }
  }
}
