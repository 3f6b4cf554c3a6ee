import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  applyOp,
  decodeRgb,
  ImageDecodeError,
  type ImageDecodeErrorCode,
  type TransformOp,
  transform,
} from './image-kernel.cjs';

/** Decoded packed RGB. */
export interface DecodedImage {
  data: Uint8Array;
  width: number;
  height: number;
}

interface Kept {
  out: Uint8Array;
  image: DecodedImage;
}

async function keepInline(bytes: Uint8Array, op: TransformOp, maxPixels: number): Promise<Kept> {
  const image = await decodeRgb(bytes, maxPixels);
  return { out: applyOp(image.data, image.width, image.height, op), image };
}

/**
 * Runs image-kernel transforms on a few worker threads, or on the main thread (libuv's pool) when workers are
 * disabled (`workers: 0`) or cannot start. The worker is plain CommonJS (decode-worker.cjs), so it needs no TypeScript
 * loader: it starts the same under jest, `node --import tsx` and compiled code.
 *
 * Tasks queue in the pool. What a worker holds in flight is bounded by the decoded size of its images: tasks that
 * name their image's pixel count may fill PIXELS_IN_FLIGHT per worker (up to TASKS_IN_FLIGHT small images, so a
 * worker never idles while the main thread is busy in a long step), others count as 1/`perWorker` of it (at most
 * `perWorker` of them); one task is always allowed. Workers are unref'd while idle, so a forgotten pool never keeps the process alive.
 */
export interface DecodePool {
  readonly mode: 'workers' | 'inline';
  /** Number of live workers (0 inline). */
  readonly threads: number;
  /** Why workers are not used, when they were asked for but are not. */
  readonly fallbackReason: string | null;
  /** `pixels`: the image's width × height when known (lets small images queue deeper on a worker). */
  run(bytes: Uint8Array, op: TransformOp, pixels?: number): Promise<Uint8Array>;
  /** `run`, also returning the decoded pixels (callers keep them for images they see again: see `apply`). */
  runKeep(bytes: Uint8Array, op: TransformOp, pixels?: number): Promise<{ out: Uint8Array; image: DecodedImage }>;
  /** The geometry of `op` on pixels decoded before. */
  apply(image: DecodedImage, op: TransformOp): Promise<Uint8Array>;
  close(): Promise<void>;
}

export interface DecodePoolOptions {
  workers: number;
  maxPixels: number;
  /** Tasks in flight per worker. */
  perWorker?: number;
  startTimeoutMs?: number;
  /** Override the worker script (tests use it to exercise the fallback). */
  workerScript?: string;
}

/** Decoded pixels a worker may hold in flight (RGB: 3 bytes each, so 24 MiB), and tasks at most. */
const PIXELS_IN_FLIGHT = 8 * 1024 * 1024;
const TASKS_IN_FLIGHT = 32;

type Job =
  | { kind: 'transform'; bytes: Uint8Array; op: TransformOp }
  | { kind: 'keep'; bytes: Uint8Array; op: TransformOp }
  | { kind: 'apply'; image: DecodedImage; op: TransformOp };

interface Task {
  id: number;
  job: Job;
  /** Share of PIXELS_IN_FLIGHT this task holds while in flight. */
  weight: number;
  resolve: (v: Uint8Array | Kept) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  inflight: Map<number, Task>;
  /** Sum of the in-flight tasks' weights. */
  load: number;
  dead: boolean;
}

type Reply =
  | { ready: true }
  | { id: number; ok: true; data: Uint8Array; rgb?: Uint8Array; width?: number; height?: number }
  | { id: number; ok: false; code: string; message: string };

const KERNEL_CODES = new Set<string>(['TOO_LARGE', 'UNDECODABLE', 'UNSUPPORTED']);

function defaultWorkerScript(): string | null {
  // CommonJS (jest, tsx on a package without "type": "module") defines __dirname; an ESM build would not.
  return typeof __dirname === 'string' ? join(__dirname, 'decode-worker.cjs') : null;
}

