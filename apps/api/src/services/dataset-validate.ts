import { GpulabError } from '@gpulab/core';
import { type ManifestFile, recordDatasetValidation } from '@gpulab/db';
import { getJsonOrNull, getObjectBytes, isNotFound, listObjects, type ObjectInfo, parseS3Uri } from '@gpulab/storage';
import { mapLimit } from '@gpulab/trainer/src/data/concurrency';
import { DatasetError } from '@gpulab/trainer/src/data/errors';
import { compareCodePoints, isImageFile } from '@gpulab/trainer/src/data/extensions';
import { ImageDecodeError, probe } from '@gpulab/trainer/src/data/image-kernel.cjs';
import { type Candidate, classifyListing } from '@gpulab/trainer/src/data/layout';
import type { Dataset } from '@prisma/client';
import type { ApiDeps } from '../deps';
import { datasetSettings } from './dataset-settings';

/**
 * Re-validates a stored dataset with the trainer's own code: its layout rules (classifyListing) and its image probe
 * (header dimensions against the decompression-bomb limit, then a small decode that reads the whole stream), over
 * every image with bounded concurrency. Also compares the objects with manifest.json when there is one. Corrupt
 * images are reported by path; they do not make the dataset invalid (the trainer skips them) unless a class or split
 * is left with none, which the trainer would refuse.
 */

export interface ValidationReport {
  ok: boolean;
  /** The trainer would accept it (corrupt images are skipped). */
  usable: boolean;
  checkedAt: string;
  classes: string[];
  /** Readable images per split and class. */
  counts: Record<'train' | 'val', Record<string, number>>;
  images: number;
  corrupt: { path: string; reason: string }[];
  problems: string[];
  manifest: { present: boolean; missing: string[]; unexpected: string[]; sizeMismatch: string[] };
}

const MAX_LISTED = 100;

export async function validateDataset(deps: ApiDeps, d: Dataset): Promise<ValidationReport> {
  if (d.status === 'materializing')
    throw new GpulabError('CONFLICT', `dataset ${d.name} is still being materialized; complete its upload first`);
  const settings = datasetSettings(deps);
  const loc = parseS3Uri(d.uri);
  const prefix = loc.key === '' || loc.key.endsWith('/') ? loc.key : `${loc.key}/`;
  const listing = await listObjects(deps.s3, loc.bucket, prefix);
  const rel = (key: string) => key.slice(prefix.length);
  const problems: string[] = [];

  const manifest = await getJsonOrNull<{ files?: ManifestFile[] }>(deps.s3, loc.bucket, `${prefix}manifest.json`);
  const against = compareWithManifest(listing, prefix, manifest?.files ?? null);
  if (against.missing.length) problems.push(`${against.missing.length} file(s) of manifest.json are missing`);
  if (against.sizeMismatch.length)
    problems.push(`${against.sizeMismatch.length} file(s) differ in size from manifest.json`);

  let candidates: Candidate[];
  let classes: string[] = [];
  try {
    const layout = classifyListing(listing, prefix, d.uri, { maxFileBytes: settings.maxFileBytes });
    candidates = layout.candidates;
    classes = layout.classes;
    const val = new Set(layout.folders.val);
    const lacking = classes.filter((c) => !val.has(c));
    if (lacking.length) problems.push(`val/ lacks class folder(s) of train/: ${lacking.join(', ')}`);
  } catch (e) {
    if (!(e instanceof DatasetError)) throw e;
    problems.push(...(e.details.problems ?? [e.message]));
    candidates = imagesIn(listing, prefix);
  }

  const corrupt: { path: string; reason: string }[] = [];
  const readable: Record<'train' | 'val', Record<string, number>> = { train: {}, val: {} };
  for (const c of classes) {
    readable.train[c] = 0;
    readable.val[c] = 0;
  }
  await mapLimit(candidates, settings.validateConcurrency, async (c) => {
    const reason = await probeOne(deps, loc.bucket, c.key, settings.maxPixels);
    if (reason) corrupt.push({ path: rel(c.key), reason });
    else readable[c.split][c.className] = (readable[c.split][c.className] ?? 0) + 1;
  });
  corrupt.sort((a, b) => compareCodePoints(a.path, b.path));
  for (const split of ['train', 'val'] as const)
    for (const [c, n] of Object.entries(readable[split]))
      if (n === 0 && (split === 'train' || candidates.some((x) => x.split === 'val' && x.className === c)))
        problems.push(`${split}/${c}/ has no readable images`);

  const at = deps.clock();
  const report: ValidationReport = {
    ok: problems.length === 0 && corrupt.length === 0,
    usable: problems.length === 0,
    checkedAt: at.toISOString(),
    classes,
    counts: readable,
    images: candidates.length,
    corrupt: corrupt.slice(0, 1000),
    problems,
    manifest: {
      present: manifest !== null,
      missing: against.missing.slice(0, MAX_LISTED),
      unexpected: against.unexpected.slice(0, MAX_LISTED),
      sizeMismatch: against.sizeMismatch.slice(0, MAX_LISTED),
    },
  };
  await recordDatasetValidation(deps.db, d.id, { status: report.usable ? 'ready' : 'invalid', report, at });
  return report;
}

/** null when the image is readable, else why not. Storage errors other than "gone" propagate. */
async function probeOne(deps: ApiDeps, bucket: string, key: string, maxPixels: number): Promise<string | null> {
  let bytes: Uint8Array;
  try {
    bytes = await getObjectBytes(deps.s3, bucket, key);
  } catch (e) {
    if (isNotFound(e)) return 'object disappeared after listing';
    throw e;
  }
  try {
    await probe(bytes, maxPixels);
    return null;
  } catch (e) {
    if (e instanceof ImageDecodeError) return e.code === 'TOO_LARGE' ? e.message : `unreadable image: ${e.message}`;
    throw e;
  }
}

/** Images at train|val/<class>/<file>, for decoding when the layout as a whole is refused. */
function imagesIn(listing: readonly ObjectInfo[], prefix: string): Candidate[] {
  const out: Candidate[] = [];
  for (const o of listing) {
    const segs = o.key.slice(prefix.length).split('/');
    const [split, className, file] = segs;
    if (segs.length !== 3 || (split !== 'train' && split !== 'val') || !className || !file) continue;
    if (segs.some((s) => s.startsWith('.')) || !isImageFile(file) || o.size === 0) continue;
    out.push({ split, className, key: o.key, size: o.size });
  }
  return out;
}

function compareWithManifest(listing: readonly ObjectInfo[], prefix: string, files: ManifestFile[] | null) {
  const out = { missing: [] as string[], unexpected: [] as string[], sizeMismatch: [] as string[] };
  if (!files) return out;
  const stored = new Map(listing.map((o) => [o.key.slice(prefix.length), o.size]));
  const listed = new Set<string>();
  for (const f of files) {
    listed.add(f.path);
    const size = stored.get(f.path);
    if (size === undefined) out.missing.push(f.path);
    else if (size !== f.size) out.sizeMismatch.push(f.path);
  }
  for (const path of stored.keys())
    if (path !== 'manifest.json' && !listed.has(path) && /^(train|val)\//.test(path)) out.unexpected.push(path);
  out.unexpected.sort(compareCodePoints);
  return out;
}
