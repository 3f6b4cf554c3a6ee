import type { Logger } from '@gpulab/logger';
import { type CoreV1Api, type KubeConfig, type V1Pod, Watch } from '@kubernetes/client-node';

export type PodEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface PodWatchHandlers {
  /** After every (re)list: every pod that exists now (the caller treats missing ones as deleted). */
  onSync(pods: V1Pod[]): void;
  onEvent(type: PodEventType, pod: V1Pod): void;
}

export interface PodWatcherOptions {
  namespace: string;
  labelSelector: string;
  log: Logger;
  /** Reconnect backoff: doubles from min to max; reset by any event. */
  minBackoffMs: number;
  maxBackoffMs: number;
  /** The server ends each watch after this long and we resume; guards against half-open connections. */
  timeoutSeconds: number;
}

type WatchEnd = { kind: 'closed' } | { kind: 'expired' } | { kind: 'error'; error: unknown };

/**
 * List-then-watch of the gpulab pods in one namespace, the informer pattern: list (its resourceVersion), then watch
 * from that resourceVersion, advancing it with every event and bookmark. A stream that ends is resumed from the
 * last resourceVersion — at once after a clean end, after an exponential backoff after an error. When the server
 * says the resourceVersion is too old (410 Gone / Expired, as an ERROR event or an HTTP status) it lists again,
 * and `onSync` lets the caller reconcile whatever it missed.
 */
export class PodWatcher {
  private rv = '';
  private stopped = false;
  private controller: AbortController | null = null;
  private sleepTimer: { timer: NodeJS.Timeout; resolve: () => void } | null = null;
  private loop: Promise<void> | null = null;
  readonly stats = { lists: 0, watches: 0, expired: 0, errors: 0 };

  constructor(
    private readonly kc: KubeConfig,
    private readonly core: CoreV1Api,
    private readonly opts: PodWatcherOptions,
    private readonly handlers: PodWatchHandlers,
  ) {}

  get resourceVersion(): string {
    return this.rv;
  }

  /** The first list (throws if the API server cannot be reached), then the watch loop in the background. */
  async start(): Promise<void> {
    await this.list();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.controller?.abort();
    if (this.sleepTimer) {
      clearTimeout(this.sleepTimer.timer);
      this.sleepTimer.resolve();
    }
    await this.loop;
  }

  private async list(): Promise<void> {
    const res = await this.core.listNamespacedPod({
      namespace: this.opts.namespace,
      labelSelector: this.opts.labelSelector,
    });
    this.stats.lists++;
    this.rv = res.metadata?.resourceVersion ?? '';
    this.handlers.onSync(res.items);
  }

  private async run(): Promise<void> {
    let backoff = this.opts.minBackoffMs;
    let relist = false;
    while (!this.stopped) {
      if (relist) {
        try {
          await this.list();
          relist = false;
          backoff = this.opts.minBackoffMs;
        } catch (e) {
          this.stats.errors++;
          this.opts.log.warn({ err: e, backoffMs: backoff }, 'listing pods failed; retrying');
          await this.sleep(backoff);
          backoff = Math.min(backoff * 2, this.opts.maxBackoffMs);
          continue;
        }
      }
      const startedAt = Date.now();
      const end = await this.watchOnce(() => {
        backoff = this.opts.minBackoffMs;
      });
      if (this.stopped) break;
      if (end.kind === 'closed' && Date.now() - startedAt < 1000) {
        // a stream the server ends at once, again and again, must not become a busy loop
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, this.opts.maxBackoffMs);
      }
      if (end.kind === 'expired') {
        this.stats.expired++;
        this.opts.log.info({ resourceVersion: this.rv }, 'pod watch expired (410 Gone); listing again');
        relist = true;
      } else if (end.kind === 'error') {
        this.stats.errors++;
        this.opts.log.warn({ err: end.error, backoffMs: backoff }, 'pod watch failed; reconnecting');
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, this.opts.maxBackoffMs);
      }
    }
  }

  private watchOnce(onProgress: () => void): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      let expired = false;
      let settled = false;
      const finish = (end: WatchEnd) => {
        if (settled) return;
        settled = true;
        this.controller = null;
        resolve(end);
      };
      this.stats.watches++;
      const path = `/api/v1/namespaces/${encodeURIComponent(this.opts.namespace)}/pods`;
      const params = {
        labelSelector: this.opts.labelSelector,
        resourceVersion: this.rv,
        allowWatchBookmarks: true,
        timeoutSeconds: this.opts.timeoutSeconds,
      };
      const onEvent = (type: string, obj: unknown) => {
        if (settled) return;
        if (type === 'ERROR') {
          const code = (obj as { code?: number }).code;
          if (code === 410) expired = true;
          this.controller?.abort();
          finish(expired ? { kind: 'expired' } : { kind: 'error', error: new Error(JSON.stringify(obj)) });
          return;
        }
        const pod = obj as V1Pod;
        const rv = pod.metadata?.resourceVersion;
        if (rv) this.rv = rv;
        onProgress();
        if (type === 'BOOKMARK') return;
        if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') this.handlers.onEvent(type, pod);
      };
      const onDone = (err: unknown) => {
        if (expired || (err as { statusCode?: number } | null)?.statusCode === 410) finish({ kind: 'expired' });
        else if (err && !this.stopped) finish({ kind: 'error', error: err });
        else finish({ kind: 'closed' });
      };
      new Watch(this.kc)
        .watch(path, params, onEvent, onDone)
        .then((c) => {
          if (settled || this.stopped) c.abort();
          else this.controller = c;
        })
        .catch((e: unknown) => finish({ kind: 'error', error: e }));
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleepTimer = null;
        resolve();
      }, ms);
      this.sleepTimer = { timer, resolve };
    });
  }
}
