import http from 'node:http';
import https from 'node:https';
import type { Logger } from '@gpulab/logger';
import type { KubeConfig } from '@kubernetes/client-node';
import { TRAINER_CONTAINER } from './kubernetes-pod';

interface Stream {
  name: string;
  /** Timestamp of the last line passed on, and how many lines carried exactly that timestamp. */
  lastTs: Date | null;
  atLast: number;
  /** Lines at `lastTs` still to skip after a reconnect (they were passed on before). */
  skip: number;
  partial: string;
  abort: (() => void) | null;
  done: boolean;
  waiters: Array<() => void>;
}

/**
 * Follows trainer pods' logs (`pods/log?follow=true&timestamps=true`) and passes each line on as it comes. A stream
 * that ends while the pod still runs is reopened with `sinceTime` at the last line's second, and the lines already
 * passed on are skipped by their timestamps, so a reconnect neither loses nor repeats output. A pod first seen
 * running after a scheduler restart is followed from now on (what came before went to the previous scheduler).
 */
export class PodLogFollower {
  private readonly streams = new Map<string, Stream>();
  private closed = false;

  constructor(
    private readonly kc: KubeConfig,
    private readonly namespace: string,
    private readonly log: Logger,
    private readonly emit: (pod: string, text: string) => void,
    /** Whether the pod still runs (a stream that ends while it does is reopened). */
    private readonly isLive: (pod: string) => boolean,
    private readonly retryMs = 1000,
    private readonly idleMs = 120_000,
  ) {}

  follow(name: string, fromNow: boolean): void {
    if (this.closed || this.streams.has(name)) return;
    const s: Stream = {
      name,
      lastTs: fromNow ? new Date() : null,
      atLast: 0,
      skip: 0,
      partial: '',
      abort: null,
      done: false,
      waiters: [],
    };
    this.streams.set(name, s);
    void this.connect(s);
  }

  /** Resolves once the pod's stream has ended for good (or after `timeoutMs`), then forgets it. */
  async drained(name: string, timeoutMs: number): Promise<void> {
    const s = this.streams.get(name);
    if (s && !s.done)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, timeoutMs);
        s.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    if (s) this.finish(s);
    this.streams.delete(name);
  }

  close(): void {
    this.closed = true;
    for (const s of this.streams.values()) this.finish(s);
    this.streams.clear();
  }

  /**
   * One `pods/log?follow` request over Node's http(s) with the kubeconfig's credentials and TLS settings (the
   * client's Log helper does not tell when a stream is cut). The stream counts as ended on a clean end, an error, a
   * cut connection, or no byte for `idleMs` (a half-open connection); `onEnd` decides whether to reopen it.
   */
  private async connect(s: Stream): Promise<void> {
    if (s.done || this.closed) return;
    s.skip = s.atLast;
    s.partial = '';
    let ended = false;
    let idle: NodeJS.Timeout | null = null;
    let req: http.ClientRequest | null = null;
    const end = () => {
      if (ended) return;
      ended = true;
      if (idle) clearTimeout(idle);
      req?.destroy();
      this.onEnd(s);
    };
    const touch = () => {
      if (idle) clearTimeout(idle);
      idle = setTimeout(end, this.idleMs);
      idle.unref();
    };
    s.abort = end;
    try {
      const cluster = this.kc.getCurrentCluster();
      if (!cluster) throw new Error('no current cluster in the kubeconfig');
      const url = new URL(
        `${cluster.server}/api/v1/namespaces/${encodeURIComponent(this.namespace)}/pods/${encodeURIComponent(s.name)}/log`,
      );
      url.searchParams.set('container', TRAINER_CONTAINER);
      url.searchParams.set('follow', 'true');
      url.searchParams.set('timestamps', 'true');
      if (s.lastTs) {
        const since = new Date(Math.floor(s.lastTs.getTime() / 1000) * 1000);
        url.searchParams.set('sinceTime', since.toISOString().replace(/\.\d{3}Z$/, 'Z'));
      }
      const opts: https.RequestOptions = { method: 'GET', headers: {} };
      await this.kc.applyToHTTPSOptions(opts);
      req = (url.protocol === 'https:' ? https : http).request(url, opts, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          this.log.debug({ pod: s.name, status: res.statusCode }, 'pod log not available');
          end();
          return;
        }
        touch();
        res.setEncoding('utf8');
        res.on('data', (text: string) => {
          touch();
          this.onData(s, text);
        });
        res.on('end', end);
        res.on('aborted', end);
        res.on('error', end);
        res.on('close', end);
      });
      req.on('error', end);
      req.end();
    } catch (e) {
      this.log.debug({ err: e, pod: s.name }, 'could not follow the pod log');
      end();
    }
  }

  private onData(s: Stream, text: string): void {
    const parts = (s.partial + text).split('\n');
    s.partial = parts.pop() ?? '';
    for (const line of parts) {
      const sp = line.indexOf(' ');
      const ts = sp > 0 ? new Date(line.slice(0, sp)) : new Date(Number.NaN);
      if (Number.isNaN(ts.getTime())) {
        this.emit(s.name, `${line}\n`);
        continue;
      }
      if (s.lastTs && ts < s.lastTs) continue;
      if (s.lastTs && ts.getTime() === s.lastTs.getTime()) {
        if (s.skip > 0) {
          s.skip--;
          continue;
        }
        s.atLast++;
      } else {
        s.lastTs = ts;
        s.atLast = 1;
        s.skip = 0;
      }
      this.emit(s.name, `${line.slice(sp + 1)}\n`);
    }
  }

  private onEnd(s: Stream): void {
    s.abort = null;
    if (s.done || this.closed) return;
    if (!this.isLive(s.name)) {
      this.finish(s);
      return;
    }
    const t = setTimeout(() => void this.connect(s), this.retryMs);
    t.unref();
  }

  private finish(s: Stream): void {
    if (s.done) return;
    s.done = true;
    s.abort?.();
    for (const w of s.waiters.splice(0)) w();
  }
}
