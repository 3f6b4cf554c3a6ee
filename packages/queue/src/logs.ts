import type { Redis } from 'ioredis';

/**
 * The live log bus: the scheduler appends each trainer's output (from the local process or the pod's log stream)
 * to one Redis stream per job; the API reads it back, and follows it for `GET /v1/jobs/:id/logs?follow=1`. Streams
 * are capped (about `maxEntries` chunks) and expire a while after the job ends; the scheduler archives each attempt's
 * log to S3 when the attempt ends, so nothing needs Redis for long.
 */
export interface LogEntry {
  /** Stream entry id (`<ms>-<seq>`): resume after it with Last-Event-ID. */
  id: string;
  attempt: number;
  text: string;
}

export class LogBus {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly maxEntries = 20_000,
  ) {}

  key(jobId: string): string {
    return `${this.prefix}:logs:${jobId}`;
  }

  async append(jobId: string, attempt: number, text: string): Promise<void> {
    if (!text) return;
    await this.redis.xadd(
      this.key(jobId),
      'MAXLEN',
      '~',
      String(this.maxEntries),
      '*',
      'a',
      String(attempt),
      't',
      text,
    );
  }

  /** Entries after `afterId` (exclusive; '0' for all), oldest first, at most `count`. */
  async read(jobId: string, afterId = '0', count = 10_000): Promise<LogEntry[]> {
    const start = afterId === '0' ? '-' : `(${afterId}`;
    const rows = await this.redis.xrange(this.key(jobId), start, '+', 'COUNT', count);
    return rows.map(([id, fields]) => toEntry(id, fields));
  }

  /**
   * Waits up to `blockMs` for entries after `afterId` on a connection of the caller's (XREAD BLOCK ties up the
   * connection, so a follower uses its own: `redis.duplicate()`).
   */
  async follow(conn: Redis, jobId: string, afterId: string, blockMs: number): Promise<LogEntry[]> {
    const res = await conn.xread(
      'COUNT',
      1000,
      'BLOCK',
      blockMs,
      'STREAMS',
      this.key(jobId),
      afterId === '0' ? '0-0' : afterId,
    );
    if (!res) return [];
    return res.flatMap(([, rows]) => rows.map(([id, fields]) => toEntry(id, fields)));
  }

  /** Keeps the stream `seconds` longer, then Redis drops it (the S3 archive stays). */
  async expire(jobId: string, seconds: number): Promise<void> {
    await this.redis.expire(this.key(jobId), seconds);
  }
}

function toEntry(id: string, fields: string[]): LogEntry {
  let attempt = 0;
  let text = '';
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'a') attempt = Number(fields[i + 1]);
    else if (fields[i] === 't') text = fields[i + 1] ?? '';
  }
  return { id, attempt, text };
}
