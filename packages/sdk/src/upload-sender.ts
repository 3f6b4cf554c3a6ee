/**
 * The sending half of uploadDataset: presigned PUTs and parts, `concurrency` at a time, retried, with the bytes of
 * each file or part taken from whatever its body gives (bytes, a Blob, or a stream read only as far as needed).
 */
import type {
  DatasetFile,
  PartEtags,
  UploadOptions,
  UploadProgress,
  UploadSession,
  UploadTarget,
} from './dataset-types';

/** Sends missing blobs and parts with bounded concurrency, keeping part ETags for complete. */
export class Sender {
  readonly etags: PartEtags = {};
  readonly signal: AbortSignal | undefined;
  private readonly doFetch: typeof fetch;
  private readonly counted = new Set<string>();

  constructor(
    private readonly bySha: Map<string, DatasetFile>,
    private readonly o: UploadOptions,
    private readonly progress: UploadProgress,
    private readonly report: () => void,
    /** GET of the session: what is still missing, with fresh URLs. */
    private readonly refresh: (id: string) => Promise<UploadSession>,
  ) {
    this.signal = o.signal;
    this.doFetch = o.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** Sends what `s` lists, then the next pages while the list was truncated; returns the last view of the session. */
  async sendAllMissing(first: UploadSession): Promise<UploadSession> {
    let s = first;
    for (let refreshes = 0; ; ) {
      if (s.status !== 'open') return s;
      let sent: number;
      try {
        sent = await this.send(s.missing);
      } catch (e) {
        // Presigned URLs expired (a long pause, a laptop asleep): fresh ones, a few times.
        if (!(e instanceof UrlRefused) || ++refreshes > 3) throw e;
        s = await this.refresh(s.id);
        continue;
      }
      // A page of nothing new (parts already sent, not yet assembled where S3 cannot list them): complete
      // assembles them, and the next listing moves on.
      if (!s.truncated || sent === 0) return s;
      s = await this.refresh(s.id);
    }
  }

  /** Sends the targets' bytes; returns how many requests that took. */
  private async send(missing: UploadTarget[]): Promise<number> {
    type Task = { target: UploadTarget; file: DatasetFile; part?: { partNumber: number; size: number; url: string } };
    const tasks: Task[] = [];
    for (const target of missing) {
      const file = this.bySha.get(target.sha256);
      if (!file) throw new Error(`the server asked for blob ${target.sha256}, which is not among the files`);
      // A part this run already sent (its ETag is kept) is offered again where S3 cannot list parts: skip it.
      const sentParts = new Set((this.etags[target.sha256] ?? []).map((p) => p.partNumber));
      const parts = (target.parts ?? []).filter((p) => !sentParts.has(p.partNumber));
      if (target.method === 'PUT') tasks.push({ target, file });
      else if (parts.length === 0) continue;
      else for (const part of parts) tasks.push({ target, file, part });
      const key = `${target.sha256}`;
      if (!this.counted.has(key)) {
        this.counted.add(key);
        this.progress.toSend.blobs++;
      }
      this.progress.toSend.bytes += target.method === 'PUT' ? target.size : sumSizes(parts);
    }
    this.report();
    const partsLeft = new Map<string, number>();
    for (const t of tasks) if (t.part) partsLeft.set(t.target.sha256, (partsLeft.get(t.target.sha256) ?? 0) + 1);
    await pool(tasks, this.o.concurrency ?? 4, this.signal, async (t) => {
      if (!t.part) {
        await this.put(t.target.url!, await wholeBody(t.file), t.file.path);
        this.sent(t.target.size, true);
        return;
      }
      const start = (t.part.partNumber - 1) * t.target.partSize!;
      const slice = await rangeOf(t.file, start, start + t.part.size);
      const etag = await this.put(t.part.url, slice, `${t.file.path} (part ${t.part.partNumber})`);
      const list = this.etags[t.target.sha256] ?? [];
      this.etags[t.target.sha256] = [
        ...list.filter((p) => p.partNumber !== t.part!.partNumber),
        {
          partNumber: t.part.partNumber,
          etag,
        },
      ];
      const left = (partsLeft.get(t.target.sha256) ?? 1) - 1;
      partsLeft.set(t.target.sha256, left);
      this.sent(t.part.size, left === 0);
    });
    return tasks.length;
  }

  private sent(bytes: number, blobDone: boolean) {
    this.progress.sent.bytes += bytes;
    if (blobDone) this.progress.sent.blobs++;
    this.report();
  }

  /** One PUT to a presigned URL, retried on network errors and 5xx; returns the ETag. */
  private async put(url: string, body: Blob | Uint8Array, what: string): Promise<string> {
    const tries = Math.max(1, this.o.retries ?? 3);
    for (let i = 1; ; i++) {
      let res: Response;
      try {
        res = await this.doFetch(url, {
          method: 'PUT',
          body: body as NonNullable<RequestInit['body']>,
          ...(this.signal ? { signal: this.signal } : {}),
        });
      } catch (e) {
        if (this.signal?.aborted || i >= tries) throw e;
        await sleep(250 * 2 ** i, this.signal);
        continue;
      }
      if (res.ok) {
        await res.body?.cancel();
        return res.headers.get('etag') ?? '';
      }
      const text = (await res.text()).slice(0, 300);
      if (res.status === 403) throw new UrlRefused(`upload of ${what} refused (${res.status}): ${text}`);
      if (i >= tries || (res.status < 500 && res.status !== 429))
        throw new Error(`upload of ${what} failed: HTTP ${res.status} ${text}`);
      await sleep(250 * 2 ** i, this.signal);
    }
  }
}

/** A presigned URL was refused (expired): the session is asked for fresh ones. */
class UrlRefused extends Error {}

function sumSizes(parts: readonly { size: number }[]): number {
  return parts.reduce((n, p) => n + p.size, 0);
}

async function wholeBody(f: DatasetFile): Promise<Blob | Uint8Array> {
  const b = await f.body();
  const out = isStream(b) ? await readRange(b, 0, f.size) : b;
  const size = out instanceof Uint8Array ? out.byteLength : out.size;
  if (size !== f.size) throw new Error(`${f.path} is ${size} bytes now, ${f.size} when it was hashed: it changed`);
  return out;
}

async function rangeOf(f: DatasetFile, start: number, end: number): Promise<Blob | Uint8Array> {
  const b = await f.body();
  if (b instanceof Uint8Array) return b.subarray(start, end);
  if (!isStream(b)) return b.slice(start, end);
  return readRange(b, start, end);
}

function isStream(b: unknown): b is ReadableStream<Uint8Array> {
  return typeof (b as ReadableStream | null)?.getReader === 'function';
}

/** Bytes [start, end) of a stream; the rest is not read. */
async function readRange(stream: ReadableStream<Uint8Array>, start: number, end: number): Promise<Uint8Array> {
  const out = new Uint8Array(end - start);
  const reader = stream.getReader();
  let pos = 0;
  let filled = 0;
  try {
    while (filled < out.byteLength) {
      const { done, value } = await reader.read();
      if (done) break;
      const from = Math.max(start - pos, 0);
      const to = Math.min(end - pos, value.byteLength);
      if (to > from) {
        out.set(value.subarray(from, to), pos + from - start);
        filled += to - from;
      }
      pos += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return filled === out.byteLength ? out : out.subarray(0, filled);
}

/** Runs `fn` over `items`, `limit` at a time; the first failure stops the others from starting and is thrown. */
async function pool<T>(items: T[], limit: number, signal: AbortSignal | undefined, fn: (t: T) => Promise<void>) {
  let next = 0;
  let failed: unknown = null;
  const worker = async () => {
    while (failed === null && next < items.length) {
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed !== null) throw failed;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason ?? new Error('aborted'));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
