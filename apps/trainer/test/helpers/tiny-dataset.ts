/**
 * A tiny generated ImageFolder dataset for end-to-end tests: three visually distinct classes of 32×32 PNGs
 * (solid-ish colour, horizontal stripes, checkerboard), each image jittered by a seeded generator.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { putObject } from '@gpulab/storage';
import sharp from 'sharp';

const SIZE = 32;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pixels(cls: number, seed: number): Buffer {
  const r = rng(seed);
  const buf = Buffer.alloc(SIZE * SIZE * 3);
  const hue = [
    [200, 40, 40],
    [40, 180, 60],
    [50, 60, 210],
  ][cls]!;
  const phase = Math.floor(r() * 4);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      let on = true;
      if (cls === 1) on = Math.floor((y + phase) / 4) % 2 === 0;
      if (cls === 2) on = (Math.floor((x + phase) / 4) + Math.floor((y + phase) / 4)) % 2 === 0;
      for (let c = 0; c < 3; c++) {
        const base = on ? hue[c]! : 255 - hue[c]!;
        buf[(y * SIZE + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(base + (r() - 0.5) * 40)));
      }
    }
  }
  return buf;
}

export const TINY_CLASSES = ['checker', 'solid', 'stripes'] as const;
const CLASS_KIND: Record<(typeof TINY_CLASSES)[number], number> = { solid: 0, stripes: 1, checker: 2 };

/** Uploads `train` and `val` images per class under `prefix` (e.g. `datasets/tiny/`). */
export async function uploadTinyDataset(
  s3: S3Client,
  bucket: string,
  prefix: string,
  counts: { train: number; val: number } = { train: 8, val: 4 },
): Promise<void> {
  let seed = 1;
  for (const split of ['train', 'val'] as const) {
    for (const name of TINY_CLASSES) {
      for (let i = 0; i < counts[split]; i++) {
        const png = await sharp(pixels(CLASS_KIND[name], seed++), { raw: { width: SIZE, height: SIZE, channels: 3 } })
          .png()
          .toBuffer();
        await putObject(s3, bucket, `${prefix}${split}/${name}/${i}.png`, new Uint8Array(png), 'image/png');
      }
    }
  }
}
