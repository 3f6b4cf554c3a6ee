import { isImageFile } from '@gpulab/trainer/src/data/extensions';

/**
 * A dataset folder picked in the browser — with <input webkitdirectory> or dropped — as ImageFolder files:
 * `train/<class>/<image>` and `val/<class>/<image>`. The folder's own name is stripped (the picker reports
 * `flowers/train/rose/1.jpg`); anything else (notes, hidden files, non-images) is listed as skipped rather than
 * uploaded, with the same image extensions the API and the trainer apply. The API checks the rest of its path rules
 * (length, characters) and names any file it refuses.
 */

export interface PickedFile {
  path: string;
  file: File;
}

export interface Picked {
  /** The folder's name (a default dataset name), or '' when train/ and val/ were picked themselves. */
  root: string;
  files: PickedFile[];
  skipped: { path: string; why: string }[];
}

const LAYOUT = /^(train|val)\/[^/]+\/[^/]+$/;

export function fromFileList(list: FileList | readonly File[]): Picked {
  return organise([...list].map((f) => ({ path: f.webkitRelativePath || f.name, file: f })));
}

/** Files of a drop: folders are walked (FileSystemEntry API); loose files keep their names. */
export async function fromDrop(dt: DataTransfer): Promise<Picked> {
  const entries = [...dt.items].map((i) => i.webkitGetAsEntry()).filter((e): e is FileSystemEntry => e !== null);
  const out: PickedFile[] = [];
  for (const e of entries) await walk(e, '', out);
  return organise(out);
}

async function walk(entry: FileSystemEntry, prefix: string, out: PickedFile[]): Promise<void> {
  const path = prefix ? `${prefix}/${entry.name}` : entry.name;
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    out.push({ path, file });
    return;
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  // readEntries answers in batches (100 in Chromium) until an empty one.
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    for (const child of batch) await walk(child, path, out);
  }
}

function organise(raw: PickedFile[]): Picked {
  const firsts = new Set(raw.map((f) => f.path.split('/')[0]));
  const pickedSplits = [...firsts].every((s) => s === 'train' || s === 'val');
  const root = !pickedSplits && firsts.size === 1 ? [...firsts][0]! : '';
  const files: PickedFile[] = [];
  const skipped: Picked['skipped'] = [];
  for (const f of raw) {
    const path = (root ? f.path.slice(root.length + 1) : f.path).normalize('NFC');
    const name = path.split('/').pop() ?? '';
    if (path.split('/').some((seg) => seg.startsWith('.'))) skipped.push({ path, why: 'hidden file' });
    else if (!LAYOUT.test(path)) skipped.push({ path, why: 'not in train/<class>/ or val/<class>/' });
    else if (!isImageFile(name)) skipped.push({ path, why: 'not an image file' });
    else if (f.file.size === 0) skipped.push({ path, why: 'empty file' });
    else files.push({ path, file: f.file });
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { root, files, skipped };
}

/** Classes and counts per split, for the summary shown before uploading. */
export function summarise(files: readonly PickedFile[]) {
  const counts: Record<'train' | 'val', Map<string, number>> = { train: new Map(), val: new Map() };
  let bytes = 0;
  for (const f of files) {
    const [split, cls] = f.path.split('/') as ['train' | 'val', string];
    counts[split].set(cls, (counts[split].get(cls) ?? 0) + 1);
    bytes += f.file.size;
  }
  const classes = [...new Set([...counts.train.keys(), ...counts.val.keys()])].sort();
  return { classes, counts, bytes };
}

/** A dataset name the API accepts, from a folder name. */
export function datasetNameFrom(folder: string): string {
  const s = folder
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 64);
  return s || `dataset-${new Date().toISOString().slice(0, 10)}`;
}
