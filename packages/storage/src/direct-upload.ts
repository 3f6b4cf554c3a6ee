import { createHash } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { headObject, isNotFound, listObjects } from './objects';

/**
 * Uploads that go straight from a browser or CLI to S3 through presigned URLs, and the server-side operations that
 * finish them (no file bytes pass through the API). Each URL is scoped to one object (or one part of one multipart
 * upload), expires, and signs Content-Length, so S3 refuses a body of any other size.
 */

/** A presigned single PUT of exactly `size` bytes to `key`. */
export function presignPut(s3: S3Client, bucket: string, key: string, size: number, expiresIn: number) {
  return getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: key, ContentLength: size }), {
    expiresIn,
    signableHeaders: new Set(['content-length']),
  });
}

/** A presigned UploadPart of exactly `size` bytes. */
export function presignPart(
  s3: S3Client,
  bucket: string,
  key: string,
  uploadId: string,
  partNumber: number,
  size: number,
  expiresIn: number,
) {
  const cmd = new UploadPartCommand({
    Bucket: bucket,
    Key: key,
    UploadId: uploadId,
    PartNumber: partNumber,
    ContentLength: size,
  });
  return getSignedUrl(s3, cmd, { expiresIn, signableHeaders: new Set(['content-length']) });
}

/** Part sizes of a `size`-byte object cut into `partSize` parts (the last one shorter). */
export function partSizes(size: number, partSize: number): number[] {
  const n = Math.max(1, Math.ceil(size / partSize));
  return Array.from({ length: n }, (_, i) => (i < n - 1 ? partSize : size - partSize * (n - 1)));
}

export async function createMultipart(s3: S3Client, bucket: string, key: string): Promise<string> {
  const res = await s3.send(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: 'application/octet-stream' }),
  );
  if (!res.UploadId) throw new Error(`no upload id for s3://${bucket}/${key}`);
  return res.UploadId;
}

export interface UploadedPart {
  partNumber: number;
  etag: string;
  size?: number;
}

/**
 * The parts S3 holds for a multipart upload; `null` when the store does not implement ListParts (s3rver), and
 * `'gone'` when the upload no longer exists (completed, aborted or expired).
 */
export async function listUploadedParts(
  s3: S3Client,
  bucket: string,
  key: string,
  uploadId: string,
): Promise<UploadedPart[] | null | 'gone'> {
  const out: UploadedPart[] = [];
  let marker: string | undefined;
  try {
    do {
      const res = await s3.send(
        new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }),
      );
      for (const p of res.Parts ?? [])
        if (p.PartNumber && p.ETag) out.push({ partNumber: p.PartNumber, etag: p.ETag, size: p.Size ?? 0 });
      marker = res.IsTruncated ? res.NextPartNumberMarker : undefined;
    } while (marker);
  } catch (e) {
    if (isUnsupported(e)) return null;
    if (isNoSuchUpload(e)) return 'gone';
    throw e;
  }
  return out;
}

/** Assembles the parts; S3 checks each part's ETag. */
export async function completeMultipart(
  s3: S3Client,
  bucket: string,
  key: string,
  uploadId: string,
  parts: readonly UploadedPart[],
): Promise<void> {
  const sorted = [...parts].sort((a, b) => a.partNumber - b.partNumber);
  await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      UploadId: uploadId,
      MultipartUpload: { Parts: sorted.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
    }),
  );
}

/** Aborts a multipart upload; a store without AbortMultipartUpload, or an upload already gone, is not an error. */
export async function abortMultipart(s3: S3Client, bucket: string, key: string, uploadId: string): Promise<void> {
  try {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
  } catch (e) {
    if (!isUnsupported(e) && !isNoSuchUpload(e) && !isNotFound(e)) throw e;
  }
}

/** Server-side copy inside the bucket (source keys must be plain ASCII: ours are hashes and UUIDs). */
export async function copyObject(s3: S3Client, bucket: string, from: string, to: string): Promise<void> {
  await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource: `${bucket}/${from}` }));
}

export async function deleteObject(s3: S3Client, bucket: string, key: string): Promise<void> {
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

/** SHA-256 (lowercase hex) and length of an object, streamed: memory stays flat whatever the size. */
export async function sha256OfObject(
  s3: S3Client,
  bucket: string,
  key: string,
): Promise<{ sha256: string; size: number }> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const body = res.Body as AsyncIterable<Uint8Array> | undefined;
  if (!body) throw new Error(`empty body for s3://${bucket}/${key}`);
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of body) {
    h.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: h.digest('hex'), size };
}

/**
 * Sizes of the objects `prefix + name` that exist, for each of `names`: one HEAD each when there are few, else one
 * listing of the prefix (1,000 keys a request) — cheaper than thousands of HEADs.
 */
export async function existingSizes(
  s3: S3Client,
  bucket: string,
  prefix: string,
  names: readonly string[],
  concurrency = 16,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (names.length === 0) return out;
  if (names.length > 64) {
    const wanted = new Set(names);
    for (const o of await listObjects(s3, bucket, prefix)) {
      const name = o.key.slice(prefix.length);
      if (wanted.has(name)) out.set(name, o.size);
    }
    return out;
  }
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++]!;
      const info = await headObject(s3, bucket, prefix + name);
      if (info) out.set(name, info.size);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
  return out;
}

function isUnsupported(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err.name === 'NotImplemented' || err.name === 'MethodNotAllowed' || err.$metadata?.httpStatusCode === 405;
}

function isNoSuchUpload(e: unknown): boolean {
  return (e as { name?: string }).name === 'NoSuchUpload';
}

/** A presigned GET of one object, for downloads straight from S3; `filename` sets Content-Disposition. */
export function presignGet(s3: S3Client, bucket: string, key: string, expiresIn: number, filename?: string) {
  return getSignedUrl(
    s3,
    new GetObjectCommand({
      Bucket: bucket,
      Key: key,
      ...(filename
        ? { ResponseContentDisposition: `attachment; filename="${filename.replace(/["\\\r\n]/g, '_')}"` }
        : {}),
    }),
    { expiresIn },
  );
}
