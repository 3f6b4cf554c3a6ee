import { createHash } from 'node:crypto';
import { GpulabError } from '@gpulab/core';
import type { ManifestFile } from '@gpulab/db';
import { checkRelativePath, DATASET_NAME } from '@gpulab/storage';
import { DatasetError } from '@gpulab/trainer/src/data/errors';
import { compareCodePoints, IMG_EXTENSIONS, isImageFile } from '@gpulab/trainer/src/data/extensions';
import { classifyListing } from '@gpulab/trainer/src/data/layout';
import { z } from 'zod';
import type { DatasetSettings } from './dataset-settings';

/**
 * The manifest of an upload — name and files with size and sha256 — checked before anything is stored: safe keys
 * (storage's path rules), limits, then the ImageFolder layout with the trainer's own rules (classifyListing), so an
 * upload that passes here is one the trainer accepts. Stricter than the trainer where an upload can be: every file
 * must be an image in `train|val/<class>/` (the trainer would skip anything else, so uploading it is waste), empty
 * files are refused, and val/ must have the same classes as train/.
 */

/** A hard cap that bounds the work of parsing, whatever the configured maxFiles. */
const HARD_MAX_FILES = 1_000_000;

export const ManifestBody = z
  .object({
    name: z
      .string()
      .regex(DATASET_NAME, 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit'),
    files: z
      .array(
        z
          .object({
            path: z.string().min(1).max(4096).describe('relative path, e.g. train/cat/001.jpg'),
            size: z.number().int().min(0).describe('bytes'),
            sha256: z
              .string()
              .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits (SHA-256 of the file)')
              .transform((s) => s.toLowerCase()),
          })
          .strict(),
      )
      .min(1, 'a dataset needs files')
      .max(HARD_MAX_FILES),
  })
  .strict();

export type SplitCounts = Record<'train' | 'val', Record<string, number>>;

export interface CheckedManifest {
  name: string;
  /** Sorted by path (code points): NFC paths, lowercase sha256. */
  files: ManifestFile[];
  classes: string[];
  counts: SplitCounts;
  totalBytes: number;
  /** Distinct blobs: sha256 → size. */
  blobs: Map<string, number>;
  blobBytes: number;
  /** The exact bytes of manifest.json, and their SHA-256 (the dataset's content address). */
  json: string;
  sha256: string;
}

const bad = (message: string, field: string, path?: string) =>
  new GpulabError('VALIDATION', message, path === undefined ? { field } : { field, path });

export function checkManifest(body: unknown, limits: DatasetSettings): CheckedManifest {
  const { name, files: raw } = ManifestBody.parse(body ?? {});
  if (raw.length > limits.maxFiles)
    throw bad(`${raw.length} files: a dataset has at most ${limits.maxFiles} files`, 'files');

  const files: ManifestFile[] = [];
  const seen = new Map<string, number>();
  const blobs = new Map<string, number>();
  let totalBytes = 0;
  raw.forEach((f, i) => {
    const at = `files.${i}`;
    const checked = checkRelativePath(f.path);
    if (!checked.ok) throw bad(`${at}.path ${JSON.stringify(f.path)} ${checked.reason}`, `${at}.path`, f.path);
    const path = checked.path;
    const segs = path.split('/');
    if (segs.length !== 3 || (segs[0] !== 'train' && segs[0] !== 'val'))
      throw bad(
        `${at}.path ${JSON.stringify(path)} is not train/<class>/<image> or val/<class>/<image>`,
        `${at}.path`,
        path,
      );
    if (!isImageFile(segs[2]!))
      throw bad(
        `${at}.path ${JSON.stringify(path)} is not an image file (extensions: ${IMG_EXTENSIONS.join(' ')})`,
        `${at}.path`,
        path,
      );
    const dup = seen.get(path);
    if (dup !== undefined)
      throw bad(`${at}.path ${JSON.stringify(path)} is listed twice (also files.${dup})`, `${at}.path`, path);
    seen.set(path, i);
    if (f.size === 0) throw bad(`${at}: ${JSON.stringify(path)} is empty`, `${at}.size`, path);
    if (f.size > limits.maxFileBytes)
      throw bad(
        `${at}: ${JSON.stringify(path)} is ${f.size} bytes; a file may have at most ${limits.maxFileBytes}`,
        `${at}.size`,
        path,
      );
    const known = blobs.get(f.sha256);
    if (known !== undefined && known !== f.size)
      throw bad(`${at}: ${JSON.stringify(path)} has the sha256 of another file but not its size`, `${at}.size`, path);
    blobs.set(f.sha256, f.size);
    totalBytes += f.size;
    files.push({ path, size: f.size, sha256: f.sha256 });
  });
  if (totalBytes > limits.maxTotalBytes)
    throw bad(`the files add up to ${totalBytes} bytes; a dataset may have at most ${limits.maxTotalBytes}`, 'files');

  files.sort((a, b) => compareCodePoints(a.path, b.path));
  const classes = checkLayout(name, files, limits.maxFileBytes);
  const counts: SplitCounts = { train: {}, val: {} };
  for (const c of classes) {
    counts.train[c] = 0;
    counts.val[c] = 0;
  }
  for (const f of files) {
    const [split, cls] = f.path.split('/') as ['train' | 'val', string];
    counts[split][cls] = (counts[split][cls] ?? 0) + 1;
  }
  const json = manifestJson(classes, counts, files);
  let blobBytes = 0;
  for (const size of blobs.values()) blobBytes += size;
  return {
    name,
    files,
    classes,
    counts,
    totalBytes,
    blobs,
    blobBytes,
    json,
    sha256: createHash('sha256').update(json).digest('hex'),
  };
}

/** The trainer's layout rules on the manifest, plus "val/ has every class of train/". Returns the classes. */
function checkLayout(name: string, files: readonly ManifestFile[], maxFileBytes: number): string[] {
  const root = JSON.stringify(name);
  let classes: string[];
  try {
    const layout = classifyListing(
      files.map((f) => ({ key: f.path, size: f.size })),
      '',
      root,
      { maxFileBytes },
    );
    classes = layout.classes;
    const val = new Set(layout.folders.val);
    const lacking = classes.filter((c) => !val.has(c));
    if (lacking.length)
      throw bad(
        `not an ImageFolder dataset: val/ lacks class folder(s) of train/: ${lacking.join(', ')} ` +
          '(train/ and val/ must have the same classes)',
        'files',
        `val/${lacking[0]}/`,
      );
  } catch (e) {
    if (!(e instanceof DatasetError)) throw e;
    const problems = e.details.problems ?? [e.message];
    throw new GpulabError('VALIDATION', `not an ImageFolder dataset: ${problems.join('; ')}`, {
      field: 'files',
      problems,
    });
  }
  return classes;
}

/** manifest.json: no name and no time in it, so the same files and classes always give the same bytes and hash. */
export function manifestJson(classes: string[], counts: SplitCounts, files: readonly ManifestFile[]): string {
  return JSON.stringify({ format: 'gpulab-imagefolder/1', classes, counts, files });
}