export async function createDecodePool(opts: DecodePoolOptions): Promise<DecodePool> {
  const inline = (reason: string | null): DecodePool => ({
    mode: 'inline',
    threads: 0,
    fallbackReason: reason,
    run: (bytes, op) => transform(bytes, op, opts.maxPixels),
    runKeep: (bytes, op) => keepInline(bytes, op, opts.maxPixels),
    apply: async (image, op) => applyOp(image.data, image.width, image.height, op),
    close: async () => {},
  });
  if (opts.workers <= 0) return inline(null);
  const script = opts.workerScript ?? defaultWorkerScript();
  if (!script) return inline('worker script path unknown (no __dirname)');
  const started = await Promise.allSettled(
    Array.from({ length: opts.workers }, () => startWorker(script, opts.startTimeoutMs ?? 20_000)),
  );
  const ok = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failure = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) {
    await Promise.all(ok.map((s) => s.worker.terminate()));
    return inline(`decode workers could not start: ${(failure.reason as Error).message}`);
  }
  return new WorkerPool(ok, opts.perWorker ?? 4, opts.maxPixels);
}

interface Started {
  worker: Worker;
  /** Set if the worker died after its ready message but before the pool took it over. */
  early: { death: Error | null };
  /** Removes the listeners added here (never removeAllListeners: Worker keeps internal ones). */
  detach: () => void;
}

function startWorker(script: string, timeoutMs: number): Promise<Started> {
  return new Promise((resolve, reject) => {
    let worker: Worker;
    try {
      worker = new Worker(script);
    } catch (e) {
      reject(e as Error);
      return;
    }
    const early: Started['early'] = { death: null };
    let ready = false;
    const onError = (e: Error) => {
      if (ready) early.death = e;
      else fail(e);
    };
    const onExit = (code: number) => {
      const e = new Error(`decode worker exited with code ${code}${ready ? '' : ' before it was ready'}`);
      if (ready) early.death ??= e;
      else fail(e);
    };
    const onMessage = (m: Reply) => {
      worker.off('message', onMessage);
      clearTimeout(timer);
      if (!('ready' in m)) {
        fail(new Error('unexpected first message'));
        return;
      }
      ready = true;
      worker.unref();
      resolve({ worker, early, detach });
    };
    const detach = () => {
      worker.off('error', onError);
      worker.off('exit', onExit);
      worker.off('message', onMessage);
    };
    const fail = (e: Error) => {
      clearTimeout(timer);
      detach();
      void worker.terminate();
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error(`no ready message within ${timeoutMs} ms`)), timeoutMs);
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.on('message', onMessage);
  });
}

class WorkerPool implements DecodePool {
  readonly mode = 'workers' as const;
  readonly fallbackReason = null;
  private readonly slots: Slot[];
  private readonly queue: Task[] = [];
  private nextId = 1;
  private closed = false;

  constructor(
    workers: Started[],
    private readonly perWorker: number,
    private readonly maxPixels: number,
  ) {
    this.slots = workers.map(({ worker, early, detach }) => {
      detach();
      const slot: Slot = { worker, inflight: new Map(), load: 0, dead: early.death !== null };
      worker.on('message', (m: Reply) => this.onReply(slot, m));
      worker.on('error', (e) => this.onDeath(slot, e));
      worker.on('exit', (code) => this.onDeath(slot, new Error(`decode worker exited with code ${code}`)));
      worker.unref();
      return slot;
    });
  }

  get threads(): number {
    return this.slots.filter((s) => !s.dead).length;
  }

  run(bytes: Uint8Array, op: TransformOp, pixels?: number): Promise<Uint8Array> {
    if (this.threads === 0 && !this.closed) return transform(bytes, op, this.maxPixels);
    return this.submit({ kind: 'transform', bytes, op }, pixels) as Promise<Uint8Array>;
  }

  runKeep(bytes: Uint8Array, op: TransformOp, pixels?: number): Promise<Kept> {
    if (this.threads === 0 && !this.closed) return keepInline(bytes, op, this.maxPixels);
    return this.submit({ kind: 'keep', bytes, op }, pixels) as Promise<Kept>;
  }

  apply(image: DecodedImage, op: TransformOp): Promise<Uint8Array> {
    if (this.threads === 0 && !this.closed) return Promise.resolve(applyOp(image.data, image.width, image.height, op));
    return this.submit({ kind: 'apply', image, op }, image.width * image.height) as Promise<Uint8Array>;
  }

