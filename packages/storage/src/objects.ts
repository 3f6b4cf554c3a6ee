import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketCorsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

export interface ObjectInfo {
  key: string;
  size: number;
}

export async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch {
    try {
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    } catch (e) {
      const name = (e as { name?: string }).name;
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw e;
    }
  }
}

/**
 * Browsers upload straight to S3, so the bucket must allow the dashboard's origin: PUT with any header, and expose
 * ETag (multipart uploads send each part's ETag back at completion). The API sets this on the embedded S3; real
 * deployments configure the same rule on their bucket (docs/deploy.md).
 */
export async function allowBrowserUploads(s3: S3Client, bucket: string, origins: string[]): Promise<void> {
  await s3.send(
    new PutBucketCorsCommand({
      Bucket: bucket,
      CORSConfiguration: {
        CORSRules: [
          {
            AllowedOrigins: origins,
            AllowedMethods: ['PUT', 'GET', 'HEAD'],
            AllowedHeaders: ['*'],
            ExposeHeaders: ['ETag'],
            MaxAgeSeconds: 3600,
          },
        ],
      },
    }),
  );
}

export async function putObject(
  s3: S3Client,
  bucket: string,
  key: string,
  body: Uint8Array | string,
  contentType = 'application/octet-stream',
): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }));
}

export async function putJson(s3: S3Client, bucket: string, key: string, value: unknown): Promise<void> {
  await putObject(s3, bucket, key, JSON.stringify(value), 'application/json');
}

export async function getObjectBytes(s3: S3Client, bucket: string, key: string): Promise<Uint8Array> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!res.Body) throw new Error(`empty body for s3://${bucket}/${key}`);
  return res.Body.transformToByteArray();
}

/** Returns null when the object does not exist. */
export async function getJsonOrNull<T>(s3: S3Client, bucket: string, key: string): Promise<T | null> {
  try {
    const bytes = await getObjectBytes(s3, bucket, key);
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

export async function headObject(s3: S3Client, bucket: string, key: string): Promise<ObjectInfo | null> {
  try {
    const res = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return { key, size: res.ContentLength ?? 0 };
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

export async function listObjects(s3: S3Client, bucket: string, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  let token: string | undefined;
  do {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of res.Contents ?? []) if (o.Key) out.push({ key: o.Key, size: o.Size ?? 0 });
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
  } while (token);
  return out;
}

export async function deletePrefix(s3: S3Client, bucket: string, prefix: string): Promise<number> {
  const objects = await listObjects(s3, bucket, prefix);
  for (let i = 0; i < objects.length; i += 1000) {
    const chunk = objects.slice(i, i + 1000);
    await s3.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: chunk.map((o) => ({ Key: o.key })) } }),
    );
  }
  return objects.length;
}

export function isNotFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err.name === 'NoSuchKey' || err.name === 'NotFound' || err.$metadata?.httpStatusCode === 404;
}
