import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { isPrivateAddress, parseWebhookUrl } from '@gpulab/core';

export interface ResolvedAddress {
  address: string;
  /** 4 or 6. */
  family: number;
}

/** Every address a host name resolves to (the system resolver by default; tests inject their own). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = (hostname) => lookup(hostname, { all: true, verbatim: true });

/**
 * The webhook URL's syntax, and every address its host resolves to *now* (a name may have been re-pointed since the
 * webhook was created): one resolution, whose addresses are the only ones the delivery may connect to.
 */
export async function resolveWebhookUrl(
  raw: string,
  o: { allowPrivate: boolean; resolve: Resolver },
): Promise<{ url: URL; addresses: ResolvedAddress[] }> {
  const url = parseWebhookUrl(raw, o);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const literal = isIP(host);
  // an IP literal was checked by parseWebhookUrl and is never looked up
  const addresses = literal ? [{ address: host, family: literal }] : await o.resolve(host);
  if (!addresses.length) throw new Error(`${host} resolves to no address; not delivered`);
  if (!o.allowPrivate) {
    const bad = addresses.find((a) => isPrivateAddress(a.address));
    if (bad) throw new Error(`${host} resolves to a private address (${bad.address}); not delivered`);
  }
  return { url, addresses };
}

/**
 * POSTs `body` to `url`, connecting only to `addresses` — the ones `resolveWebhookUrl` checked — so a DNS answer
 * that changes after the check (DNS rebinding) cannot send the request anywhere else. The URL's host name is kept
 * for everything but the connection: the `Host` header and, over HTTPS, the TLS server name (SNI) and the name the
 * certificate is verified against. One connection per delivery (no pooled socket of an earlier resolution), no
 * redirects followed; resolves with the status code once the response body has been read (or has failed: the
 * status stands), rejects on a connection error or when `timeoutMs` passes first.
 */
export function postPinned(
  url: URL,
  addresses: ResolvedAddress[],
  o: { headers: Record<string, string>; body: string; timeoutMs: number },
): Promise<number> {
  const pinned: LookupFunction = (_hostname, options, callback) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
    const fits = addresses.filter((a) => !family || a.family === family);
    const pick = fits.length ? fits : addresses;
    if (options.all) callback(null, pick);
    else callback(null, pick[0]!.address, pick[0]!.family);
  };
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<number>((resolve, reject) => {
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: { ...o.headers, 'content-length': String(Buffer.byteLength(o.body)) },
        lookup: pinned,
        agent: false,
        signal: AbortSignal.timeout(o.timeoutMs),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const done = () => resolve(status);
        res.on('end', done);
        res.on('error', done);
        res.on('close', done);
        res.resume();
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}
