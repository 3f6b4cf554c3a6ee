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

/**
 * True for IPv4/IPv6 literals in loopback, private, link-local, CGNAT, unspecified, multicast or reserved ranges —
 * including an IPv4 address carried inside an IPv6 one (IPv4-mapped `::ffff:127.0.0.1`, which the URL parser writes
 * `::ffff:7f00:1`; IPv4-compatible `::127.0.0.1`; NAT64 `64:ff9b::/96`; 6to4 `2002::/16`), which reaches the IPv4
 * address it carries. A host that is not an IP literal is not private by itself (its addresses are checked).
 */
export function isPrivateAddress(host: string): boolean {
  const v4 = parseIPv4(host);
  if (v4) return isPrivateIPv4(v4);
  const g = parseIPv6(host);
  if (!g) return false;
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  const embedded = (hi: number, lo: number) => [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff];
  if (zeros(0, 7) && (g[7] === 0 || g[7] === 1)) return true; // :: unspecified, ::1 loopback
  if (zeros(0, 5) && (g[5] === 0 || g[5] === 0xffff)) return isPrivateIPv4(embedded(g[6]!, g[7]!)); // compat, mapped
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return isPrivateIPv4(embedded(g[6]!, g[7]!)); // translated
  if (g[0] === 0x64 && g[1] === 0xff9b) return g[2] !== 0 || isPrivateIPv4(embedded(g[6]!, g[7]!)); // NAT64
  if (g[0] === 0x2002) return isPrivateIPv4(embedded(g[1]!, g[2]!)); // 6to4
  if (g[0] === 0x2001 && g[1] === 0) return true; // Teredo: a tunnel to an address we cannot see
  const first = g[0]!;
  return (
    (first & 0xfe00) === 0xfc00 || // fc00::/7 unique local
    (first & 0xffc0) === 0xfe80 || // fe80::/10 link-local
    (first & 0xffc0) === 0xfec0 || // fec0::/10 site-local (deprecated)
    (first & 0xff00) === 0xff00 || // ff00::/8 multicast
    first === 0 // ::/16 outside the forms above: reserved
  );
}

function isPrivateIPv4([a, b]: number[]): boolean {
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    (a === 100 && b! >= 64 && b! <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b! >= 16 && b! <= 31) ||
    (a === 192 && b === 168) ||
    (a === 198 && (b === 18 || b === 19)) ||
    a! >= 224
  );
}

function parseIPv4(host: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  return parts.every((n) => n <= 255) ? parts : null;
}

/** Eight 16-bit groups of an IPv6 literal (`::` shorthand, a dotted IPv4 tail and a `%zone` allowed), or null. */
function parseIPv6(host: string): number[] | null {
  let h = host.toLowerCase().replace(/^\[|\]$/g, '');
  const zone = h.indexOf('%');
  if (zone >= 0) h = h.slice(0, zone);
  if (!h.includes(':')) return null;
  const tail = /(?:^|:)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(h);
  if (tail) {
    const v4 = parseIPv4(tail[1]!);
    if (!v4) return null;
    const hex = (hi: number, lo: number) => ((hi << 8) | lo).toString(16);
    h = `${h.slice(0, h.length - tail[1]!.length)}${hex(v4[0]!, v4[1]!)}:${hex(v4[2]!, v4[3]!)}`;
  }
  const halves = h.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string) => (s ? s.split(':') : []);
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  if (!all.every((x) => /^[0-9a-f]{1,4}$/.test(x))) return null;
  return all.map((x) => Number.parseInt(x, 16));
}
