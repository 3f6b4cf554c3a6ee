/**
 * uploadDataset against an in-memory stand-in of the upload protocol (the real one is exercised end to end by
 * test/e2e/cli.test.ts): only missing blobs are sent, once each; large files go part by part from any body kind;
 * listing pages, resume, retries and expired URLs; progress adds up.
 */
import { createHash } from 'node:crypto';
import { type DatasetFile, GpulabClient, sha256Hex, type UploadProgress, uploadDataset } from '../src';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const bytesOf = (s: string, n = 1) => new TextEncoder().encode(s.repeat(n));

interface Blob_ {
  sha256: string;
  size: number;
  paths: string[];
}

/**
 * The API and S3 in memory: PUT threshold 10 bytes, parts of 8, at most 3 blobs listed per response. `listParts`
 * false is s3rver: received parts cannot be listed, so every part is offered again and complete needs their ETags.
 */
class FakeServer {
  constructor(readonly listParts = true) {}

  stored = new Map<string, Uint8Array>();
  parts = new Map<string, Map<number, Uint8Array>>();
  sessions = new Map<string, { name: string; blobs: Blob_[]; files: number; bytes: number; status: string }>();
  puts = 0;
  failNext: number[] = [];
  completes: unknown[] = [];

  readonly fetch: typeof fetch = async (input, init = {}) => {
    const url = new URL(String(input));
    const method = init.method ?? 'GET';
    const json = (status: number, body: unknown) =>
      new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', etag: '"e"' } });
    if (url.host === 's3') {
      this.puts++;
      const fail = this.failNext.shift();
      if (fail) return new Response('nope', { status: fail });
      const body = new Uint8Array(
        await new Response(init.body as ConstructorParameters<typeof Response>[0]).arrayBuffer(),
      );
      const [, kind, hex, part] = url.pathname.split('/');
      if (kind === 'put') this.stored.set(hex!, body);
      else {
        const m = this.parts.get(hex!) ?? new Map();
        m.set(Number(part), body);
        this.parts.set(hex!, m);
      }
      return new Response(null, { status: 200, headers: { etag: `"${sha(body).slice(0, 8)}"` } });
    }
    const m = /^\/v1\/datasets\/uploads(?:\/([^/]+))?(\/complete)?$/.exec(url.pathname);
    if (!m) return json(404, { code: 'NOT_FOUND', detail: `no route ${method} ${url.pathname}` });
    const body = init.body ? JSON.parse(String(init.body)) : {};
    if (method === 'POST' && !m[1]) {
      const by = new Map<string, Blob_>();
      for (const f of body.files as { path: string; size: number; sha256: string }[]) {
        const b = by.get(f.sha256) ?? { sha256: f.sha256, size: f.size, paths: [] };
        b.paths.push(f.path);
        by.set(f.sha256, b);
      }
      const id = `00000000-0000-4000-8000-00000000000${this.sessions.size}`;
      const bytes = body.files.reduce((n: number, f: { size: number }) => n + f.size, 0);
      this.sessions.set(id, {
        name: body.name,
        blobs: [...by.values()],
        files: body.files.length,
        bytes,
        status: 'open',
      });
      return json(201, this.view(id));
    }
    const s = this.sessions.get(m[1]!);
    if (!s) return json(404, { code: 'NOT_FOUND', detail: 'upload session not found' });
    if (!m[2]) return json(200, this.view(m[1]!));
    this.completes.push(body);
    for (const b of s.blobs) {
      const parts = this.parts.get(b.sha256);
      if (!this.stored.has(b.sha256) && parts) {
        const all = [...parts.entries()].sort((x, y) => x[0] - y[0]).map(([, p]) => p);
        const joined = new Uint8Array(all.reduce((n, p) => n + p.byteLength, 0));
        let at = 0;
        for (const p of all) {
          joined.set(p, at);
          at += p.byteLength;
        }
        if (!this.listParts && body.parts?.[b.sha256]?.length !== all.length)
          return json(409, {
            code: 'CONFLICT',
            detail: `1 file(s) are not uploaded yet: ${b.paths[0]} (send the ETags)`,
          });
        this.stored.set(b.sha256, joined);
      }
      if (this.stored.has(b.sha256) && sha(this.stored.get(b.sha256)!) !== b.sha256)
        return json(400, { code: 'VALIDATION', detail: `${b.paths[0]} does not match` });
    }
    if (this.missing(s.blobs).length) return json(409, { code: 'CONFLICT', detail: '1 file(s) are not uploaded yet' });
    s.status = 'completed';
    const dataset = { id: 'd1', name: s.name, uri: `s3://b/datasets/u/${s.name}/`, status: 'ready' };
    return json(200, { upload: this.view(m[1]!), dataset });
  };

