import { GpulabError } from './errors';

/**
 * Where webhooks may point. Deliveries are server-side requests to user-supplied URLs, so they must not reach the
 * cluster's own network (SSRF): http(s) only, no credentials in the URL, and — unless a deployment allows it (local
 * mode, tests) — no private, loopback, link-local or otherwise special addresses, checked against the literal host
 * here and against every address its name resolves to at delivery time (DNS rebinding).
 */
export function parseWebhookUrl(raw: string, o: { allowPrivate: boolean }): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new GpulabError('VALIDATION', 'url is not a valid URL', { field: 'url' });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new GpulabError('VALIDATION', 'url must be http or https', { field: 'url' });
  if (url.username || url.password)
    throw new GpulabError('VALIDATION', 'url must not carry credentials', { field: 'url' });
  if (raw.length > 2000) throw new GpulabError('VALIDATION', 'url is longer than 2000 characters', { field: 'url' });
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!o.allowPrivate && (host === 'localhost' || host.endsWith('.localhost') || isPrivateAddress(host)))
    throw new GpulabError('VALIDATION', `url must not point to a private or local address (${host})`, { field: 'url' });
  return url;
}

/** True for IPv4/IPv6 literals in loopback, private, link-local, CGNAT, unspecified, multicast or reserved ranges. */
export function isPrivateAddress(host: string): boolean {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 100 && b >= 64 && b <= 127) ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 198 && (b === 18 || b === 19)) ||
      a >= 224
    );
  }
  if (!host.includes(':')) return false;
  const h = host.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  if (mapped) return isPrivateAddress(mapped[1]!);
  return (
    h === '::' ||
    h === '::1' ||
    h.startsWith('fc') ||
    h.startsWith('fd') ||
    h.startsWith('fe8') ||
    h.startsWith('fe9') ||
    h.startsWith('fea') ||
    h.startsWith('feb') ||
    h.startsWith('ff')
  );
}
