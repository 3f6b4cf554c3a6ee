/**
 * A local ImageFolder dataset, checked before anything is hashed or sent, with the rules the server applies to an
 * upload's manifest (apps/api/src/services/dataset-manifest.ts), so a folder that passes here is one the server and
 * the trainer accept: safe relative paths (storage's checkRelativePath), images at train|val/<class>/<image>, no
 * empty or oversized files, at least 2 classes, val/ with the same classes as train/ (the trainer's classifyListing).
 * Hidden files and folders are skipped (as the trainer does), so are files outside train/ and val/ and non-image
 * files inside them — each skip is reported, never silent.
 */
import { type Dirent, promises as fs } from 'node:fs';
import path from 'node:path';
import { checkRelativePath } from '@gpulab/storage/src/dataset-keys';
import { DatasetError } from '@gpulab/trainer/src/data/errors';
import { compareCodePoints, IMG_EXTENSIONS, isImageFile } from '@gpulab/trainer/src/data/extensions';
import { classifyListing } from '@gpulab/trainer/src/data/layout';
import { DATA_DEFAULTS } from '@gpulab/trainer/src/data/limits';

export interface LocalFile {
  /** Relative, "/"-separated, NFC: the path the server stores. */
  path: string;
  abs: string;
  size: number;
  mtimeMs: number;
}

export interface FolderScan {
  root: string;
  files: LocalFile[];
  classes: string[];
  counts: Record<'train' | 'val', Record<string, number>>;
  bytes: number;
  /** Skipped, with why: hidden, outside train/ and val/, not an image. */
  skipped: { path: string; reason: string }[];
}

/** The folder is not a valid ImageFolder: every problem, each naming its path. */
export class DatasetFolderError extends Error {
  constructor(
    readonly root: string,
    readonly problems: string[],
  ) {
    const shown = problems.slice(0, 12).map((p) => `  - ${p}`);
    const more = problems.length > 12 ? [`  … and ${problems.length - 12} more`] : [];
    super([`${root} is not a valid ImageFolder dataset:`, ...shown, ...more].join('\n'));
  }
}

const MAX_WALK_FILES = 1_000_000;

export async function scanFolder(dir: string, o: { maxFileBytes?: number } = {}): Promise<FolderScan> {
  const root = path.resolve(dir);
  const maxFileBytes = o.maxFileBytes ?? DATA_DEFAULTS.maxFileBytes;
  const st = await fs.stat(root).catch(() => null);
  if (!st) throw new DatasetFolderError(dir, [`${dir} does not exist`]);
  if (!st.isDirectory()) throw new DatasetFolderError(dir, [`${dir} is not a folder`]);

  const problems: string[] = [];
  const skipped: { path: string; reason: string }[] = [];
  const files: LocalFile[] = [];
  const show = (rel: string) => path.join(dir, rel);

  const walk = async (relDir: string, depth: number): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(path.join(root, relDir), { withFileTypes: true });
    } catch (e) {
      problems.push(`${show(relDir)}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      return;
    }
    entries.sort((a, b) => compareCodePoints(a.name, b.name));
    for (const e of entries) {
      const rel = relDir ? `${relDir}/${e.name}` : e.name;
      if (e.name.startsWith('.')) {
        skipped.push({ path: rel, reason: 'hidden' });
        continue;
      }
      if (depth === 0 && e.name !== 'train' && e.name !== 'val') {
        skipped.push({ path: rel, reason: 'outside train/ and val/' });
        continue;
      }
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        const target = await fs.stat(path.join(root, rel)).catch(() => null);
        isDir = false; // followed for files only: a linked folder could loop
        isFile = target?.isFile() ?? false;
        if (target?.isDirectory()) problems.push(`${show(rel)} is a link to a folder: copy the folder instead`);
        else if (!target) problems.push(`${show(rel)} is a broken link`);
      }
      if (isDir) {
        if (depth >= 2) problems.push(`${show(rel)}/ is nested too deep (expected train/<class>/<image>)`);
        else await walk(rel, depth + 1);
      } else if (isFile) {
        if (files.length >= MAX_WALK_FILES) throw new DatasetFolderError(dir, [`more than ${MAX_WALK_FILES} files`]);
        const s = await fs.stat(path.join(root, rel));
        files.push({ path: rel, abs: path.join(root, rel), size: s.size, mtimeMs: s.mtimeMs });
      }
    }
  };
  await walk('', 0);

  const kept: LocalFile[] = [];
  for (const f of files) {
    const checked = checkRelativePath(f.path);
    if (!checked.ok) {
      problems.push(`${show(f.path)}: the name ${checked.reason}; rename it`);
      continue;
    }
    f.path = checked.path;
    const segs = f.path.split('/');
    if (segs.length !== 3) {
      if (isImageFile(f.path))
        problems.push(`${show(f.path)} is not in a class folder (expected ${segs[0]}/<class>/<image>)`);
      else skipped.push({ path: f.path, reason: 'not an image in a class folder' });
      continue;
    }
    if (!isImageFile(f.path)) {
      skipped.push({ path: f.path, reason: `not an image (extensions: ${IMG_EXTENSIONS.join(' ')})` });
      continue;
    }
    if (f.size === 0) problems.push(`${show(f.path)} is empty`);
    else if (f.size > maxFileBytes) problems.push(`${show(f.path)} is ${f.size} bytes; the limit is ${maxFileBytes}`);
    else kept.push(f);
  }
  const seenPaths = new Map<string, string>();
  for (const f of kept) {
    const other = seenPaths.get(f.path);
    if (other) problems.push(`${show(f.path)} and ${show(other)} have the same name once normalized (NFC)`);
    seenPaths.set(f.path, f.path);
  }

  let classes: string[] = [];
  try {
    const layout = classifyListing(
      kept.map((f) => ({ key: f.path, size: f.size })),
      '',
      dir,
      { maxFileBytes },
    );
    classes = layout.classes;
    const val = new Set(layout.folders.val);
    const lacking = classes.filter((c) => !val.has(c));
    if (lacking.length)
      problems.push(
        `${show('val')}/ lacks class folder(s) of train/: ${lacking.join(', ')} (train/ and val/ need the same classes)`,
      );
  } catch (e) {
    if (!(e instanceof DatasetError)) throw e;
    problems.push(...(e.details.problems ?? [e.message]));
  }
  if (problems.length) throw new DatasetFolderError(dir, problems);

  kept.sort((a, b) => compareCodePoints(a.path, b.path));
  const counts: FolderScan['counts'] = { train: {}, val: {} };
  for (const c of classes) counts.train[c] = counts.val[c] = 0;
  let bytes = 0;
  for (const f of kept) {
    const [split, cls] = f.path.split('/') as ['train' | 'val', string];
    counts[split][cls] = (counts[split][cls] ?? 0) + 1;
    bytes += f.size;
  }
  return { root, files: kept, classes, counts, bytes, skipped };
}
