import type { ServerResponse } from 'node:http';
import { statusObject } from './objects';
import { matches, type ResourceStore, type StoreEvent, type WatchFilter } from './store';

/**
 * One `?watch=1` stream: newline-delimited JSON `{"type","object"}` events in resourceVersion order over a chunked
 * 200 response, as the API server sends them. Without a resourceVersion (or with "0") it starts with a synthetic
 * ADDED per current object; with one it replays the retained events after it, or — when that version has been
 * compacted away — sends one ERROR event carrying a 410 `Expired` Status and closes, exactly like a real server.
 */
export class WatchStream {
  private unsubscribe: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly onClose: (w: WatchStream) => void,
  ) {}

  start(store: ResourceStore, filter: WatchFilter, resourceVersion: string | null, timeoutSeconds: number | null) {
    this.res.writeHead(200, {
      'content-type': 'application/json',
      'transfer-encoding': 'chunked',
      'cache-control': 'no-cache, private',
    });
    this.res.flushHeaders();
    this.res.on('close', () => this.close());
    if (resourceVersion && resourceVersion !== '0') {
      const rv = Number(resourceVersion);
      const events = Number.isFinite(rv) ? store.since(rv, filter) : null;
      if (events === null) {
        const message = `too old resource version: ${resourceVersion} (${store.oldestResumable})`;
        this.write({ type: 'ERROR', object: statusObject(410, 'Expired', message) });
        this.end();
        return;
      }
      for (const e of events) this.send(e);
    } else {
      for (const o of store.list(
        filter.resource,
        filter.namespace,
        (x) => filter.labels(x.metadata.labels) && filter.fields(x),
      ))
        this.write({ type: 'ADDED', object: o });
    }
    this.unsubscribe = store.subscribe((e) => {
      if (matches(filter, e)) this.send(e);
    });
    if (timeoutSeconds && timeoutSeconds > 0) this.timer = setTimeout(() => this.end(), timeoutSeconds * 1000);
  }

  private send(e: StoreEvent): void {
    this.write({ type: e.type, object: e.object });
  }

  private write(ev: { type: string; object: unknown }): void {
    if (!this.closed) this.res.write(`${JSON.stringify(ev)}\n`);
  }

  /** Ends the stream cleanly (a server-side timeout). */
  end(): void {
    if (this.closed) return;
    this.res.end();
    this.close();
  }

  /** Cuts the connection mid-stream (a network failure, an API server restart). */
  drop(): void {
    if (this.closed) return;
    this.res.destroy();
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    this.onClose(this);
  }
}
