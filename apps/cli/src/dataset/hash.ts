/**
 * SHA-256 of a folder's files, streamed, a few at a time, with a cache keyed by (path, size, mtime) in
 * $XDG_CACHE_HOME/gpulab/hashes/ so that submitting the same folder again does not read every image again.
 * Also the folder's content digest (which names the dataset and keys the resume state).
 */
import { createHash } from 'node:crypto';
import { createReadStream, openAsBlob } from 'node:fs';
import path from 'node:path';
import type { DatasetFile } from '@gpulab/sdk';
import { cacheDir, type Env, readJsonOr, writePrivateJson } from '../config';
import type { LocalFile } from './folder';

interface HashCache {
  version: 1;
  /** path → [size, mtimeMs, sha256] */
  files: Record<string, [number, number, string]>;
}

export interface HashedFile extends LocalFile {
  sha256: string;
}

export function sha256OfFile(abs: string, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    const s = createReadStream(abs, signal ? { signal } : {});
    s.on('data', (chunk) => h.update(chunk));
    s.on('error', reject);
    s.on('end', () => resolve(h.digest('hex')));
  });
}

function cacheFile(env: Env, root: string): string {
  const key = createHash('sha256').update(root).digest('hex').slice(0, 24);
  return path.join(cacheDir(env), 'hashes', `${key}.json`);
}

/** Hashes `files` (cached ones are not read); `onProgress` gets files and bytes done. */
export async function hashFiles(
  env: Env,
  root: string,
  files: LocalFile[],
  o: { concurrency?: number; signal?: AbortSignal; onProgress?: (files: number, bytes: number) => void } = {},
): Promise<HashedFile[]> {
  const file = cacheFile(env, root);
  const cache = readJsonOr<HashCache>(file, { version: 1, files: {} });
  const known = cache.version === 1 && cache.files ? cache.files : {};
  const out: HashedFile[] = new Array(files.length);
  let done = 0;
  let doneBytes = 0;
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted');
      const i = next++;
      const f = files[i]!;
      const c = known[f.path];
      const sha = c && c[0] === f.size && c[1] === f.mtimeMs ? c[2] : await sha256OfFile(f.abs, o.signal);
      out[i] = { ...f, sha256: sha };
      done++;
      doneBytes += f.size;
      o.onProgress?.(done, doneBytes);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 8, files.length)) }, worker));
  const fresh: HashCache = { version: 1, files: {} };
  for (const f of out) fresh.files[f.path] = [f.size, f.mtimeMs, f.sha256];
  try {
    writePrivateJson(file, fresh);
  } catch {
    // A cache that cannot be written only costs time next run.
  }
  return out;
}

/** The folder's content digest: SHA-256 over the sorted (path, size, sha256) list. */
export function contentDigest(files: readonly { path: string; size: number; sha256: string }[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)))
    h.update(`${f.path}\0${f.size}\0${f.sha256}\n`);
  return h.digest('hex');
}

/**
 * The default dataset name: the folder's name made safe, plus 8 digits of its content digest — so different contents
 * never collide under one name (the server refuses that) and the same contents always get the same name.
 */
export function defaultDatasetName(root: string, digest: string): string {
  const base = path
    .basename(root)
    .normalize('NFKD')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .replace(/-+$/, '')
    .slice(0, 48);
  return `${base || 'dataset'}-${digest.slice(0, 8)}`;
}

/** The SDK's view of the files: bytes read lazily from disk (a file-backed Blob). */
export function toDatasetFiles(files: readonly HashedFile[]): DatasetFile[] {
  return files.map((f) => ({ path: f.path, size: f.size, sha256: f.sha256, body: () => openAsBlob(f.abs) }));
}
