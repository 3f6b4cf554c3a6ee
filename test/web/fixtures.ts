import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { allowBrowserUploads as allowUploadsFrom } from '@gpulab/storage';

/**
 * A tiny ImageFolder dataset in a temp folder `<tmp>/<name>/{train,val}/{red,blue}/N.png`: 8×8 PNGs of two colours
 * with a little noise (so no two files are the same bytes), plus a stray file the dashboard must skip.
 */
export async function writeTinyDataset(name: string, perClass = { train: 4, val: 2 }): Promise<string> {
  const { default: sharp } = await import('sharp');
  const root = path.join(mkdtempSync(path.join(os.tmpdir(), 'gpulab-web-data-')), name);
  const colours = { red: [220, 30, 30], blue: [30, 40, 220] } as const;
  let n = 0;
  for (const split of ['train', 'val'] as const)
    for (const [cls, [r, g, b]] of Object.entries(colours)) {
      const dir = path.join(root, split, cls);
      mkdirSync(dir, { recursive: true });
      for (let i = 0; i < perClass[split]; i++) {
        n++;
        const px = Buffer.alloc(8 * 8 * 3);
        for (let p = 0; p < 64; p++) {
          const jitter = (p * 7 + n * 13) % 17;
          px[p * 3] = Math.min(255, r + jitter);
          px[p * 3 + 1] = Math.min(255, g + jitter);
          px[p * 3 + 2] = Math.min(255, b + jitter);
        }
        const png = await sharp(px, { raw: { width: 8, height: 8, channels: 3 } })
          .png()
          .toBuffer();
        writeFileSync(path.join(dir, `${i}.png`), png);
      }
    }
  writeFileSync(path.join(root, 'README.txt'), 'not part of the dataset');
  return root;
}

/** The dashboard's origin may PUT to the bucket (see allowBrowserUploads in @gpulab/storage). */
export async function allowBrowserUploads(s3: S3Client, bucket: string, origin: string): Promise<void> {
  await allowUploadsFrom(s3, bucket, [origin]);
}
