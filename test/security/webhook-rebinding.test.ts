/**
 * Security: webhook delivery connects only to the addresses that passed the SSRF check (DNS rebinding).
 *
 * The scheduler's WebhookSender is given a resolver of the test's own (its `resolve` option, the only DNS it uses);
 * every client socket the process opens is watched through the `net.client.socket` diagnostics channel, whose
 * `connectionAttempt` event names the IP address actually dialled. A rebinding name answers a public address to the
 * first question and 127.0.0.1 to every later one: the sender asks once, connects to the public address (2001:db8::7,
 * IPv6 documentation space: routed nowhere, so nothing leaves the machine) and a receiver on the loopback port
 * hears nothing. Pinning keeps the name for everything but the connection: a name that resolves to the receiver
 * (private addresses allowed, as in local mode) is delivered with `Host: <name>:<port>`, and over HTTPS the TLS
 * ClientHello names it (SNI). A private first answer, or an IPv4-mapped loopback literal, is refused before any
 * connection is made.
 */
import { createHmac } from 'node:crypto';
import dc from 'node:diagnostics_channel';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { createDb, type Db, ensureUserWithQuota } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import type { ResolvedAddress } from '@gpulab/scheduler/src/webhook-post';
import { WebhookSender } from '@gpulab/scheduler/src/webhooks';
import { createTestDatabase, type TestDatabase } from '@gpulab/testing';

const log = createLogger({ name: 'test', level: 'silent' });
const PUBLIC = '2001:db8::7';
const SECRET = 'whsec_rebinding';

let tdb: TestDatabase;
let db: Db;
let ownerId: string;
let receiver: http.Server;
let port: number;
const heard: { host: string; path: string; signature: string; body: string }[] = [];
/** IP addresses dialled by any client socket of this process while `watching`. */
const dialled: string[] = [];
let watching = false;
const onSocket = (m: unknown) => {
  const { socket } = m as { socket: net.Socket };
  socket.on('connectionAttempt', (ip: string) => {
    if (watching) dialled.push(ip);
  });
};

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url);
  const { user } = await ensureUserWithQuota(db, {
    email: 'rebind@uni.edu',
    name: 'Rebind',
    group: 'rebind',
    grantSeconds: 3600,
    periodStart: new Date('2026-01-01'),
    periodEnd: new Date('2027-12-31'),
  });
  ownerId = user.id;
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      heard.push({
        host: String(req.headers.host),
        path: String(req.url),
        signature: String(req.headers['gpulab-signature']),
        body,
      });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  port = (receiver.address() as AddressInfo).port;
  dc.subscribe('net.client.socket', onSocket);
});
afterAll(async () => {
  dc.unsubscribe('net.client.socket', onSocket);
  await new Promise((r) => receiver.close(r));
  await db.$disconnect();
  await tdb.drop();
});
beforeEach(() => {
  heard.length = 0;
  dialled.length = 0;
});

/** A webhook with one due delivery. */
async function due(url: string): Promise<string> {
  const hook = await db.webhook.create({ data: { ownerId, url, secret: SECRET, events: ['ping'] } });
  const d = await db.webhookDelivery.create({
    data: { webhookId: hook.id, event: 'ping', eventKey: `ping:${hook.id}`, payload: { event: 'ping', data: {} } },
  });
  return d.id;
}

/** A resolver that answers `answers[i]` to its i-th question (the last one ever after) and counts the questions. */
function resolver(...answers: ResolvedAddress[][]) {
  const asked: string[] = [];
  return {
    asked,
    resolve: async (host: string) => {
      asked.push(host);
      return answers[Math.min(asked.length - 1, answers.length - 1)]!;
    },
  };
}

async function deliverOnce(r: ReturnType<typeof resolver>, allowPrivate: boolean) {
  const sender = new WebhookSender({
    db,
    log,
    clock: () => new Date(),
    allowPrivate,
    timeoutMs: 1500,
    resolve: r.resolve,
  });
  watching = true;
  try {
    expect(await sender.runOnce()).toBe(1);
  } finally {
    watching = false;
  }
}

const deliveryOf = (id: string) => db.webhookDelivery.findUniqueOrThrow({ where: { id } });