  private submit(job: Job, pixels: number | undefined): Promise<Uint8Array | Kept> {
    if (this.closed) return Promise.reject(new Error('decode pool is closed'));
    const weight =
      pixels !== undefined && Number.isFinite(pixels) && pixels > 0
        ? Math.max(pixels, PIXELS_IN_FLIGHT / TASKS_IN_FLIGHT)
        : PIXELS_IN_FLIGHT / this.perWorker;
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, job, weight, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const task = this.queue[0]!;
      let best: Slot | null = null;
      for (const s of this.slots) {
        const fits = s.inflight.size === 0 || s.load + task.weight <= PIXELS_IN_FLIGHT + 1e-6;
        if (!s.dead && fits && (!best || s.load < best.load)) best = s;
      }
      if (!best) {
        if (this.threads === 0) this.drainInline();
        return;
      }
      this.queue.shift();
      best.inflight.set(task.id, task);
      best.load += task.weight;
      if (best.inflight.size === 1) best.worker.ref();
      best.worker.postMessage(message(task, this.maxPixels));
    }
  }

  private onReply(slot: Slot, m: Reply): void {
    if ('ready' in m) return;
    const task = slot.inflight.get(m.id);
    if (!task) return;
    slot.inflight.delete(m.id);
    slot.load = slot.inflight.size === 0 ? 0 : slot.load - task.weight;
    if (slot.inflight.size === 0) slot.worker.unref();
    if (m.ok)
      task.resolve(
        task.job.kind === 'keep'
          ? { out: m.data, image: { data: m.rgb!, width: m.width!, height: m.height! } }
          : m.data,
      );
    else {
      task.reject(
        KERNEL_CODES.has(m.code)
          ? new ImageDecodeError(m.code as ImageDecodeErrorCode, m.message)
          : new Error(m.message),
      );
    }
    this.pump();
  }

  /** A worker died: its tasks go back to the queue for the others (or the main thread). */
  private onDeath(slot: Slot, _e: Error): void {
    if (slot.dead) return;
    slot.dead = true;
    const orphans = [...slot.inflight.values()];
    slot.inflight.clear();
    slot.load = 0;
    this.queue.unshift(...orphans);
    if (!this.closed) this.pump();
  }

  private drainInline(): void {
    for (const t of this.queue.splice(0)) {
      const j = t.job;
      const done: Promise<Uint8Array | Kept> =
        j.kind === 'keep'
          ? keepInline(j.bytes, j.op, this.maxPixels)
          : j.kind === 'apply'
            ? Promise.resolve().then(() => applyOp(j.image.data, j.image.width, j.image.height, j.op))
            : transform(j.bytes, j.op, this.maxPixels);
      done.then(t.resolve, t.reject);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.queue.splice(0)) t.reject(new Error('decode pool closed'));
    await Promise.all(
      this.slots.map(async (s) => {
        s.dead = true;
        for (const t of s.inflight.values()) t.reject(new Error('decode pool closed'));
        s.inflight.clear();
        await s.worker.terminate();
      }),
    );
  }
}

/** Structured clone copies the whole underlying ArrayBuffer of a view: send exact-size ones. */
function exact(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

function message(task: Task, maxPixels: number): Record<string, unknown> {
  const j = task.job;
  if (j.kind === 'apply')
    return {
      id: task.id,
      kind: 'apply',
      rgb: exact(j.image.data),
      width: j.image.width,
      height: j.image.height,
      op: j.op,
    };
  if (j.kind === 'keep') return { id: task.id, kind: 'keep', bytes: exact(j.bytes), op: j.op, maxPixels };
  return { id: task.id, bytes: exact(j.bytes), op: j.op, maxPixels };
}

const shared = new Map<string, Promise<DecodePool>>();

/**
 * A pool kept for the life of the process and reused by every `batches` call with the same settings, so epochs do
 * not pay the worker start-up (sharp loading: a few hundred ms). Its workers are unref'd while idle, so it never
 * keeps the process alive; closeSharedDecodePools() ends them explicitly (tests, graceful shutdown).
 */
export function sharedDecodePool(workers: number, maxPixels: number): Promise<DecodePool> {
  const key = `${workers}:${maxPixels}`;
  let pool = shared.get(key);
  if (!pool) {
    pool = createDecodePool({ workers, maxPixels });
    shared.set(key, pool);
  }
  return pool;
}

export async function closeSharedDecodePools(): Promise<void> {
  const pools = [...shared.values()];
  shared.clear();
  await Promise.all(pools.map(async (p) => (await p).close()));
}