  missing(blobs: Blob_[]) {
    const partial = (b: Blob_) => !this.listParts || (this.parts.get(b.sha256)?.size ?? 0) < Math.ceil(b.size / 8);
    return blobs.filter((b) => !this.stored.has(b.sha256) && partial(b));
  }

  view(id: string) {
    const s = this.sessions.get(id)!;
    const missing = s.status === 'open' ? this.missing(s.blobs) : [];
    const shown = missing.slice(0, 3).map((b) =>
      b.size <= 10
        ? { ...b, method: 'PUT', url: `http://s3/put/${b.sha256}` }
        : {
            ...b,
            method: 'multipart',
            partSize: 8,
            parts: Array.from({ length: Math.ceil(b.size / 8) }, (_, i) => ({
              partNumber: i + 1,
              size: Math.min(8, b.size - i * 8),
              url: `http://s3/part/${b.sha256}/${i + 1}`,
            })).filter((p) => !this.listParts || !this.parts.get(b.sha256)?.has(p.partNumber)),
          },
    );
    return {
      id,
      name: s.name,
      status: s.status,
      files: s.files,
      bytes: s.bytes,
      pending: { files: 0, blobs: missing.length, bytes: missing.reduce((n, b) => n + b.size, 0) },
      missing: shown,
      truncated: shown.length < missing.length,
      transfer: {},
    };
  }
}

function files(): DatasetFile[] {
  const a = bytesOf('a');
  const big = bytesOf('0123456789', 3); // 30 bytes: 4 parts
  const stream = bytesOf('xyz', 7); // 21 bytes: 3 parts, from a stream
  const asStream = (b: Uint8Array) =>
    new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < b.byteLength; i += 5) c.enqueue(b.slice(i, i + 5));
        c.close();
      },
    });
  const f = (path: string, b: Uint8Array, body: DatasetFile['body']): DatasetFile => ({
    path,
    size: b.byteLength,
    sha256: sha(b),
    body,
  });
  return [
    f('train/a/1.png', a, async () => a),
    f('train/a/dup.png', a, async () => a),
    f('train/b/big.png', big, async () => new Blob([big])),
    f('train/b/stream.png', stream, async () => asStream(stream)),
    ...[1, 2, 3].map((i) => {
      const b = bytesOf(`val${i}`);
      return f(`val/a/${i}.png`, b, async () => new Blob([b]));
    }),
  ];
}

const client = (server: FakeServer) => new GpulabClient({ baseUrl: 'http://api', token: 't', fetch: server.fetch });

