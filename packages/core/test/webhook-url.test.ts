import { isPrivateAddress, parseWebhookUrl } from '../src/webhook-url';

describe('isPrivateAddress', () => {
  it.each([
    '127.0.0.1',
    '10.1.2.3',
    '172.16.0.1',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '::',
    '::1',
    '0:0:0:0:0:0:0:1',
    '[::1]',
    'fd00::1',
    'fe80::1%eth0',
    'ff02::1',
    // an IPv4 address inside an IPv6 one reaches the IPv4 address
    '::ffff:127.0.0.1',
    '::ffff:7f00:1', // the same, as the URL parser writes it
    '::FFFF:A9FE:A9FE', // 169.254.169.254 (cloud metadata)
    '::ffff:10.0.0.1',
    '0:0:0:0:0:ffff:c0a8:0101',
    '::127.0.0.1', // IPv4-compatible
    '::ffff:0:7f00:1', // IPv4-translated
    '64:ff9b::7f00:1', // NAT64 of 127.0.0.1
    '64:ff9b:1::1', // local-use NAT64
    '2002:7f00:1::1', // 6to4 of 127.0.0.1
    '2001:0:4136:e378::1', // Teredo
  ])('%s is private', (a) => expect(isPrivateAddress(a)).toBe(true));

  it.each([
    '8.8.8.8',
    '203.0.113.7',
    '2001:db8::7',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    'example.com',
  ])('%s is not', (a) => expect(isPrivateAddress(a)).toBe(false));
});

describe('parseWebhookUrl', () => {
  it('refuses loopback written as an IPv4-mapped IPv6 literal', () => {
    const url = 'http://[::ffff:127.0.0.1]:8080/hook';
    expect(new URL(url).hostname).toBe('[::ffff:7f00:1]');
    expect(() => parseWebhookUrl(url, { allowPrivate: false })).toThrow(/private or local address/);
    expect(parseWebhookUrl(url, { allowPrivate: true }).port).toBe('8080');
  });

  it('accepts a public name and refuses localhost names', () => {
    expect(parseWebhookUrl('https://hooks.example.com/x', { allowPrivate: false }).hostname).toBe('hooks.example.com');
    expect(() => parseWebhookUrl('http://api.localhost/x', { allowPrivate: false })).toThrow(/private/);
  });
});
