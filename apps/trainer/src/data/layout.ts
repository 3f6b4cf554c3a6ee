import { DatasetError } from './errors';
import { compareCodePoints, IMG_EXTENSIONS, isImageFile } from './extensions';

/**
 * The pure half of indexing: from an S3 listing to the ImageFolder structure, or a DatasetError naming every problem.
 *
 * Expected layout under the dataset prefix: `train/<class>/<file>` and `val/<class>/<file>`. Differences from
 * torchvision's ImageFolder, on purpose:
 * - images in nested folders (`train/<class>/sub/x.jpg`) are an error instead of silently joining the class;
 * - hidden files and folders (any path segment starting with ".", e.g. `.DS_Store`, `.ipynb_checkpoints/`) are
 *   ignored instead of becoming classes;
 * - val's labels are train's class indices (a val class missing from train is an error; a train class with no val
 *   folder is allowed).
 * Objects outside train/ and val/ (a README, a test/ split) are ignored.
 */
export type Split = 'train' | 'val';

export interface ListedObject {
  key: string;
  size: number;
}

export interface Candidate {
  split: Split;
  className: string;
  key: string;
  size: number;
}

export interface Layout {
  classes: string[];
  /** Image files to fetch and validate, sorted by (split, class, key). */
  candidates: Candidate[];
  /** Class folders per split (including val folders), for the "no readable image" check after validation. */
  folders: Record<Split, string[]>;
  skipped: { key: string; reason: string }[];
}

const MAX_LISTED_PROBLEMS = 10;

export function throwProblems(root: string, problems: string[]): never {
  const shown = problems.slice(0, MAX_LISTED_PROBLEMS);
  const more = problems.length > shown.length ? `; and ${problems.length - shown.length} more` : '';
  throw new DatasetError(`invalid dataset at ${root}: ${shown.join('; ')}${more}`, { uri: root, problems });
}

export function classifyListing(
  objects: readonly ListedObject[],
  prefix: string,
  root: string,
  limits: { maxFileBytes: number },
): Layout {
  const problems: string[] = [];
  const seen: Record<Split, boolean> = { train: false, val: false };
  const folders: Record<Split, Set<string>> = { train: new Set(), val: new Set() };
  const candidates: Candidate[] = [];
  const skipped: { key: string; reason: string }[] = [];
  let wrongDepth = 0;

  for (const obj of objects) {
    if (!obj.key.startsWith(prefix)) continue;
    const rel = obj.key.slice(prefix.length);
    const segs = rel.split('/');
    if (rel.includes('\0') || segs.includes('..')) {
      problems.push(`unsafe object key ${JSON.stringify(obj.key)} (contains ".." or NUL)`);
      continue;
    }
    const [top, ...rest] = segs;
    if (top !== 'train' && top !== 'val') continue;
    seen[top] = true;
    if (rest.some((s) => s.startsWith('.'))) continue;
    const isMarker = rest.length > 0 && rest[rest.length - 1] === '';
    const path = isMarker ? rest.slice(0, -1) : rest;
    if (isMarker) {
      if (path.length === 1 && path[0] !== '') folders[top].add(path[0]!);
      continue;
    }
    const file = path[path.length - 1] ?? '';
    if (path.length !== 2 || path[0] === '' || file === '') {
      if (isImageFile(file)) {
        wrongDepth++;
        if (wrongDepth <= 3) {
          problems.push(`image at the wrong depth: ${obj.key} (expected ${prefix}${top}/<class>/<image>)`);
        }
      } else {
        skipped.push({ key: obj.key, reason: `not an image in a class folder (expected ${top}/<class>/<image>)` });
      }
      continue;
    }
    const className = path[0]!;
    folders[top].add(className);
    if (!isImageFile(file)) {
      skipped.push({ key: obj.key, reason: `not an image file (extensions: ${IMG_EXTENSIONS.join(' ')})` });
    } else if (obj.size === 0) {
      skipped.push({ key: obj.key, reason: 'empty file' });
    } else if (obj.size > limits.maxFileBytes) {
      skipped.push({
        key: obj.key,
        reason: `file too large: ${obj.size} bytes > ${limits.maxFileBytes} byte limit`,
      });
    } else {
      candidates.push({ split: top, className, key: obj.key, size: obj.size });
    }
  }
  if (wrongDepth > 3) problems.push(`${wrongDepth - 3} more images at the wrong depth`);

  const layoutHint = 'expected train/<class>/<image> and val/<class>/<image>';
  if (!seen.train) problems.push(`missing train/ at ${root} (${layoutHint})`);
  if (!seen.val) problems.push(`missing val/ at ${root} (${layoutHint})`);
  const classes = [...folders.train].sort(compareCodePoints);
  if (seen.train && classes.length < 2) {
    problems.push(
      `train/ has ${classes.length} class folder${classes.length === 1 ? '' : 's'}` +
        `${classes.length ? ` (${classes.join(', ')})` : ''}; a classifier needs at least 2`,
    );
  }
  const known = new Set(classes);
  const stray = [...folders.val].filter((c) => !known.has(c)).sort(compareCodePoints);
  if (stray.length) problems.push(`val/ has class folders not in train/: ${stray.join(', ')}`);
  for (const split of ['train', 'val'] as const) {
    const withImages = new Set(candidates.filter((c) => c.split === split).map((c) => c.className));
    const hadImageFiles = new Set(
      skipped
        .filter((s) => /^(empty file|file too large)/.test(s.reason) && s.key.startsWith(`${prefix}${split}/`))
        .map((s) => s.key.slice(prefix.length).split('/')[1]),
    );
    for (const c of [...folders[split]].sort(compareCodePoints)) {
      if (withImages.has(c)) continue;
      problems.push(
        hadImageFiles.has(c)
          ? `${split}/${c}/ has no usable images (all empty or over the size limit)`
          : `${split}/${c}/ contains no image files (extensions: ${IMG_EXTENSIONS.join(' ')})`,
      );
    }
  }
  if (problems.length) throwProblems(root, problems);

  const order: Record<Split, number> = { train: 0, val: 1 };
  const rank = new Map(classes.map((c, i) => [c, i]));
  candidates.sort(
    (a, b) =>
      order[a.split] - order[b.split] ||
      (rank.get(a.className) ?? 0) - (rank.get(b.className) ?? 0) ||
      compareCodePoints(a.key, b.key),
  );
  return {
    classes,
    candidates,
    folders: { train: classes, val: [...folders.val].sort(compareCodePoints) },
    skipped,
  };
}
