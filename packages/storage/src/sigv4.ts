import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Verification of AWS Signature Version 4 (header and presigned-URL forms), for the embedded S3: s3rver checks only
 * the older V2 signatures and lets anonymous requests through, so without this a presigned URL for one object would
 * open any other (and no signature would be needed at all). Real S3 does this itself.
 *
 * The canonical request is rebuilt from what arrived: method, path (each segment decoded and re-encoded per RFC 3986,
 * as the SDKs sign S3 paths), query (sorted, without X-Amz-Signature), the signed headers and the payload hash the
 * client declared (`x-amz-content-sha256`, or UNSIGNED-PAYLOAD for presigned URLs). Expiry of presigned URLs is left
 * to s3rver, which checks it.
 */

export interface SignedRequest {
  method: string;
  /** Raw request target: path and query as sent (`req.url`). */
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

export type SigV4Verdict = { ok: true; accessKeyId: string } | { ok: false; reason: string };

const encode = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256hex = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');

/** Whether the request carries V4 credentials at all (header or query form). */
export function isSigV4(req: SignedRequest): boolean {
  const auth = header(req, 'authorization');
  return auth?.startsWith('AWS4-HMAC-SHA256 ') === true || /[?&]X-Amz-Algorithm=/.test(req.url);
}

function header(req: SignedRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

export function verifySigV4(req: SignedRequest, secretFor: (accessKeyId: string) => string | undefined): SigV4Verdict {
  const q = req.url.indexOf('?');
  const rawPath = q < 0 ? req.url : req.url.slice(0, q);
  const params = (q < 0 ? '' : req.url.slice(q + 1))
    .split('&')
    .filter(Boolean)
    .map((p) => {
      const eq = p.indexOf('=');
      return eq < 0 ? [decode(p), ''] : [decode(p.slice(0, eq)), decode(p.slice(eq + 1))];
    }) as [string, string][];
  const get = (name: string) => params.find(([k]) => k === name)?.[1];

  let credential: string;
  let signedHeaders: string;
  let signature: string;
  let amzDate: string;
  let payloadHash: string;
  const presigned = get('X-Amz-Algorithm') !== undefined;
  if (presigned) {
    if (get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') return { ok: false, reason: 'unsupported algorithm' };
    credential = get('X-Amz-Credential') ?? '';
    signedHeaders = get('X-Amz-SignedHeaders') ?? '';
    signature = get('X-Amz-Signature') ?? '';
    amzDate = get('X-Amz-Date') ?? '';
    payloadHash = get('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD';
  } else {
    const auth = header(req, 'authorization') ?? '';
    const m = /^AWS4-HMAC-SHA256 (.*)$/.exec(auth);
    if (!m) return { ok: false, reason: 'no V4 credentials' };
    const parts = new Map(
      m[1]!.split(',').map((s) => {
        const [k, ...v] = s.trim().split('=');
        return [k!, v.join('=')] as const;
      }),
    );
    credential = parts.get('Credential') ?? '';
    signedHeaders = parts.get('SignedHeaders') ?? '';
    signature = parts.get('Signature') ?? '';
    amzDate = header(req, 'x-amz-date') ?? '';
    payloadHash = header(req, 'x-amz-content-sha256') ?? '';
    if (!payloadHash) return { ok: false, reason: 'missing x-amz-content-sha256' };
  }
  const [accessKeyId, date, region, service, terminator] = credential.split('/');
  if (!accessKeyId || !date || !region || !service || terminator !== 'aws4_request')
    return { ok: false, reason: 'malformed credential scope' };
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || !amzDate.startsWith(date)) return { ok: false, reason: 'bad X-Amz-Date' };
  if (!/^[0-9a-f]{64}$/.test(signature)) return { ok: false, reason: 'malformed signature' };
  const names = signedHeaders.split(';').filter(Boolean);
  if (!names.includes('host')) return { ok: false, reason: 'host is not signed' };
  const secret = secretFor(accessKeyId);
  if (secret === undefined) return { ok: false, reason: 'unknown access key' };

  const canonicalPath = rawPath
    .split('/')
    .map((seg) => encode(decode(seg)))
    .join('/');
  const canonicalQuery = params
    .filter(([k]) => !(presigned && k === 'X-Amz-Signature'))
    .map(([k, v]) => [encode(k), encode(v)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalHeaders = names.map((n) => `${n}:${(header(req, n) ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonical = [req.method, canonicalPath, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join(
    '\n',
  );
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
  const expected = createHmac('sha256', key).update(toSign, 'utf8').digest();
  const given = Buffer.from(signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, reason: 'signature does not match' };
  return { ok: true, accessKeyId };
}
