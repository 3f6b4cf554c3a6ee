import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { putObject } from './objects';

const CONTENT_TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.bmp': 'image/bmp',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.ppm': 'image/x-portable-pixmap',
  '.pgm': 'image/x-portable-graymap',
  '.json': 'application/json',
  '.md': 'text/markdown',
  '.txt': 'text/plain',
};

/** Regular files under `dir`, as sorted POSIX relative paths; hidden files and folders (".name") are left out. */
export async function listLocalFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (abs: string, rel: string) => {
    const entries = await readdir(abs, { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(join(abs, e.name), r);
      else if (e.isFile()) out.push(r);
    }
  };
  await walk(dir, '');
  return out.sort();
}

/**
 * Uploads a local folder (e.g. an ImageFolder tree) to `s3://bucket/prefix/<relative path>`, skipping hidden files.
 * `prefix` may be empty or end with "/" or not. Returns the keys written, sorted.
 */
export async function uploadImageFolder(
  s3: S3Client,
  bucket: string,
  prefix: string,
  localDir: string,
  opts: { concurrency?: number } = {},
): Promise<{ keys: string[]; bytes: number }> {
  const base = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
  const files = await listLocalFiles(localDir);
  const keys = files.map((f) => base + f);
  let bytes = 0;
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const i = next++;
      const rel = files[i]!;
      const body = await readFile(join(localDir, ...rel.split('/')));
      bytes += body.byteLength;
      const type = CONTENT_TYPES[extname(rel).toLowerCase()] ?? 'application/octet-stream';
      await putObject(s3, bucket, keys[i]!, body, type);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 8, files.length)) }, worker));
  return { keys, bytes };
}