describe('uploadDataset', () => {
  it('sends each missing blob once (whole or in parts, from bytes, Blobs or streams) and completes', async () => {
    const server = new FakeServer(false);
    const progress: UploadProgress[] = [];
    const sessions: string[] = [];
    const r = await uploadDataset(client(server), {
      fetch: server.fetch,
      name: 'ds',
      files: files(),
      concurrency: 3,
      onSession: (s, resumed) => {
        sessions.push(`${s.id} ${resumed}`);
      },
      onProgress: (p) => progress.push(p),
    });
    expect(r.dataset.uri).toBe('s3://b/datasets/u/ds/');
    expect(r.resumed).toBe(false);
    expect(sessions).toEqual(['00000000-0000-4000-8000-000000000000 false']);
    for (const f of files()) expect(sha(server.stored.get(f.sha256)!)).toBe(f.sha256);
    // 1 + 4 parts + 3 parts + 3 = 11 PUTs for 6 distinct blobs (the duplicate is sent once), in 2 listing pages.
    expect(server.puts).toBe(11);
    expect(r.sent).toEqual({ blobs: 6, bytes: 1 + 30 + 21 + 12 });
    const last = progress.at(-1)!;
    expect(last).toMatchObject({
      phase: 'done',
      files: 7,
      toSend: { blobs: 6, bytes: 64 },
      sent: { blobs: 6, bytes: 64 },
    });
    const sent = progress.map((p) => p.sent.bytes);
    expect(sent).toEqual([...sent].sort((x, y) => x - y));
    const etags = (server.completes[0] as { parts: Record<string, unknown[]> }).parts;
    expect(Object.keys(etags).sort()).toEqual([files()[2]!.sha256, files()[3]!.sha256].sort());
  });

  it('sends nothing when the server has every file already', async () => {
    const server = new FakeServer();
    await uploadDataset(client(server), {
      fetch: server.fetch,
      name: 'ds',
      files: files(),
    });
    const puts = server.puts;
    const again = await uploadDataset(client(server), {
      fetch: server.fetch,
      name: 'ds2',
      files: files(),
    });
    expect(server.puts).toBe(puts);
    expect(again.sent).toEqual({ blobs: 0, bytes: 0 });
  });

  it.each([
    ['S3', true],
    ['s3rver', false],
  ])('an aborted upload resumes its session and sends only the rest (%s); other files start anew', async (_, list) => {
    const server = new FakeServer(list);
    const stop = new AbortController();
    let id = '';
    await expect(
      uploadDataset(client(server), {
        fetch: server.fetch,
        name: 'ds',
        files: files(),
        concurrency: 1,
        signal: stop.signal,
        onSession: (s) => {
          id = s.id;
        },
        onProgress: (p) => {
          if (p.sent.blobs === 2) stop.abort();
        },
      }),
    ).rejects.toThrow();
    const before = server.puts;
    const r = await uploadDataset(client(server), {
      fetch: server.fetch,
      name: 'ds',
      files: files(),
      resume: id,
    });
    expect(r.resumed).toBe(true);
    expect(r.session.id).toBe(id);
    // Where parts cannot be listed, the large file whose parts were all sent before is sent again.
    expect(r.sent.blobs).toBe(list ? 4 : 5);
    expect(server.puts - before).toBeLessThan(11);

    const other = await uploadDataset(client(server), {
      fetch: server.fetch,
      name: 'ds',
      files: files().slice(0, 2),
      resume: id,
    });
    expect(other.resumed).toBe(false);
    expect(other.session.id).not.toBe(id);
    const gone = await uploadDataset(client(server), {
      fetch: server.fetch,
      name: 'ds',
      files: files(),
      resume: 'no-such-session',
    });
    expect(gone.resumed).toBe(false);
  });

  it('retries a failed PUT, asks for fresh URLs when one is refused, and names a file that changed', async () => {
    const server = new FakeServer();
    server.failNext = [503, 403];
    const r = await uploadDataset(client(server), {
      fetch: server.fetch,
      name: 'ds',
      files: files(),
      concurrency: 1,
    });
    expect(r.sent.blobs).toBe(6);
    expect(server.puts).toBe(13);

    const changed = files();
    changed[0] = { ...changed[0]!, size: 5 };
    await expect(
      uploadDataset(client(new FakeServer()), {
        fetch: server.fetch,
        name: 'ds',
        files: [changed[0]!, ...changed.slice(2)],
      }),
    ).rejects.toThrow('train/a/1.png is 1 bytes now, 5 when it was hashed: it changed');
  });

  it('pages of large files whose parts cannot be listed: complete assembles them and the listing moves on', async () => {
    const server = new FakeServer(false);
    const many = Array.from({ length: 7 }, (_, i) => {
      const b = bytesOf(`large-${i}-`, 2); // 16 bytes: 2 parts each
      return { path: `train/a/${i}.png`, size: b.byteLength, sha256: sha(b), body: async () => b };
    });
    const r = await uploadDataset(client(server), { fetch: server.fetch, name: 'many', files: many });
    expect(r.sent.blobs).toBe(7);
    expect(server.puts).toBe(many.reduce((n, f) => n + Math.ceil(f.size / 8), 0));
    expect(server.completes.length).toBeGreaterThan(1);
    for (const f of many) expect(server.stored.has(f.sha256)).toBe(true);
  });

  it('sha256Hex hashes bytes and Blobs like node:crypto', async () => {
    const b = bytesOf('hello');
    expect(await sha256Hex(b)).toBe(sha(b));
    expect(await sha256Hex(new Blob([b]))).toBe(sha(b));
  });
});