it('a name that rebinds to 127.0.0.1 after the check: the checked public address is dialled, loopback never', async () => {
  const id = await due(`http://rebind.gpulab.test:${port}/hook`);
  const r = resolver([{ address: PUBLIC, family: 6 }], [{ address: '127.0.0.1', family: 4 }]);
  await deliverOnce(r, false);
  const d = await deliveryOf(id);
  console.log(
    `webhook-rebinding: resolver asked ${r.asked.length}× (answers: ${PUBLIC}, then 127.0.0.1), dialled ` +
      `${JSON.stringify(dialled)}, loopback receiver heard ${heard.length}, delivery error: ${d.lastError}`,
  );
  expect(r.asked).toEqual(['rebind.gpulab.test']); // one resolution: its answer is the one connected to
  expect(dialled.length).toBeGreaterThan(0);
  expect(new Set(dialled)).toEqual(new Set([PUBLIC]));
  expect(heard).toEqual([]);
  expect(d).toMatchObject({ status: 'pending', attempts: 1, deliveredAt: null });
  expect(d.lastError).toBeTruthy();
});

it('a name whose first answer is private is refused before any connection', async () => {
  const id = await due(`http://rebind2.gpulab.test:${port}/hook`);
  const r = resolver([{ address: '127.0.0.1', family: 4 }], [{ address: PUBLIC, family: 6 }]);
  await deliverOnce(r, false);
  expect(r.asked).toEqual(['rebind2.gpulab.test']);
  expect(dialled).toEqual([]);
  expect(heard).toEqual([]);
  expect((await deliveryOf(id)).lastError).toMatch(/resolves to a private address \(127\.0\.0\.1\); not delivered/);
});

it('one private address among public ones refuses the delivery', async () => {
  const id = await due(`http://mixed.gpulab.test:${port}/hook`);
  const r = resolver([
    { address: PUBLIC, family: 6 },
    { address: '::ffff:169.254.169.254', family: 6 },
  ]);
  await deliverOnce(r, false);
  expect(dialled).toEqual([]);
  expect((await deliveryOf(id)).lastError).toMatch(/private address \(::ffff:169\.254\.169\.254\)/);
});

it('an IPv4-mapped loopback literal ([::ffff:7f00:1]) is refused without a lookup or a connection', async () => {
  const id = await due(`http://[::ffff:127.0.0.1]:${port}/hook`);
  const r = resolver([{ address: PUBLIC, family: 6 }]);
  await deliverOnce(r, false);
  expect(r.asked).toEqual([]);
  expect(dialled).toEqual([]);
  expect(heard).toEqual([]);
  expect((await deliveryOf(id)).lastError).toMatch(/private or local address \(::ffff:7f00:1\)/);
});

it('pinned delivery keeps the name: Host header, signature, one lookup, the resolved address dialled', async () => {
  const id = await due(`http://hooks.gpulab.test:${port}/hook?x=1`);
  const r = resolver([{ address: '127.0.0.1', family: 4 }], [{ address: PUBLIC, family: 6 }]);
  await deliverOnce(r, true); // local mode: private addresses allowed, still pinned to the one resolution
  expect(r.asked).toEqual(['hooks.gpulab.test']);
  expect(new Set(dialled)).toEqual(new Set(['127.0.0.1']));
  expect(heard).toHaveLength(1);
  const h = heard[0]!;
  expect({ host: h.host, path: h.path }).toEqual({ host: `hooks.gpulab.test:${port}`, path: '/hook?x=1' });
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(h.signature)!;
  expect(createHmac('sha256', SECRET).update(`${m[1]}.${h.body}`).digest('hex')).toBe(m[2]);
  expect(JSON.parse(h.body)).toMatchObject({ id, event: 'ping' });
  expect(await deliveryOf(id)).toMatchObject({ status: 'delivered', lastStatusCode: 204, lastError: null });
});

it('over HTTPS the TLS server name is the host name, while the connection goes to the pinned address', async () => {
  // a TCP listener that records the first bytes (the ClientHello, where SNI is in clear) and hangs up
  const hellos: Buffer[] = [];
  const tls = net.createServer((s) => {
    s.once('data', (b) => {
      hellos.push(b);
      s.destroy();
    });
  });
  await new Promise<void>((res) => tls.listen(0, '127.0.0.1', res));
  const tlsPort = (tls.address() as AddressInfo).port;
  try {
    const id = await due(`https://secure.gpulab.test:${tlsPort}/hook`);
    const r = resolver([{ address: '127.0.0.1', family: 4 }]);
    await deliverOnce(r, true);
    // (TLS sockets are not announced on net.client.socket; the name exists nowhere but in the injected resolver,
    // so reaching this listener on 127.0.0.1 is the pinned connection)
    expect(r.asked).toEqual(['secure.gpulab.test']);
    expect(hellos).toHaveLength(1);
    expect(hellos[0]![0]).toBe(0x16); // a TLS handshake record
    expect(hellos[0]!.includes(Buffer.from('secure.gpulab.test'))).toBe(true);
    expect((await deliveryOf(id)).status).toBe('pending'); // no certificate: not delivered, retried later
  } finally {
    await new Promise((res) => tls.close(res));
  }
});
