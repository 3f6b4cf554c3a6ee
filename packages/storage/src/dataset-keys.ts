/**
 * Object keys of uploaded datasets, and the rules a client-supplied relative path must pass before it becomes part
 * of one. Pure: the API checks manifests with it, a CLI can check a folder with it before uploading.
 *
 * Layout (one bucket):
 * ```
 * blobs/<userId>/sha256/<hex>                 one copy of each distinct file a user uploaded (verified content)
 * uploads/<userId>/<uploadId>/<hex>           where presigned URLs point: unverified, promoted to blobs/ at complete
 * datasets/<userId>/<name>/<path>             the materialized ImageFolder tree the trainer reads, plus manifest.json
 * ```
 * Blobs are scoped per user: only the user's own upload sessions can have written a blob under their prefix, so
 * referencing one proves possession (nobody can add another user's file to a dataset by guessing its hash), and a
 * bad upload can only ever spoil the uploader's own blobs.
 */
export const datasetKeys = {
  blobPrefix: (userId: string) => `blobs/${userId}/sha256/`,
  blob: (userId: string, sha256: string) => `blobs/${userId}/sha256/${sha256}`,
  stagingPrefix: (userId: string, uploadId: string) => `uploads/${userId}/${uploadId}/`,
  staging: (userId: string, uploadId: string, sha256: string) => `uploads/${userId}/${uploadId}/${sha256}`,
  datasetPrefix: (userId: string, name: string) => `datasets/${userId}/${name}/`,
  datasetFile: (userId: string, name: string, path: string) => `datasets/${userId}/${name}/${path}`,
  manifest: (userId: string, name: string) => `datasets/${userId}/${name}/manifest.json`,
};

/** Longest relative path (UTF-8 bytes): with `datasets/<uuid>/<name>/` in front it stays well under S3's 1,024. */
export const MAX_PATH_BYTES = 512;
/**
 * Longest path segment (UTF-8 bytes): under file systems' 255 with room to spare, because the embedded S3 (s3rver,
 * local mode) stores each key as a file with a suffix such as "._S3rver_metadata.json".
 */
export const MAX_SEGMENT_BYTES = 200;

export const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Dataset names: one safe path segment. */
export const DATASET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Characters refused anywhere in a path: C0/C1 controls (NUL included), bidirectional controls (they make a name
 * display differently from what it is, e.g. "gpj.exe" shown as "exe.jpg"), zero-width characters and the BOM
 * (invisible differences between names), and U+FFFD (the mark of a decoding accident).
 */
const CONTROL = /\p{Cc}/u;
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
const INVISIBLE = /[\u200b-\u200d\u2060\ufeff\ufffd]/u;
/** With the u flag a surrogate range matches only unpaired halves (a pair is one code point). */
const LONE_SURROGATE = /[\ud800-\udfff]/u;

export type PathCheck = { ok: true; path: string } | { ok: false; reason: string };

/**
 * Checks a client-supplied relative path (POSIX separators) and returns it in Unicode NFC, the form stored as the
 * object key; or why it is refused. Segment-level rules only: the ImageFolder layout is checked elsewhere.
 */
export function checkRelativePath(raw: string): PathCheck {
  const no = (reason: string): PathCheck => ({ ok: false, reason });
  if (raw.length === 0) return no('is empty');
  if (LONE_SURROGATE.test(raw)) return no('is not valid Unicode (lone surrogate)');
  if (CONTROL.test(raw)) return no('contains a control character (NUL, newline, …)');
  if (BIDI.test(raw)) return no('contains a bidirectional control character');
  if (INVISIBLE.test(raw)) return no('contains an invisible or replacement character');
  if (raw.includes('\\')) return no('contains a backslash (use "/" between folders)');
  if (raw.startsWith('/')) return no('is absolute (must be relative, like train/<class>/<image>)');
  if (/^[A-Za-z]:/.test(raw)) return no('starts with a drive letter (must be relative)');
  const path = raw.normalize('NFC');
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) return no(`is longer than ${MAX_PATH_BYTES} bytes`);
  for (const seg of path.split('/')) {
    if (seg === '') return no('has an empty segment ("//" or a trailing "/")');
    if (seg === '.' || seg === '..') return no(`contains a "${seg}" segment`);
    if (seg.startsWith('.')) return no(`contains a hidden segment "${seg}"`);
    if (Buffer.byteLength(seg) > MAX_SEGMENT_BYTES) return no(`has a segment longer than ${MAX_SEGMENT_BYTES} bytes`);
    if (seg.trim() !== seg) return no(`has a segment with leading or trailing spaces "${seg}"`);
  }
  return { ok: true, path };
}
